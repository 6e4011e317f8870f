"""Conservation of nodes: every node of the input becomes a HW layer, a host node, is absorbed
into a named layer, or is an error. Never a silent drop.

The check is independent of the lowering rules: it only reads which ONNX nodes each layer was
made from (``source_nodes``) and which stayed on the host, and walks the ONNX graph backwards.
A node no layer was made from is *absorbed* into the layer of its first consumer when it is of
a kind FINN folds away (weight quantizers and other constant subgraphs, scales, biases,
BatchNorm, ReLU, layout changes); any other unaccounted node is a lowering bug and raises
:class:`~dse.exceptions.InternalError` naming the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dse.exceptions import InternalError

# op kinds whose effect FINN folds into the neighbouring HW layer
ABSORBABLE = frozenset({
    "Mul", "Div", "Add", "Sub", "BatchNormalization", "Relu", "Clip",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout",
    "Quant", "BipolarQuant", "MultiThreshold", "Trunc",
    "Neg", "Cast", "Where", "Gather",  # sign flips, float casts, masks, unit-axis picks
    "Expand",  # repeat_kv: grouped K/V heads are read per group, not copied
})


def _absorbable(n: Any) -> bool:
    # a Concat of one tensor (a KV-cache update of an empty cache) is the tensor itself
    return n.op_type in ABSORBABLE or (n.op_type == "Concat" and len(n.input) == 1)


def absorbed_nodes(graph: Any, layer_sources: Sequence[Iterable[str]], host: Iterable[str],
                   output_layers: Sequence[int]) -> tuple[dict[int, list[str]], list[Any]]:
    """(layer index -> names of the ONNX nodes absorbed into it, nodes that feed only host
    nodes and so stay on the host with them).

    ``layer_sources[i]`` are the nodes layer ``i`` was made from; ``output_layers`` the
    layers producing the graph outputs (the float tail absorbs into them).
    """
    owner: dict[str, int] = {}
    for i, srcs in enumerate(layer_sources):
        for s in srcs:
            owner.setdefault(s, i)
    hosted = set(host)
    consts = {i.name for i in graph.initializer}
    for n in graph.node:  # constant subgraphs (weights and their quantizers / layout ops)
        if all(t == "" or t in consts for t in n.input):
            consts.update(n.output)
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    graph_out = {o.name for o in graph.output}
    fallback = output_layers[-1] if output_layers else None
    resolved: dict[str, int | None] = {}  # node name -> layer index (None: host side)
    lost: list[str] = []
    out: dict[int, list[str]] = {}
    on_host: list[Any] = []
    for n in reversed(graph.node):
        if n.name in owner:
            resolved[n.name] = owner[n.name]
            continue
        if n.name in hosted:
            resolved[n.name] = None
            continue
        if not _absorbable(n) and not all(t in consts for t in n.output):
            lost.append(f"{n.op_type} {n.name!r}")
            continue
        target: int | None = None
        found = False
        for o in n.output:
            for c in consumers.get(o, []):
                if c.name in resolved:
                    target, found = resolved[c.name], True
                    break
            if not found and o in graph_out:
                target, found = fallback, True
            if found:
                break
        if not found:
            continue  # dead node: nothing reads it
        resolved[n.name] = target
        if target is not None:
            out.setdefault(target, []).append(n.name)
        else:
            on_host.append(n)
    if lost:
        raise InternalError(
            f"the lowering lost {len(lost)} node(s) without a HW layer, host node or error: "
            f"{', '.join(reversed(lost[-8:]))}; please report this with the model"
        )
    return {k: list(reversed(v)) for k, v in out.items()}, list(reversed(on_host))
