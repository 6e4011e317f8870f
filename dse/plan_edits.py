"""Additions to a partition plan after the solve: the SLR placement, the SLR model's note and
bound, the replica layout. Each returns a new plan and leaves its argument unchanged."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dse.plan import PartitionPlan


def _copy(plan: PartitionPlan) -> dict[str, Any]:
    return copy.deepcopy(dict(plan.data))


def attach_slrs(plan: PartitionPlan, slrs: Sequence[Mapping[str, Any] | None]) -> PartitionPlan:
    """The SLR placement per board in the plan (``boards[i].slrs``, ``layers[j].slr``) and
    ``metrics.placeable``. The plan's data comes out in JSON's types (lists, not tuples), as
    a plan read back from its file has them."""
    d = json.loads(plan.to_json())
    for b in d["boards"]:
        x = slrs[b["index"]] if b["index"] < len(slrs) else None
        b["slrs"] = x and {k: v for k, v in x.items() if k != "slr_of"}
    for layer in d["layers"]:
        x = slrs[layer["board"]] if layer["board"] < len(slrs) else None
        if x and x["feasible"]:
            layer["slr"] = x["slr_of"][layer["name"]]
    d["metrics"]["placeable"] = all(x is None or x["feasible"] for x in slrs)
    return PartitionPlan(d)


def with_slr_model(plan: PartitionPlan, *, per_slr_boards: list[str],
                   bound_fps_any_floorplan: float, in_chain_order: bool = True
                   ) -> PartitionPlan:
    """The note on boards the solver modelled SLR by SLR, with the bound that holds for any
    floorplan (never below the plan's own FPS), and whether the plan's layers on them follow
    their SLRs in chain order."""
    d = _copy(plan)
    order = ("these boards' layers follow their SLRs in order (SLR0, SLR1, ...)"
             if in_chain_order else
             "the plan's layers on these boards take their SLRs in any order (the SLR fill or "
             "exact packing placed them)")
    d["solver"]["slr_model"] = {
        "per_slr_boards": per_slr_boards,
        "slr_plan": "chain order" if in_chain_order else "any order",
        "note": f"{order}; status and bound hold for plans whose layers follow their SLRs in "
                "order; bound_fps_any_floorplan holds for any",
        "bound_fps_any_floorplan": round(max(bound_fps_any_floorplan, d["metrics"]["fps"]), 3)}
    return PartitionPlan(d)


def with_replicas(plan: PartitionPlan, replicas: dict[str, Any]) -> PartitionPlan:
    """``metrics.replicas``: the layout chosen and the ones tried (dse.solver.replicas)."""
    d = _copy(plan)
    d["metrics"]["replicas"] = replicas
    return PartitionPlan(d)
