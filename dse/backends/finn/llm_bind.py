"""Bind the user's export of an LLM to its plan: finn-plus's HW-layer graph of the export,
cut into the plan's blocks, each HW node matched to a layer of the plan's block.

Blocks are found in graph order: the plan's block has ``m`` MVAUs, so the export's MVAUs
``b*m .. (b+1)*m - 1`` belong to block ``b``, and block ``b`` ends at the first node after
its last MVAU, fed by it, of the op type the plan's block ends with (the residual add).
What follows the last block is the head (final norm and vocabulary projection).

Within a block, the HW nodes of each op type match the plan block's layers of that type in
order where finn-plus makes as many as dse (MVAU and Thresholding on the TorchScript exports,
``tests/test_transformer_families.py``); an MVAU whose MW/MH differ refuses the export in one
line (an export of another config). Op types finn-plus makes a different number of, and the
ops it leaves un-lowered (float RMSNorm, rotary slices, attention MatMuls), are named in one
line each: those nodes keep FINN's defaults or are not FINN hardware.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from dse.backends.finn.partition import sub_model
from dse.exceptions import PlanError
from dse.ir.finn_hw import _attrs as hw_attrs
from dse.ir.onnx_io import HW_DOMAIN
from dse.models import estimate, split_op_type

#: the FINN attributes that fix a layer's shape (a different config changes them)
SHAPE_KEYS = {"MVAU": ("MW", "MH"), "Thresholding": ("NumChannels",)}
#: what a node must share with the plan's layer to take its folding (where both have it).
#: Not an MVAU's output type (the accumulator FINN minimizes later, as the plan did), nor a
#: PWPolyF's function (finn-plus's sigmoid of x * sigmoid(x) is dse's fused silu: one stream)
SAME_KEYS = ("MW", "MH", "NumChannels", "numSteps", "numInputVectors", "in_shape", "perm",
             "inputDataType", "outputDataType", "weightDataType", "lhs_shape", "rhs_shape",
             "out_shape", "Heads", "QKDim", "VDim", "QLen", "KVLen")
MINIMIZED = {"MVAU": ("outputDataType",), "VVAU": ("outputDataType",)}


def same_layer(node: onnx.NodeProto, want: Mapping[str, Any] | None) -> bool:
    """Whether ``node`` is the plan's layer of attributes ``want`` (its shape and types);
    unknown (no rebuilt block) counts as the same."""
    if want is None:
        return True
    got = hw_attrs(node)

    def norm(v: Any) -> Any:
        return [int(x) for x in v] if isinstance(v, (list, tuple)) else v

    skip = MINIMIZED.get(node.op_type, ())
    return all(norm(got[k]) == norm(want[k]) for k in SAME_KEYS
               if k in got and k in want and k not in skip)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockRange:
    """A stage's blocks: ``full`` whole blocks, the MLP half of block ``mlp_half`` before
    them, the attention half of block ``attn_half`` after them, and the head."""

    full: tuple[int, ...]
    mlp_half: int | None
    attn_half: int | None
    head: bool


def block_range(label: str, parts: Sequence[str]) -> BlockRange:
    """"4.5-8.5" -> the MLP half of block 4, blocks 5-7, the attention half of block 8."""
    try:
        a, b = (float(x) for x in str(label).split("-"))
    except ValueError:
        raise PlanError(f"LLM plan stage blocks {label!r}: expected a range such as 0-4 or "
                        "4.5-8.5; rerun dse optimize") from None
    first, end = math.ceil(a), math.floor(b)
    return BlockRange(full=tuple(range(first, end)),
                      mlp_half=math.floor(a) if a != first else None,
                      attn_half=end if b != end else None, head="head" in parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    model: onnx.ModelProto  # finn-plus's HW-layer graph of the export
    blocks: tuple[tuple[str, ...], ...]  # per block its nodes (HW and not), in graph order
    head: tuple[str, ...]
    layer_of: Mapping[str, str]  # HW node -> the plan block's layer it is
    notes: tuple[str, ...]
    source: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class StageNode:
    generic_name: str  # as FINN's GiveUniqueNodeNames names it in the stage's graph
    finn_name: str  # after specialization (what the folding config keys)
    op_type: str
    impl: str | None
    block: int | None  # None: the head
    layer: str | None  # the plan's layer: the block's, or "<part>.<layer>" of a part
    part: str | None = None  # "mlp" / "attn": of a half block; "head"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageGraph:
    model: onnx.ModelProto
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[StageNode, ...]
    finn_nodes: Mapping[str, str]  # FINN node -> "<block>.<layer>" of the plan it is
    stream_nodes: Mapping[str, str]  # HBM streams of the plan ("<copy>.<layer>") -> node
    slr_nodes: Mapping[str, str]  # the plan's SLR table ("block<copy>.<layer>") -> node
    dtypes: Mapping[str, str]
    widths: Mapping[str, int]


def stage_folding(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A stage's folding per layer (``impl`` included): the block's layers by name, the
    partial blocks' and the head's as ``mlp.<layer>``, ``attn.<layer>``, ``head.<layer>``."""
    out = {f["layer"]: {k: v for k, v in f.items() if k != "layer"}
           for f in record.get("folding", [])}
    for part, fs in sorted((record.get("extra_folding") or {}).items()):
        out.update({f"{part}.{f['layer']}": {k: v for k, v in f.items() if k != "layer"}
                    for f in fs})
    return out


def _is_hw(n: onnx.NodeProto) -> bool:
    return n.domain.startswith(HW_DOMAIN)


def _descendants(nodes: Sequence[onnx.NodeProto], start: int) -> set[int]:
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            consumers.setdefault(t, []).append(i)
    seen, todo = set(), [start]
    while todo:
        i = todo.pop()
        for t in nodes[i].output:
            for j in consumers.get(t, ()):
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
    return seen


def _ordinal_layers(folding: Sequence[str]) -> dict[str, list[str]]:
    """Op type -> the block's layers of that type in order (names are ``Op_i``)."""
    by_op: dict[str, list[tuple[int, str]]] = {}
    for name in folding:
        op, _, i = name.rpartition("_")
        by_op.setdefault(op, []).append((int(i) if i.isdigit() else 0, name))
    return {op: [n for _, n in sorted(v)] for op, v in by_op.items()}


def bind(hw: onnx.ModelProto, *, blocks: int, folding: Sequence[str], last_op: str,
         shapes: Mapping[str, Mapping[str, Any]], source: Path,
         producers: Mapping[tuple[str, str], str] | None = None,
         head_layers: Sequence[str] = (),
         head_shapes: Mapping[str, Mapping[str, Any]] | None = None) -> Binding:
    """Cut ``hw`` (finn-plus's HW graph of the export) into the plan's ``blocks`` and match
    its HW nodes to the block's layers (``folding``: their names; ``shapes``: their FINN
    shape attributes where dse rebuilt the block; ``last_op``: the block's last op type;
    ``producers``: (layer, op type) -> the block's layer of that type feeding it, which
    matches a node finn-plus makes more of, e.g. one input quantizer per projection where
    dse's block shares one, by the layer it feeds; ``head_layers``/``head_shapes``: the
    head's, matched as ``head.<layer>``)."""
    nodes = list(hw.graph.node)
    layers = _ordinal_layers(folding)
    m = len(layers.get("MVAU", []))
    mvaus = [i for i, n in enumerate(nodes) if _is_hw(n) and n.op_type == "MVAU"]
    if not m or len(mvaus) < blocks * m:
        raise PlanError(f"the export has {len(mvaus)} MVAU after finn-plus's lowering; the "
                        f"plan's {blocks} block(s) of {m} MVAU need {blocks * m}: was it "
                        "exported from another config?")
    ends, start = [], 0
    for b in range(blocks):
        last = mvaus[(b + 1) * m - 1]
        after = _descendants(nodes, last)
        end = next((j for j in range(last + 1, len(nodes))
                    if j in after and nodes[j].op_type == last_op), None)
        if end is None:
            raise PlanError(f"block {b} of the export: no {last_op} after its last MVAU "
                            f"({nodes[last].name}); was it exported from another config?")
        ends.append((start, end + 1))
        start = end + 1
    cut = tuple(tuple(n.name for n in nodes[a:e]) for a, e in ends)
    by_name = {n.name: n for n in nodes}
    layer_of: dict[str, str] = {}
    differ: dict[str, tuple[int, int]] = {}
    for b, names in enumerate(cut):
        hw_by_op: dict[str, list[onnx.NodeProto]] = {}
        for nm in names:
            if _is_hw(by_name[nm]):
                hw_by_op.setdefault(by_name[nm].op_type, []).append(by_name[nm])
        for op in sorted(set(hw_by_op) | set(layers)):
            got, want = hw_by_op.get(op, []), layers.get(op, [])
            if len(got) != len(want):
                differ[op] = (len(got), len(want))
                continue
            for node, layer in zip(got, want, strict=True):
                _check_shape(node, layer, shapes.get(layer), b)
                if same_layer(node, shapes.get(layer)):
                    layer_of[node.name] = layer
                else:
                    differ.setdefault(op, (len(got), len(want)))
        by_feed = _by_consumer([by_name[nm] for nm in names], layer_of, producers or {},
                               set(differ), shapes)
        layer_of.update(by_feed)
    fed = Counter(by_name[n].op_type for n in layer_of)
    notes = _notes(nodes, differ, fed, blocks)
    head = tuple(n.name for n in nodes[start:])
    if head_layers:
        notes += _bind_head([by_name[nm] for nm in head], head_layers, head_shapes or {},
                            layer_of)
    return Binding(model=hw, blocks=cut, head=head,
                   layer_of=layer_of, notes=tuple(notes),
                   source={"path": source.name,
                           "sha256": hashlib.sha256(source.read_bytes()).hexdigest()})


def _check_shape(node: onnx.NodeProto, layer: str, want: Mapping[str, Any] | None,
                 block: int) -> None:
    if want is None:
        return
    got = hw_attrs(node)
    for k in SHAPE_KEYS.get(node.op_type, ()):
        if k in want and k in got and int(got[k]) != int(want[k]):
            raise PlanError(f"block {block} of the export: {node.name} has {k}={got[k]} where "
                            f"the plan's {layer} has {k}={want[k]}; the export is of another "
                            "config than the plan (dse optimize --model its config.json)")


def _bind_head(nodes: Sequence[onnx.NodeProto], layers: Sequence[str],
               shapes: Mapping[str, Mapping[str, Any]], layer_of: dict[str, str]) -> list[str]:
    """The head's HW nodes matched to the head's layers (op type by op type, in order, where
    finn-plus makes as many as dse and they agree); one line for the rest."""
    want = _ordinal_layers(layers)
    got: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        if _is_hw(n):
            got.setdefault(n.op_type, []).append(n)
    left = []
    for op in sorted(set(want) | set(got)):
        g, w = got.get(op, []), want.get(op, [])
        pairs = list(zip(g, w, strict=True)) if len(g) == len(w) else []
        if pairs and all(same_layer(n, shapes.get(lyr)) for n, lyr in pairs):
            layer_of.update({n.name: f"head.{lyr}" for n, lyr in pairs})
        elif g or w:
            left.append(f"{op} ({len(g)} in finn-plus's, {len(w)} in the plan's)")
    return [f"head: {', '.join(left)} differ; those keep FINN's default folding"] if left \
        else []


def _by_consumer(block: Sequence[onnx.NodeProto], layer_of: Mapping[str, str],
                 producers: Mapping[tuple[str, str], str], ops: set[str],
                 shapes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Unmatched HW nodes of ``ops`` matched by what they feed: a node whose consumer is the
    plan's layer L is the plan's layer of its op type that feeds L (same shape)."""
    consumers: dict[str, list[str]] = {}
    for n in block:
        for t in n.input:
            consumers.setdefault(t, []).append(n.name)
    out: dict[str, str] = {}
    for n in reversed(block):
        if not _is_hw(n) or n.op_type not in ops or n.name in layer_of:
            continue
        fed = {layer_of.get(c) or out.get(c) for t in n.output for c in consumers.get(t, ())}
        hits = {producers.get((f, n.op_type)) for f in fed if f} - {None}
        if len(hits) == 1:
            layer = hits.pop()
            if layer is not None and layer in shapes and same_layer(n, shapes[layer]):
                out[n.name] = layer
    return out


def _notes(nodes: Sequence[onnx.NodeProto], differ: Mapping[str, tuple[int, int]],
           fed: Mapping[str, int], blocks: int) -> list[str]:
    out = []
    for op, (got, want) in sorted(differ.items()):
        unmatched = got * blocks - fed.get(op, 0)
        if not got:
            out.append(f"{op}: finn-plus makes none where the plan's block has {want} per "
                       "block (it computes that with other ops, or leaves it un-lowered)")
        elif not unmatched:
            out.append(f"{op}: finn-plus makes {got} per block where the plan's block has "
                       f"{want}; each takes the folding of the plan's {op} feeding the same "
                       "layer")
        else:
            out.append(f"{op}: finn-plus makes {got} per block where the plan's block has "
                       f"{want}; {unmatched} of its {got * blocks} differ from the plan's "
                       "and keep FINN's default folding")
    left = Counter(n.op_type for n in nodes if not _is_hw(n))
    for op, k in sorted(left.items()):
        out.append(f"finn-plus cannot lower {op} ({k} node(s)): it stays a float ONNX node "
                   "between the HW layers")
    return out


def _default_impl(op: str) -> str | None:
    try:
        impls = split_op_type(op)[0].impls
    except Exception:
        return None
    return "hls" if "hls" in impls else (impls[0] if impls else None)


def _names(model: onnx.ModelProto, binding: Binding, folding: Mapping[str, Mapping[str, Any]],
           block_of: Mapping[str, int | None], part_of: Mapping[str, str]
           ) -> tuple[StageNode, ...]:
    """Rename the nodes as FINN's GiveUniqueNodeNames does (op type and a count per op type,
    in graph order) and predict the names specialization gives them."""
    gen: Counter[str] = Counter()
    spec: Counter[str] = Counter()
    out = []
    for n in model.graph.node:
        old = n.name
        n.name = f"{n.op_type}_{gen[n.op_type]}"
        gen[n.op_type] += 1
        layer = binding.layer_of.get(old) if old in block_of else None
        if layer is not None and part_of.get(old) in ("mlp", "attn"):
            layer = f"{part_of[old]}.{layer}"  # a half block takes its part's own folding
        impl = None
        if _is_hw(n):
            impl = (folding[layer]["impl"] if layer is not None and layer in folding
                    else _default_impl(n.op_type))
        finn = n.name
        if impl:
            s = f"{n.op_type}_{impl}"
            finn = f"{s}_{spec[s]}"
            spec[s] += 1
        out.append(StageNode(generic_name=n.name, finn_name=finn, op_type=n.op_type,
                             impl=impl, block=block_of.get(old), layer=layer,
                             part=part_of.get(old)))
    return tuple(out)


def _stamp_loop(model: onnx.ModelProto, nodes: Sequence[StageNode], first: int) -> None:
    """PyTorch's scope metadata finn-plus's loop extraction reads: block j of the stage is
    ``layers.j`` (the body is ``layers.0``)."""
    for n, s in zip(model.graph.node, nodes, strict=True):
        scope = s.part or f"layers.{(s.block or 0) - first}"
        for key, val in (("pkg.torch.onnx.name_scopes", f"['', '{scope}']"),
                         ("pkg.torch.onnx.class_hierarchy", "['Model', 'Block']")):
            n.metadata_props.append(onnx.StringStringEntryProto(key=key, value=val))


def stage_graph(binding: Binding, blocks: BlockRange, record: Mapping[str, Any], *,
                rolled: bool) -> StageGraph:
    """The stage's part of the bound HW graph, its nodes named as FINN will name them."""
    folding = stage_folding(record)
    block_of: dict[str, int | None] = {}
    part_of: dict[str, str] = {}
    for b, half in ((blocks.mlp_half, 1), (blocks.attn_half, 0)):
        if b is not None:
            in_half = split_block(binding, b)[half]
            block_of.update(dict.fromkeys(in_half, b))
            part_of.update(dict.fromkeys(in_half, ("attn", "mlp")[half]))
    for b in blocks.full:
        block_of.update(dict.fromkeys(binding.blocks[b], b))
    if blocks.head:
        block_of.update(dict.fromkeys(binding.head, None))
        part_of.update(dict.fromkeys(binding.head, "head"))
    names = [n.name for n in binding.model.graph.node if n.name in block_of]
    part, ins, outs = sub_model(binding.model, names, f"dse_blocks_{record.get('blocks')}")
    nodes = _names(part, binding, folding, block_of, part_of)
    if rolled and blocks.full:
        _stamp_loop(part, nodes, blocks.full[0])
    first = blocks.full[0] if blocks.full else 0
    finn_nodes = {s.finn_name: s.layer if s.block is None else f"{s.block}.{s.layer}"
                  for s in nodes if s.layer}
    local = {f"{s.block - first}.{s.layer}": s.finn_name for s in nodes
             if s.layer and s.block is not None and s.part is None}
    parts = {s.layer: s.finn_name for s in nodes if s.layer and s.part}
    return StageGraph(
        model=part, inputs=tuple(ins), outputs=tuple(outs), nodes=nodes,
        finn_nodes=finn_nodes, stream_nodes=local,
        slr_nodes={**{f"block{k}": v for k, v in local.items()}, **parts},
        dtypes=_dtypes(part), widths=_widths(part, nodes, folding, outs))


def split_block(binding: Binding, b: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Block ``b``'s nodes as (attention half, MLP half), cut after the first residual add,
    as dse cuts its block (``dse.llm.pipeline.split_halves``): the first ElementwiseAdd fed
    by the block's input through casts and stream duplications."""
    names = binding.blocks[b]
    by_name = {n.name: n for n in binding.model.graph.node}
    inside = {o for nm in names for o in by_name[nm].output}
    inside |= {i.name for i in binding.model.graph.initializer}
    carried = {t for nm in names for t in by_name[nm].input if t not in inside}
    for i, nm in enumerate(names):
        n = by_name[nm]
        if n.op_type in ("Cast", "DuplicateStreams") and any(t in carried for t in n.input):
            carried.update(n.output)
        elif n.op_type == "ElementwiseAdd" and any(t in carried for t in n.input):
            return names[:i + 1], names[i + 1:]
    raise PlanError(f"block {b} of the export: no residual add to split it at, as the plan "
                    "splits it between boards; emit without --model")


def _dtypes(m: onnx.ModelProto) -> dict[str, str]:
    out = {}
    for a in m.graph.quantization_annotation:
        for kv in a.quant_parameter_tensor_names:
            if kv.key == "finn_datatype":
                out[a.tensor_name] = kv.value
    return out


def _widths(m: onnx.ModelProto, nodes: Sequence[StageNode],
            folding: Mapping[str, Mapping[str, Any]], outs: Sequence[str]) -> dict[str, int]:
    """Stream width of each output tensor leaving the stage, from its producer's folding."""
    out = {}
    for n, s in zip(m.graph.node, nodes, strict=True):
        for t in n.output:
            if t in outs and s.layer is not None and s.layer in folding and s.impl:
                attrs = {**hw_attrs(n), **{k: v for k, v in folding[s.layer].items()
                                           if k not in ("layer", "impl")}}
                try:
                    out[t] = int(estimate(f"{n.op_type}_{s.impl}", attrs).outstream_width)
                except Exception:
                    continue
    return out


__all__ = ["Binding", "BlockRange", "StageGraph", "StageNode", "bind", "block_range",
           "stage_graph"]
