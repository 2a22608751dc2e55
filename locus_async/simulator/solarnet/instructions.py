"""Handlers of instructions and the simulated nodes that run them: Queued, Received, Executing,
Completed or Declined, deferred by execution date, cancellable.

Owns: the instruction lifecycle. Must never: read the real clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from locus_async.simulator._http import SimResponse
from locus_async.simulator._snstate import (
    SnInstruction,
    finish_time,
    outcome,
    state_at,
)
from locus_async.simulator.solarnet.state import (
    STATES,
    CoreState,
    _Call,
    _epoch_or_text,
    _invalid,
    _not_found,
    fmt,
)


class InstructionHandlers(CoreState):
    """The instruction endpoints and the nodes' behaviour."""

    def settle(self, until: float | None = None) -> None:
        """Apply the effects of every instruction that has ended by ``until`` (default now),
        in time order."""
        now = self.clock() if until is None else until
        world = self.world
        pending = []
        for ins in world.instructions.values():
            if ins.settled:
                continue
            end = finish_time(ins, world.nodes.get(ins.node_id), self.step)
            if end is not None and end <= now:
                pending.append((end, ins.id, ins))
        for end, _, ins in sorted(pending, key=lambda p: (p[0], p[1])):
            ins.settled = True
            if ins.forced is not None:
                continue
            node = world.nodes[ins.node_id]
            ins.outcome = outcome(
                ins, node, world.instructions.values(), self.step, end - self.step
            )
            if ins.outcome[0] != "Completed":
                continue
            params = dict(ins.parameters)
            if ins.topic == "SetControlParameter":
                params.pop("executionDate", None)
                node.controls.update(params)
            elif ins.topic == "CancelInstruction":
                target = world.instructions[int(params["id"])]
                target.forced = ("Declined", end)
                target.outcome = ("Declined", {"message": "Cancelled"})
                target.settled = True

    def _instr_wire(self, ins: SnInstruction, at: float) -> dict[str, Any]:
        node = self.world.nodes.get(ins.node_id)
        state, since = state_at(ins, node, self.step, at)
        result = None
        if state == "Finished":
            decided = ins.outcome
            if decided is None and node is not None:
                decided = outcome(
                    ins, node, self.world.instructions.values(), self.step, since - self.step
                )
            state, result = decided or ("Completed", None)
        elif ins.forced is not None and state == ins.forced[0] and ins.outcome is not None:
            result = ins.outcome[1]
        out: dict[str, Any] = {
            "id": ins.id,
            "created": fmt(ins.created),
            "nodeId": ins.node_id,
            "topic": ins.topic,
            "instructionDate": fmt(ins.created),
            "state": state,
            "statusDate": fmt(since),
            "parameters": [{"name": n, "value": v} for n, v in ins.parameters],
        }
        if result:
            out["resultParameters"] = result
        return out

    def _instruction_input(self, call: _Call) -> tuple[list[int], str, list[tuple[str, str]], bool]:
        """(node ids, topic, parameters, single) from a JSON body or form fields."""
        path_topic = call.groups[0] if call.groups else None
        content_type = (call.request.header("content-type") or "").split(";")[0].strip()
        if content_type == "application/json":
            body = call.json()
            if not isinstance(body, dict):
                raise _invalid("The instruction must be an object")
            if "nodeIds" in body:
                raise _invalid("The JSON form takes a single nodeId", "nodeIds")
            if "params" in body and "parameters" in body:
                raise _invalid("Give params or parameters, not both", "params")
            node_id = body.get("nodeId")
            if isinstance(node_id, bool) or not isinstance(node_id, int):
                raise _invalid("nodeId must be a number", "nodeId")
            topic = path_topic or body.get("topic")
            pairs: list[tuple[str, str]] = []
            if isinstance(body.get("params"), dict):
                pairs = [(str(k), str(v)) for k, v in body["params"].items()]
            elif isinstance(body.get("parameters"), list):
                for item in body["parameters"]:
                    if not isinstance(item, dict) or "name" not in item:
                        raise _invalid("Each parameter needs a name", "parameters")
                    pairs.append((str(item["name"]), str(item.get("value", ""))))
            return [node_id], str(topic or ""), pairs, True
        ids = self._node_ids(call)
        topic = path_topic or call.get("topic") or ""
        indexed: dict[int, dict[str, str]] = {}
        for key, value in call.params:
            found = re.fullmatch(r"parameters\[(\d+)\]\.(name|value)", key)
            if found:
                indexed.setdefault(int(found[1]), {})[found[2]] = value
        pairs = []
        for index in sorted(indexed):
            entry = indexed[index]
            if "name" not in entry:
                raise _invalid(f"parameters[{index}].name is required", "parameters")
            pairs.append((entry["name"], entry.get("value", "")))
        single = not call.all("nodeIds")
        return ids, topic, pairs, single

    def _queue(self, call: _Call) -> tuple[list[SnInstruction], bool]:
        ids, topic, pairs, single = self._instruction_input(call)
        if not topic:
            raise _invalid("topic is required", "topic")
        nodes = [self._node(call, i) for i in ids]
        execution_at = None
        given = dict(pairs).get("executionDate")
        if given is not None:
            execution_at = (
                float(given) / 1000 if given.isdigit() else _epoch_or_text(given, "executionDate")
            )
        world = self.world
        made = []
        for node in nodes:
            world.next_instruction += 1
            ins = SnInstruction(
                world.next_instruction, node.id, topic, list(pairs), call.now, execution_at
            )
            world.instructions[ins.id] = ins
            made.append(ins)
        self.stats.counters["instructions"] += len(made)
        return made, single

    def _instr_add(self, call: _Call) -> SimResponse:
        made, single = self._queue(call)
        wires = [self._instr_wire(i, call.now) for i in made]
        return self._ok(wires[0] if single else wires)

    def _instr_exec(self, call: _Call) -> SimResponse:
        text = call.get("resultMaxWait")
        try:
            wait = int(text) if text is not None else 60
        except ValueError:
            raise _invalid("resultMaxWait must be a number of seconds", "resultMaxWait") from None
        if not 0 <= wait <= 60:
            raise _invalid("resultMaxWait must be between 0 and 60", "resultMaxWait")
        made, single = self._queue(call)
        ends = [finish_time(i, self.world.nodes.get(i.node_id), self.step) for i in made]
        if all(e is not None and e - call.now <= wait for e in ends):
            at = max(e for e in ends if e is not None)
        else:
            at = call.now + wait
        wires = [self._instr_wire(i, at) for i in made]
        self.settle(until=at)  # the node has acted by the time the held answer goes out
        response = self._ok(wires[0] if single else wires)
        return attrs.evolve(response, hold=max(0.0, at - call.now))

    def _instructions_of(self, ids: Iterable[int]) -> list[SnInstruction]:
        wanted = set(ids)
        return sorted(
            (i for i in self.world.instructions.values() if i.node_id in wanted), key=lambda i: i.id
        )

    def _instr_list(self, call: _Call) -> SimResponse:
        ids = self._node_ids(call)
        states = call.get("states") or call.get("state")
        wanted = set(states.split(",")) if states else None
        only = set(self._ints(call.get("instructionIds") or "", "instructionIds")) or None
        start, end = self._range(call)
        out = []
        for ins in self._instructions_of(ids):
            wire = self._instr_wire(ins, call.now)
            if wanted is not None and wire["state"] not in wanted:
                continue
            if only is not None and ins.id not in only:
                continue
            if (start is not None and ins.created < start) or (
                end is not None and ins.created >= end
            ):
                continue
            out.append(wire)
        return self._ok(out, omit_empty=True)

    def _own_instruction(self, call: _Call, ident: int) -> SnInstruction:
        ins = self.world.instructions.get(ident)
        if ins is None:
            raise _not_found(f"Instruction {ident}")
        self._node(call, ins.node_id)
        return ins

    def _instr_view(self, call: _Call) -> SimResponse:
        many = call.get("ids")
        if many is not None:
            found = [self.world.instructions.get(i) for i in self._ints(many, "ids")]
            wires = [
                self._instr_wire(i, call.now)
                for i in found
                if i is not None and self._mine(call, i)
            ]
            return self._ok(wires, omit_empty=True)
        single = call.get("id")
        if not single:
            raise _invalid("id or ids is required", "id")
        ins = self._own_instruction(call, self._ints(single, "id")[0])
        return self._ok(self._instr_wire(ins, call.now))

    def _mine(self, call: _Call, ins: SnInstruction) -> bool:
        node = self.world.nodes.get(ins.node_id)
        return node is not None and node.user_id == call.token.user_id

    def _instr_by_state(self, call: _Call, states: set[str]) -> SimResponse:
        ids = self._node_ids(call)
        wires = [self._instr_wire(i, call.now) for i in self._instructions_of(ids)]
        return self._ok([w for w in wires if w["state"] in states][:2000], omit_empty=True)

    def _instr_active(self, call: _Call) -> SimResponse:
        return self._instr_by_state(call, {"Queued"})

    def _instr_pending(self, call: _Call) -> SimResponse:
        return self._instr_by_state(call, {"Queued", "Received", "Executing"})

    def _instr_update_state(self, call: _Call) -> SimResponse:
        state = call.get("state")
        if state not in STATES:
            raise _invalid(f"Unknown state {state}", "state")
        text = call.get("ids") or call.get("id")
        if not text:
            raise _invalid("id or ids is required", "id")
        targets = [self._own_instruction(call, i) for i in self._ints(text, "ids")]
        for ins in targets:
            ins.forced = (state, call.now)
            ins.outcome = (state, None)
            ins.settled = True
        return self._ok()
