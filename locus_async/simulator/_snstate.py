"""The state of a simulated SolarNetwork: users, tokens, nodes, metadata, records, events,
and the simulated nodes that carry out instructions.

Owns: the data classes, the default world (``default_world``) and the instruction
timeline. An instruction's state is a function of time: a node that is online picks it up
(Received) ``step`` seconds after it was queued, starts executing ``step`` later (or at its
``executionDate``), and finishes ``step`` after that, Completed or Declined depending on the
topic and its parameters. Effects (a control's new value, a cancelled instruction) are
applied once, when the simulator settles instructions whose end has passed.
Must never: do I/O or read a clock (times are arguments).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final

import attrs

__all__ = [
    "SN_DEFAULT_TOKEN",
    "SN_OTHER_TOKEN",
    "SN_READ_TOKEN",
    "Invitation",
    "SnInstruction",
    "SnNode",
    "SnToken",
    "SnUser",
    "SnWorld",
    "default_world",
]

#: 2024-01-01T00:00:00Z: when the default world's objects were created.
EPOCH: Final = 1_704_067_200.0


@attrs.define
class SnUser:
    id: int
    name: str
    email: str
    location_id: int
    created: float = EPOCH


@attrs.define(repr=False)
class SnToken:
    """A security token. ``secret`` never prints."""

    id: str
    secret: str
    user_id: int
    type: str = "User"
    status: str = "Active"
    name: str | None = None
    description: str | None = None
    created: float = EPOCH
    policy: dict[str, Any] | None = None
    expires: float | None = None

    def __repr__(self) -> str:
        return f"SnToken(id={self.id!r}, user_id={self.user_id}, type={self.type!r})"

    def wire(self, now: float, fmt: Any, *, with_secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "created": fmt(self.created),
            "userId": self.user_id,
            "status": self.status,
            "type": self.type,
            "expired": self.expires is not None and now >= self.expires,
        }
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        if self.policy:
            out["policy"] = self.policy
        if with_secret:
            out["authSecret"] = self.secret
        return out


@attrs.define
class SnNode:
    id: int
    user_id: int
    name: str | None
    time_zone: str
    country: str
    location_id: int
    created: float = EPOCH
    description: str | None = None
    archived: bool = False
    private: bool = False
    #: False: the node never picks its instructions up (they stay Queued).
    online: bool = True
    #: Control id -> value, as ``SetControlParameter`` changes them.
    controls: dict[str, str] = attrs.field(factory=dict)
    #: Source id -> (instantaneous, accumulating, status) property names.
    sources: dict[str, tuple[list[str], list[str], list[str]]] = attrs.field(factory=dict)


@attrs.define
class SnInstruction:
    id: int
    node_id: int
    topic: str
    parameters: list[tuple[str, str]]
    created: float
    execution_at: float | None = None
    #: A state set through ``/instr/updateState``, and when.
    forced: tuple[str, float] | None = None
    #: The node's outcome, decided when it finishes: (state, result parameters).
    outcome: tuple[str, dict[str, Any] | None] | None = None
    settled: bool = False


@attrs.define
class Invitation:
    username: str
    confirmation_key: str
    user_id: int
    time_zone: str = "Pacific/Auckland"
    country: str = "NZ"


@attrs.define
class SnWorld:
    """Everything the simulated server stores."""

    users: dict[int, SnUser]
    tokens: dict[str, SnToken]
    nodes: dict[int, SnNode]
    node_meta: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    user_meta: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    datum_meta: dict[tuple[int, str], dict[str, Any]] = attrs.field(factory=dict)
    location_meta: dict[tuple[int, str], dict[str, Any]] = attrs.field(factory=dict)
    #: (type, nodeId, created ms, sourceId) -> record (wire form, created as ms).
    auxiliary: dict[tuple[str, int, int, str], dict[str, Any]] = attrs.field(factory=dict)
    #: (kind, nodeId, sourceId, start epoch s) -> created epoch s.
    stale: dict[tuple[str, int, str, int], float] = attrs.field(factory=dict)
    #: stream id -> (node id, source id).
    streams: dict[str, tuple[int, str]] = attrs.field(factory=dict)
    instructions: dict[int, SnInstruction] = attrs.field(factory=dict)
    events: list[dict[str, Any]] = attrs.field(factory=list)
    invitations: list[Invitation] = attrs.field(factory=list)
    next_instruction: int = 4_316_500
    next_node: int = 500

    def stream_id(self, node_id: int, source_id: str) -> str:
        """A stable stream id per (node, source), registered on first use."""
        ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"solarnetwork:{node_id}:{source_id}"))
        self.streams.setdefault(ident, (node_id, source_id))
        return ident

    def nodes_of(self, user_id: int) -> list[SnNode]:
        return [n for n in self.nodes.values() if n.user_id == user_id]


#: (token id, secret) of the demo User token (owner of nodes 177-180).
SN_DEFAULT_TOKEN: Final = ("demo-sn-token", "demo-sn-secret")
#: A ReadNodeData token of the same user (SolarUser answers it 403, whoami aside).
SN_READ_TOKEN: Final = ("demo-sn-reader", "demo-sn-reader-secret")
#: A User token of another user (owner of node 300).
SN_OTHER_TOKEN: Final = ("other-sn-token", "other-sn-secret")


def _sources() -> dict[str, tuple[list[str], list[str], list[str]]]:
    return {
        "/power/1": (["watts", "current", "voltage"], ["wattHours"], ["phase"]),
        "/meter/main": (["watts"], ["wattHours"], []),
    }


def default_world(*, extra_nodes: int = 0, events: int = 0) -> SnWorld:
    """Two users; user 147 has nodes 177 (NZ), 178 (DE), 179 (US, offline: instructions
    stay Queued) and 180 (archived); user 200 has node 300 (not ours: 403s). ``extra_nodes``
    adds nodes 1000.. to user 147 for paging; ``events`` adds generated user events."""
    users = {
        147: SnUser(147, "Demo Owner", "demo@solarnetwork.example", 11536819),
        200: SnUser(200, "Someone Else", "else@solarnetwork.example", 11536820),
    }
    tokens = {
        SN_DEFAULT_TOKEN[0]: SnToken(SN_DEFAULT_TOKEN[0], SN_DEFAULT_TOKEN[1], 147, name="Demo"),
        SN_READ_TOKEN[0]: SnToken(
            SN_READ_TOKEN[0], SN_READ_TOKEN[1], 147, type="ReadNodeData", policy={"nodeIds": [177]}
        ),
        SN_OTHER_TOKEN[0]: SnToken(SN_OTHER_TOKEN[0], SN_OTHER_TOKEN[1], 200, name="Other"),
    }
    nodes = {
        177: SnNode(
            177,
            147,
            "Home",
            "Pacific/Auckland",
            "NZ",
            11532079,
            description="Example SolarNode",
            controls={"/switch/1": "0", "/switch/2": "0"},
            sources=_sources(),
        ),
        178: SnNode(
            178,
            147,
            "Workshop",
            "Europe/Berlin",
            "DE",
            11532080,
            controls={"/power/limit": "100"},
            sources=_sources(),
        ),
        179: SnNode(179, 147, "Barn", "America/Los_Angeles", "US", 11532081, online=False),
        180: SnNode(180, 147, "Old", "Pacific/Auckland", "NZ", 11532079, archived=True),
        300: SnNode(300, 200, "Theirs", "Europe/London", "GB", 11532090, sources=_sources()),
    }
    for offset in range(extra_nodes):
        ident = 1000 + offset
        nodes[ident] = SnNode(ident, 147, f"Fleet {ident}", "UTC", "NZ", 11532100)
    world = SnWorld(users=users, tokens=tokens, nodes=nodes)
    world.node_meta[177] = {
        "created": EPOCH,
        "updated": EPOCH,
        "m": {"hardware": "raspberry-pi", "os": "debian", "os-version": 12},
        "pm": {"room": {"foo": "bar"}},
        "t": ["green", "special"],
    }
    world.node_meta[178] = {
        "created": EPOCH,
        "updated": EPOCH,
        "m": {"hardware": "x86", "os": "debian", "os-version": 11},
        "t": ["yellow"],
    }
    world.user_meta[147] = {"created": EPOCH, "updated": EPOCH, "m": {"plan": "pro"}}
    for node in nodes.values():
        for source in node.sources:
            world.stream_id(node.id, source)
    base: list[tuple[list[str], dict[str, Any]]] = [
        (["ocpp", "message", "received"], {"cp": "1234ZY", "action": "Heartbeat", "status": 1}),
        (
            ["ocpp", "message", "received"],
            {
                "cp": "1234ZY",
                "action": "Heartbeat",
                "messageId": "rukjys5f8q9fjce8x79kl4is",
                "status": 1,
                "options": {"duration": 60, "errorThreshold": 3},
            },
        ),
        (["datum", "import"], {"nodeId": 177, "count": 42}),
    ]
    generated: list[tuple[list[str], dict[str, Any]]] = [
        (["generated", "ocpp" if i % 2 else "datum"], {"n": i, "cp": f"CP{i % 7}", "status": i % 3})
        for i in range(events)
    ]
    for index, (tags, data) in enumerate(base + generated):
        world.events.append(
            {
                "userId": 147,
                "created": EPOCH + 60.0 * index + 0.533452,
                "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"event:{index}")),
                "tags": tags,
                "data": data,
            }
        )
    world.invitations.append(Invitation("demo@solarnetwork.example", "invite-177-key", 147))
    return world


# -- instructions ---------------------------------------------------------------------------

TOPICS: Final = frozenset({"SetControlParameter", "Signal", "UpdateSetting", "CancelInstruction"})


def timeline(ins: SnInstruction, node: SnNode | None, step: float) -> list[tuple[float, str]]:
    """(from, state) transitions of an instruction left to its node."""
    points = [(ins.created, "Queued")]
    if node is None or not node.online:
        return points
    received = ins.created + step
    points.append((received, "Received"))
    start = ins.created + 2 * step
    if ins.execution_at is not None:
        start = max(received, ins.execution_at)
    points.append((start, "Executing"))
    points.append((start + step, "Finished"))
    return points


def state_at(ins: SnInstruction, node: SnNode | None, step: float, now: float) -> tuple[str, float]:
    """(state, since) at ``now``; ``Finished`` stands for the outcome (Completed/Declined)."""
    if ins.forced is not None and now >= ins.forced[1]:
        return ins.forced
    current = (ins.created, "Queued")
    for since, state in timeline(ins, node, step):
        if since <= now:
            current = (since, state)
    return current[1], current[0]


def finish_time(ins: SnInstruction, node: SnNode | None, step: float) -> float | None:
    if ins.forced is not None and ins.forced[0] in ("Completed", "Declined"):
        return ins.forced[1]
    points = timeline(ins, node, step)
    return points[-1][0] if points[-1][1] == "Finished" else None


def outcome(
    ins: SnInstruction, node: SnNode, others: Iterable[SnInstruction], step: float, at: float
) -> tuple[str, dict[str, Any] | None]:
    """What the node answers: Completed, or Declined with ``code`` and ``message``."""
    params = dict(ins.parameters)
    params.pop("executionDate", None)
    if ins.topic == "SetControlParameter":
        unknown = [name for name in params if name not in node.controls]
        if not params or unknown:
            name = unknown[0] if unknown else "(none)"
            return "Declined", {"code": "5000", "message": f"Control '{name}' not available."}
        return "Completed", None
    if ins.topic == "CancelInstruction":
        target_id = params.get("id", "")
        target = next(
            (o for o in others if str(o.id) == target_id and o.node_id == ins.node_id), None
        )
        if target is None:
            return "Declined", {"code": "404", "message": f"Instruction {target_id} not found."}
        state, _ = state_at(target, node, step, at)
        if state != "Received":
            return "Declined", {
                "code": "409",
                "message": f"Instruction {target_id} is {state}; only Received ones cancel.",
            }
        return "Completed", None
    if ins.topic in TOPICS:
        return "Completed", {"message": "OK"}
    return "Declined", {"code": "501", "message": f"Topic {ins.topic} is not supported."}
