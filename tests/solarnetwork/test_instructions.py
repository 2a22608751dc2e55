"""Instructions on simulated nodes: Queued -> Received -> Executing -> Completed/Declined,
exec with resultMaxWait, queue-and-wait with backoff and a deadline, cancelling, deferral.

The simulator's node takes one step per second (``instruction_step=1``) on the fake clock;
every wait (the server holding an exec, the client polling) only moves that clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from locus_async.errors import InstructionTimeout, PermissionDenied, UsageError, ValidationFailed
from locus_async.simulator import SolarNetSimulator
from locus_async.solarnetwork import SolarNetClient
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio


async def test_states_advance_with_the_node(
    sn: SolarNetClient, sn_clock: FakeClock, sn_sim: SolarNetSimulator
) -> None:
    """An instruction moves Queued, Received, Executing, Completed as the node works."""
    (queued,) = await sn.instructions.add(177, "SetControlParameter", {"/switch/1": "1"})
    assert queued.state == "Queued"
    assert queued.params == {"/switch/1": "1"}
    seen = [queued.state]
    for _ in range(4):
        sn_clock.advance(1.0)
        seen.append((await sn.instructions.get(queued.id)).state)
    assert seen == ["Queued", "Received", "Executing", "Completed", "Completed"]
    done = await sn.instructions.get(queued.id)
    assert done.status_date == datetime.fromtimestamp(sn_clock.now - 1.0, UTC)
    assert sn_sim.world.nodes[177].controls["/switch/1"] == "1"


async def test_unknown_control_is_declined_with_result_parameters(sn: SolarNetClient) -> None:
    """An unknown control is Declined with the node's result code and message."""
    done = await sn.instructions.queue_and_wait(177, "SetControlParameter", {"/nope": "1"})
    assert done.state == "Declined"
    assert done.result_parameters == {"code": "5000", "message": "Control '/nope' not available."}


async def test_exec_waits_server_side(sn: SolarNetClient, sn_clock: FakeClock) -> None:
    """exec holds the answer server-side until the instruction completes (resultMaxWait)."""
    start = sn_clock.now
    (done,) = await sn.instructions.exec(
        177, "SetControlParameter", {"/switch/2": "1"}, result_max_wait=10
    )
    assert done.state == "Completed"
    assert sn_clock.now - start == pytest.approx(3.0)  # the node's three steps, no more
    start = sn_clock.now
    (short,) = await sn.instructions.exec(177, "Signal", result_max_wait=1)
    assert short.state == "Received"  # came back as it stood after one second
    assert sn_clock.now - start == pytest.approx(1.0)


async def test_exec_for_several_nodes_uses_the_form(sn: SolarNetClient) -> None:
    """exec for several nodes uses the form body; the JSON form takes one node only."""
    results = await sn.instructions.exec([177, 178], "Signal", {"name": "beep"}, result_max_wait=5)
    assert [(i.node_id, i.state) for i in results] == [(177, "Completed"), (178, "Completed")]
    with pytest.raises(UsageError, match="JSON form takes one node"):
        await sn.instructions.add([177, 178], "Signal", encoding="json")
    with pytest.raises(UsageError, match="between 0 and 60"):
        await sn.instructions.exec(177, "Signal", result_max_wait=61)


async def test_form_and_json_queue_the_same_instruction(sn: SolarNetClient) -> None:
    """The JSON and form encodings queue the same instruction, repeated keys in order."""
    params = [("key", "a"), ("type", "me"), ("key", "b")]
    (as_json,) = await sn.instructions.add(177, "UpdateSetting", params)
    (as_form,) = await sn.instructions.add(177, "UpdateSetting", params, encoding="form")
    assert as_json.parameters == as_form.parameters
    assert [(p.name, p.value) for p in as_form.parameters] == params


async def test_queue_and_wait_backs_off_and_honours_the_deadline(
    sn: SolarNetClient, sn_clock: FakeClock, sn_sim: SolarNetSimulator
) -> None:
    """queue_and_wait polls with backoff and raises InstructionTimeout at its deadline."""
    sn_sim.reset_stats()
    start = sn_clock.now
    with pytest.raises(InstructionTimeout) as caught:
        await sn.instructions.queue_and_wait(
            179, "Signal", max_wait=20.0, poll_interval=1.0, max_poll_interval=8.0
        )
    assert caught.value.instruction.state == "Queued"  # node 179 is offline
    assert "still Queued after 20 s" in str(caught.value)
    assert sn_clock.now - start == pytest.approx(20.0)
    views = [e for e in sn_sim.stats.log if e[1].endswith("/instr/view")]
    assert len(views) == 6  # polls at 0, 1, 3, 7, 15 (backoff 1, 2, 4, 8) and 20 (deadline)


async def test_wait_returns_as_soon_as_it_is_final(sn: SolarNetClient, sn_clock: FakeClock) -> None:
    """queue_and_wait returns at the first poll that sees a final state."""
    start = sn_clock.now
    done = await sn.instructions.queue_and_wait(
        178, "SetControlParameter", {"/power/limit": "50"}, poll_interval=0.5
    )
    assert done.state == "Completed"
    assert sn_clock.now - start == pytest.approx(3.5)  # polls at 0, .5, 1.5, 3.5


async def test_cancel_a_queued_instruction(sn: SolarNetClient) -> None:
    """Cancelling a queued instruction declines it and leaves nothing active."""
    (queued,) = await sn.instructions.add(179, "Signal")
    cancelled = await sn.instructions.cancel(queued.id)
    assert cancelled.state == "Declined"
    assert await sn.instructions.active(179) == []


async def test_cancel_a_deferred_instruction_the_node_holds(
    sn: SolarNetClient, sn_clock: FakeClock, sn_sim: SolarNetSimulator
) -> None:
    """A deferred instruction the node already holds is cancelled through the node."""
    when = datetime.fromtimestamp(sn_clock.now + 3600, UTC)
    (deferred,) = await sn.instructions.add(
        177, "SetControlParameter", {"/switch/1": "1"}, execution_date=when
    )
    assert deferred.params["executionDate"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    sn_clock.advance(5)
    assert (await sn.instructions.get(deferred.id)).state == "Received"
    after = await sn.instructions.cancel(deferred.id)
    assert after.state == "Received"  # the node declines it once the cancel runs
    sn_clock.advance(5)
    assert (await sn.instructions.get(deferred.id)).state == "Declined"
    cancels = await sn.instructions.list(177, states="Completed")
    assert [(i.topic, i.params) for i in cancels] == [
        ("CancelInstruction", {"id": str(deferred.id)})
    ]
    sn_clock.advance(7200)
    assert (await sn.instructions.get(deferred.id)).state == "Declined"
    assert sn_sim.world.nodes[177].controls["/switch/1"] == "0"  # it never ran


async def test_deferred_instruction_runs_at_its_date(
    sn: SolarNetClient, sn_clock: FakeClock, sn_sim: SolarNetSimulator
) -> None:
    """A deferred instruction stays queued until its execution date, then runs."""
    when = datetime.fromtimestamp(sn_clock.now + 600, UTC)
    (deferred,) = await sn.instructions.add(
        178, "SetControlParameter", {"/power/limit": "7"}, execution_date=when, encoding="form"
    )
    sn_clock.advance(599)
    assert (await sn.instructions.get(deferred.id)).state == "Received"
    sn_clock.advance(1)
    assert (await sn.instructions.get(deferred.id)).state == "Executing"
    sn_clock.advance(1)
    assert (await sn.instructions.get(deferred.id)).state == "Completed"
    assert sn_sim.world.nodes[178].controls["/power/limit"] == "7"


async def test_cancel_a_finished_instruction_changes_nothing(sn: SolarNetClient) -> None:
    """Cancelling a finished instruction leaves its final state as it was."""
    done = await sn.instructions.queue_and_wait(177, "Signal")
    assert (await sn.instructions.cancel(done.id)).state == "Completed"


async def test_list_view_active_pending_and_update_state(
    sn: SolarNetClient, sn_clock: FakeClock
) -> None:
    """Instructions list, view, filter active and pending, and change state."""
    (a,) = await sn.instructions.add(177, "Signal")
    (b,) = await sn.instructions.add(179, "Signal")
    sn_clock.advance(1.5)
    (c,) = await sn.instructions.add(177, "Signal")
    assert [i.id for i in await sn.instructions.active([177, 179])] == [b.id, c.id]
    assert [i.id for i in await sn.instructions.pending([177, 179])] == [a.id, b.id, c.id]
    assert [i.id for i in await sn.instructions.list(177)] == [a.id, c.id]
    assert [i.id for i in await sn.instructions.list([177, 179], states=["Queued"])] == [b.id, c.id]
    assert [i.id for i in await sn.instructions.list(177, instruction_ids=[c.id])] == [c.id]
    assert [i.id for i in await sn.instructions.get_many([c.id, a.id])] == [c.id, a.id]
    await sn.instructions.update_state([b.id, c.id], "Declined")
    assert [i.state for i in await sn.instructions.get_many([b.id, c.id])] == ["Declined"] * 2
    assert await sn.instructions.active(179) == []
    assert await sn.instructions.list(179, states="Queued") == []
    with pytest.raises(UsageError, match="not one of"):
        await sn.instructions.update_state(a.id, "Done")


async def test_instruction_errors(sn: SolarNetClient, sn_sim: SolarNetSimulator) -> None:
    """Another user's node is 403 and an unknown instruction 404."""
    with pytest.raises(PermissionDenied):
        await sn.instructions.add(300, "Signal")
    (other,) = await sn_sim.client(("other-sn-token", "other-sn-secret")).instructions.add(
        300, "Signal"
    )
    with pytest.raises(PermissionDenied):
        await sn.instructions.get(other.id)
    with pytest.raises(ValidationFailed, match="topic"):
        await sn._requester.call(
            "POST", "/instr/add", lambda r: r, json=orjson.dumps({"nodeId": 177})
        )
    with pytest.raises(UsageError, match="topic"):
        await sn.instructions.add(177, "no spaces please")


async def test_unsupported_topic_is_declined(sn: SolarNetClient) -> None:
    """An unsupported topic is Declined with the node's 501 result."""
    done = await sn.instructions.queue_and_wait(177, "Reboot")
    assert done.state == "Declined"
    assert done.result_parameters == {"code": "501", "message": "Topic Reboot is not supported."}
