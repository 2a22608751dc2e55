"""Instructions to nodes: add, exec, list, states, and the waiting helpers."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from locus_async._core.checks import check_id
from locus_async.errors import (
    InstructionTimeout,
    InvalidArgumentType,
    UsageError,
)
from locus_async.solarnetwork._core import wire
from locus_async.solarnetwork._core.endpoints import (
    INSTRUCTION_ADD,
    INSTRUCTION_EXEC,
    INSTRUCTION_STATES,
    INSTRUCTION_UPDATE_STATE,
    INSTRUCTION_VIEW,
    INSTRUCTIONS,
    INSTRUCTIONS_ACTIVE,
    INSTRUCTIONS_PENDING,
)
from locus_async.solarnetwork._core.envelope import (
    list_decoder,
    object_decoder,
    success_decoder,
)
from locus_async.solarnetwork.models import (
    Instruction,
)
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["InstructionsAPI"]


def _instruction_ids(values: object) -> builtins.list[int]:
    return wire.id_list(values, "instruction_ids")


class InstructionsAPI(Resource):
    """``/instr``: queue (``add``), ``exec`` (wait server-side), list, view, active,
    pending, state updates, and the helpers ``wait``, ``queue_and_wait`` and ``cancel``.

    Queueing is never retried once it may have reached the server (it would queue twice);
    a 429 or a connection that never opened is retried.
    """

    def _body(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None,
        execution_date: datetime | str | None,
        encoding: Literal["auto", "json", "form"],
    ) -> dict[str, Any]:
        ids = wire.id_list(node_ids, "node_ids")
        name = wire.check_topic(topic)
        pairs = wire.parse_instruction_params(params, execution_date)
        if encoding not in ("auto", "json", "form"):
            raise UsageError("encoding must be 'auto', 'json' or 'form'")
        if encoding == "json" and len(ids) > 1:
            raise UsageError("the JSON form takes one node; use encoding='form' for several")
        if encoding == "form" or len(ids) > 1:
            return {"form": wire.instruction_form(ids, name, pairs)}
        return {"json": wire.instruction_json(ids[0], name, pairs)}

    async def add(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        execution_date: datetime | str | None = None,
        encoding: Literal["auto", "json", "form"] = "auto",
    ) -> builtins.list[Instruction]:
        """Queue ``topic`` for each node (one instruction per node). ``execution_date``
        (aware datetime) defers execution on the node."""
        body = self._body(node_ids, topic, params, execution_date, encoding)
        return await self._requester.call(
            "POST", INSTRUCTION_ADD, list_decoder(self._converter, Instruction), **body
        )

    async def exec(
        self,
        node_ids: int | Iterable[int],
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        result_max_wait: int = wire.MAX_RESULT_WAIT,
        execution_date: datetime | str | None = None,
        encoding: Literal["auto", "json", "form"] = "auto",
    ) -> builtins.list[Instruction]:
        """Queue and let the server wait up to ``result_max_wait`` seconds (at most 60) for
        Completed or Declined; instructions still running come back as they stand.

        The credential's slot is held while the server waits: with the default allowance
        of 1, other calls queue behind it.
        """
        if isinstance(result_max_wait, bool) or not isinstance(result_max_wait, int):
            raise InvalidArgumentType("result_max_wait must be an int number of seconds")
        if not 0 <= result_max_wait <= wire.MAX_RESULT_WAIT:
            raise UsageError(
                f"result_max_wait must be between 0 and {wire.MAX_RESULT_WAIT} seconds, "
                f"got {result_max_wait}"
            )
        body = self._body(node_ids, topic, params, execution_date, encoding)
        return await self._requester.call(
            "POST",
            INSTRUCTION_EXEC,
            list_decoder(self._converter, Instruction),
            params=[("resultMaxWait", str(result_max_wait))],
            server_wait=float(result_max_wait),
            **body,
        )

    async def list(
        self,
        node_ids: int | Iterable[int],
        *,
        states: str | Iterable[str] | None = None,
        instruction_ids: int | Iterable[int] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> builtins.list[Instruction]:
        """Instructions of the nodes matching the filters (``GET /instr``)."""
        params = wire.node_params(node_ids)
        if states is not None:
            params.append(("states", ",".join(self._states(states))))
        if instruction_ids is not None:
            params.append(("instructionIds", ",".join(map(str, _instruction_ids(instruction_ids)))))
        if start is not None:
            params.append(("startDate", wire.utc_minute(start, "start")))
        if end is not None:
            params.append(("endDate", wire.utc_minute(end, "end")))
        return await self._requester.call(
            "GET", INSTRUCTIONS, list_decoder(self._converter, Instruction), params=params
        )

    @staticmethod
    def _states(states: str | Iterable[str]) -> builtins.list[str]:
        items = [states] if isinstance(states, str) else list(states)
        for state in items:
            if state not in INSTRUCTION_STATES:
                raise UsageError(f"state {state!r} is not one of: {', '.join(INSTRUCTION_STATES)}")
        if not items:
            raise UsageError("states is empty")
        return items

    async def get(self, instruction_id: int) -> Instruction:
        ident = check_id(instruction_id, "instruction_id")
        return await self._requester.call(
            "GET",
            INSTRUCTION_VIEW,
            object_decoder(self._converter, Instruction),
            params=[("id", str(ident))],
        )

    async def get_many(self, instruction_ids: Iterable[int]) -> builtins.list[Instruction]:
        ids = _instruction_ids(instruction_ids)
        return await self._requester.call(
            "GET",
            INSTRUCTION_VIEW,
            list_decoder(self._converter, Instruction),
            params=[("ids", ",".join(map(str, ids)))],
        )

    async def active(self, node_ids: int | Iterable[int]) -> builtins.list[Instruction]:
        """Queued instructions (at most 2,000; use ``list(states='Queued')`` for all)."""
        return await self._requester.call(
            "GET",
            INSTRUCTIONS_ACTIVE,
            list_decoder(self._converter, Instruction),
            params=wire.node_params(node_ids),
        )

    async def pending(self, node_ids: int | Iterable[int]) -> builtins.list[Instruction]:
        """Queued, Received or Executing instructions (at most 2,000)."""
        return await self._requester.call(
            "GET",
            INSTRUCTIONS_PENDING,
            list_decoder(self._converter, Instruction),
            params=wire.node_params(node_ids),
        )

    async def update_state(self, instruction_ids: int | Iterable[int], state: str) -> None:
        """Set the state of instructions (Declined on a Queued one cancels it). Safe to
        repeat."""
        (name,) = self._states([state])
        ids = _instruction_ids(instruction_ids)
        field = ("id", str(ids[0])) if len(ids) == 1 else ("ids", ",".join(map(str, ids)))
        await self._requester.call(
            "POST",
            INSTRUCTION_UPDATE_STATE,
            success_decoder,
            form=[field, ("state", name)],
            retry_safe=True,
        )

    async def wait(
        self,
        instruction_id: int,
        *,
        max_wait: float = 60.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Instruction:
        """Poll until the instruction is Completed or Declined, backing off from
        ``poll_interval`` to ``max_poll_interval`` seconds; InstructionTimeout after
        ``max_wait`` seconds (the slot is free between polls)."""
        for name, value in (
            ("max_wait", max_wait),
            ("poll_interval", poll_interval),
            ("max_poll_interval", max_poll_interval),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UsageError(f"{name} must be a positive number of seconds")
        requester = self._requester
        deadline = requester.monotonic() + max_wait
        delay = float(poll_interval)
        while True:
            instruction = await self.get(instruction_id)
            if instruction.is_final:
                return instruction
            remaining = deadline - requester.monotonic()
            if remaining <= 0:
                raise InstructionTimeout(
                    f"instruction {instruction.id} ({instruction.topic}) is still "
                    f"{instruction.state} after {max_wait:g} s",
                    instruction=instruction,
                )
            await requester.sleep(min(delay, remaining))
            delay = min(delay * 2, float(max_poll_interval))

    async def queue_and_wait(
        self,
        node_id: int,
        topic: str,
        params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *,
        execution_date: datetime | str | None = None,
        max_wait: float = 60.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> Instruction:
        """Queue one instruction and wait for it to finish (see ``wait``)."""
        (queued,) = await self.add(node_id, topic, params, execution_date=execution_date)
        if queued.is_final:
            return queued
        return await self.wait(
            queued.id,
            max_wait=max_wait,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        )

    async def cancel(self, instruction_id: int) -> Instruction:
        """Cancel an instruction the way its state allows, and return it as it stands.

        Queued: set to Declined. Received (a deferred one the node holds): a
        ``CancelInstruction`` is queued for its node, which declines it. Executing or final:
        nothing can be done; it is returned unchanged (check ``state``).
        """
        instruction = await self.get(instruction_id)
        if instruction.state in ("Queued", "Queuing"):
            await self.update_state(instruction.id, "Declined")
            return await self.get(instruction.id)
        if instruction.state == "Received" and instruction.node_id is not None:
            await self.add(instruction.node_id, "CancelInstruction", {"id": str(instruction.id)})
            return await self.get(instruction.id)
        return instruction
