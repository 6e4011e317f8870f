"""A plan checked against the network it is for and the board catalog, before ``dse emit``
writes anything: a hand-edited plan whose boards were swapped or renamed, whose layer was
renamed, or whose folding FINN would reject is one line (exit 2), not a build directory.

Checks (the plan's own schema is :class:`dse.schemas.PlanIn`, checked when it is loaded):

* boards: every name is a board of the catalog, with the plan's part;
* layers: the plan has exactly the network's layers, each with the network's op type;
* order: no stream runs backwards along the chain (a layer's board is never before the board
  of a layer feeding it), so the boards are in pipeline order;
* folding: every layer's folding is legal for FINN (the cost model raises on what FINN's
  ``verify_node``/folding rules reject) and gives the cycles the plan states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dse.exceptions import DseError, PlanError


def check_plan_against(plan: Any, graph: Any, catalog: Any, where: str = "plan") -> None:
    """Raise :class:`PlanError` naming the first thing in ``plan`` that ``graph`` (a
    :class:`dse.ir.graph.LayerGraph`) or ``catalog`` (a :class:`dse.specs.Catalog`) contradicts."""
    data: Mapping[str, Any] = plan.data if hasattr(plan, "data") else plan
    _check_boards(data, catalog, where)
    board_of = _check_layers(data, graph, where)
    _check_order(graph, board_of, where)


def _check_boards(data: Mapping[str, Any], catalog: Any, where: str) -> None:
    known = {n.lower(): b for n, b in catalog.boards.items()}
    for b in data["boards"]:
        cat = known.get(str(b["name"]).lower())
        if cat is None:
            raise PlanError(f"{where}: boards[{b['index']}] {b['name']!r} is not a board of the "
                            f"catalog ({', '.join(catalog.boards)}); was the plan edited? (a "
                            "board of your own: give its --board-file)")
        if cat.part != b["part"]:
            raise PlanError(f"{where}: boards[{b['index']}] {b['name']} has part {b['part']!r}, "
                            f"but {cat.name} is {cat.part}; was the plan edited?")


def _check_layers(data: Mapping[str, Any], graph: Any, where: str) -> dict[str, int]:
    net = {layer.name: layer for layer in graph.layers}
    planned = {str(pl["name"]): pl for pl in data["layers"]}
    missing = [n for n in net if n not in planned]
    extra = [n for n in planned if n not in net]
    if extra:
        raise PlanError(f"{where}: layer {extra[0]!r} is not in the network {graph.name} "
                        f"({len(net)} layers: {', '.join(list(net)[:4])}, ...); the plan is "
                        "for another model or was edited")
    if missing:
        raise PlanError(f"{where}: the network's layer {missing[0]!r} is not in the plan"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; "
                        "the plan is for another model or was edited")
    parts = {b["index"]: b["part"] for b in data["boards"]}
    for name, pl in planned.items():
        layer = net[name]
        if pl["op_type"] != layer.op_type:
            raise PlanError(f"{where}: layer {name} is {pl['op_type']} in the plan but "
                            f"{layer.op_type} in the network")
        _check_folding(layer, pl, parts.get(pl["board"]), where)
    return {name: int(pl["board"]) for name, pl in planned.items()}


def _check_folding(layer: Any, pl: Mapping[str, Any], part: str | None, where: str) -> None:
    folding = {k: v for k, v in dict(pl["folding"]).items() if v is not None}
    try:
        cost = layer.cost(part, **folding)
    except DseError as e:
        raise PlanError(f"{where}: layer {layer.name}: folding {_short(folding)} is not one "
                        f"FINN accepts ({e})") from None
    if cost.cycles != pl["cycles"]:
        raise PlanError(f"{where}: layer {layer.name}: the plan states {pl['cycles']:,} cycles, "
                        f"its folding {_short(folding)} gives {cost.cycles:,}; was the plan "
                        "edited?")


def _check_order(graph: Any, board_of: dict[str, int], where: str) -> None:
    for e in graph.edges:
        a, b = board_of.get(e.src), board_of.get(e.dst)
        if a is not None and b is not None and b < a:
            raise PlanError(f"{where}: stream {e.src} -> {e.dst} runs from board {a} back to "
                            f"board {b}; boards must be in pipeline order (were they "
                            "swapped?)")


def _short(folding: Mapping[str, Any]) -> str:
    s = ", ".join(f"{k}={v}" for k, v in sorted(folding.items()))
    return s if len(s) <= 80 else s[:77] + "..."
