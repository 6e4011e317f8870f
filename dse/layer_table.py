"""The layer table of a network (``dse inspect``): per HW layer, its FINN op, parameters,
types and the costs at its smallest and fastest folding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.examples import resolve_model
from dse.exceptions import DseError
from dse.ir import LayerGraph, load_network
from dse.ir.graph import Layer
from dse.llm.config import is_config_ref, load_arch, quant_spec
from dse.llm.network import build_network
from dse.models.candidates import FoldingOption, enumerate_options
from dse.specs import Resources

#: Attributes that are memory/implementation style, not parallelism.
STYLE_ATTRS = ("ram_style", "mem_mode", "resType", "ram_style_thresholds", "impl_style")
DEFAULT_PART = "xcu55c-fsvh2892-2L-e"


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerSummary:
    name: str
    op_type: str  # specialized (what FINN would build)
    params: str
    dtypes: str
    weight_bits: int
    in_bits_per_frame: int
    out_bits_per_frame: int
    smallest: FoldingOption
    fastest: FoldingOption
    n_options: int
    finn_name: str = ""  # the node name in a one-FPGA FINN build (after specialization)
    absorbed: tuple[str, ...] = ()  # ONNX nodes folded into the layer

    def as_dict(self) -> dict[str, Any]:
        def opt(o: FoldingOption) -> dict[str, Any]:
            c = o.cost
            return {"folding": dict(o.attrs), "cycles": c.cycles, "lut": c.lut,
                    "bram18": c.bram18, "uram": c.uram, "dsp": c.dsp}

        return {
            "name": self.name, "op_type": self.op_type, "params": self.params,
            "dtypes": self.dtypes, "weight_bits": self.weight_bits,
            "in_bits_per_frame": self.in_bits_per_frame,
            "out_bits_per_frame": self.out_bits_per_frame,
            "smallest": opt(self.smallest), "fastest": opt(self.fastest),
            "n_options": self.n_options, "finn_name": self.finn_name,
            "source_nodes_absorbed": list(self.absorbed),
            "cost_source": self.cost_source,
        }

    @property
    def cost_source(self) -> str:
        """"FINN estimate", "FINN cycles + dse resource model" or "dse model"."""
        return self.smallest.cost.source


def _params(op: str, a: Mapping[str, Any]) -> str:
    f = {
        "MVAU": lambda: f"MW={a['MW']} MH={a['MH']} N={list(a['numInputVectors'])}",
        "VVAU": lambda: f"C={a['Channels']} k={'x'.join(map(str, a['Kernel']))} "
                        f"out={'x'.join(map(str, a['Dim']))}",
        "ConvolutionInputGenerator": lambda: (
            f"C={a['IFMChannels']} k={'x'.join(map(str, a['ConvKernelDim']))} "
            f"s={a['Stride'][0]} {'x'.join(map(str, a['IFMDim']))}->"
            f"{'x'.join(map(str, a['OFMDim']))}{' dw' if a.get('depthwise') else ''}"),
        "Thresholding": lambda: f"C={a['NumChannels']} steps={a['numSteps']} "
                                f"N={list(a['numInputVectors'])}",
        "Pool": lambda: f"C={a['Channels']} k={'x'.join(map(str, a['KernelSize']))} "
                        f"{a['Function']}",
        "FMPadding": lambda: f"C={a['NumChannels']} {'x'.join(map(str, a['ImgDim']))} "
                             f"pad={list(a['Padding'])}",
        "DuplicateStreams": lambda: f"C={a['NumChannels']} x{a['NumOutputStreams']}",
        "Reshape": lambda: f"{list(a['inp_shape'])}->{list(a['out_shape'])}",
        "HWSoftmax": lambda: f"C={a['NumChannels']}",
        "GlobalAccPool": lambda: f"C={a['NumChannels']}",
        "LabelSelect": lambda: f"labels={a['Labels']} K={a['K']}",
    }.get(op)
    if f is None and op.startswith("Elementwise"):
        return f"{list(a['lhs_shape'])} {op[len('Elementwise'):].lower()} {list(a['rhs_shape'])}"
    try:
        return f() if f else ""
    except KeyError:
        return ""


def _dtypes(op: str, a: Mapping[str, Any]) -> str:
    keys = {
        "MVAU": ("inputDataType", "weightDataType", "outputDataType"),
        "VVAU": ("inputDataType", "weightDataType", "outputDataType"),
        "Thresholding": ("inputDataType", "outputDataType"),
        "Pool": ("InputDataType", "OutputDataType"),
    }.get(op)
    if keys is None:
        for k in ("inputDataType", "lhs_dtype", "dtype", "input_data_type"):
            if k in a:
                return str(a[k])
        return ""
    return "/".join(str(a.get(k, "")) for k in keys)


def layer_options(layer: Layer, part: str | None, *, keep_styles: bool = True,
                  allow_external: bool = True) -> list[FoldingOption]:
    opts = enumerate_options(layer.specialized_op_type, layer.finn_attrs(), part=part,
                             weight_bits=layer.weight_bits, allow_external=allow_external,
                             fixed=STYLE_ATTRS if keep_styles else ())
    if not opts:
        raise DseError(f"layer {layer.name} ({layer.op_type}): no legal folding under FINN's "
                       "rules for its attributes")
    return opts


def summarize_layers(graph: LayerGraph, part: str | None = DEFAULT_PART) -> list[LayerSummary]:
    out = []
    finn_names = graph.finn_names(part)
    for layer in graph.layers:
        opts = layer_options(layer, part)
        smallest = min(opts, key=lambda o: (-o.cost.cycles, o.cost.lut, o.cost.bram18))
        fastest = min(opts, key=lambda o: (o.cost.cycles, o.cost.lut, o.cost.bram18))
        ins, outs = graph.in_edges(layer.name), graph.out_edges(layer.name)
        out.append(LayerSummary(
            name=layer.name,
            op_type=f"{layer.op_type}_{smallest.impl}",
            params=_params(layer.op_type, layer.attrs),
            dtypes=_dtypes(layer.op_type, layer.attrs),
            weight_bits=layer.weight_bits,
            in_bits_per_frame=sum(e.bits_per_frame for e in ins),
            out_bits_per_frame=sum(e.bits_per_frame for e in outs),
            smallest=smallest,
            fastest=fastest,
            n_options=len(opts),
            finn_name=finn_names[layer.name],
            absorbed=layer.absorbed,
        ))
    return out


def totals(rows: list[LayerSummary], which: str) -> Resources:
    return Resources.total(
        Resources(lut=getattr(r, which).cost.lut, bram18=getattr(r, which).cost.bram18,
                  uram=getattr(r, which).cost.uram, dsp=getattr(r, which).cost.dsp)
        for r in rows
    )


def inspect_model(model: str | Path | None = None, *, part: str | None = DEFAULT_PART,
                  input_dtype: str | None = None, minimize_bit_width: bool = True
                  ) -> dict[str, Any]:
    """The layer table of a network: per layer, costs at its smallest and fastest folding.
    For an architecture config (``llama2-7b``, ``config.json``): one block, in decode (or
    encoder) mode, with the LM head's layers after it."""
    if model is not None and is_config_ref(model):
        arch = load_arch(model)
        net = build_network(arch, quant_spec(), "decode" if arch.causal else "encoder")
        graph = net.stacks[0].block
        path = Path(f"{arch.name} ({net.mode}: one of {net.n_blocks} identical blocks)")
    else:
        path = resolve_model(model)
        graph = load_network(path, input_dtype=input_dtype,
                             minimize_bit_width=minimize_bit_width)
    rows = summarize_layers(graph, part)
    small, fast = totals(rows, "smallest"), totals(rows, "fastest")
    return {
        "model": str(path),
        "sha256": graph.source_sha256,
        "part": part,
        "graph": graph,
        "layers": rows,
        "totals": {
            "smallest": {**small.as_dict(),
                         "max_cycles": max(r.smallest.cost.cycles for r in rows)},
            "fastest": {**fast.as_dict(), "max_cycles": max(r.fastest.cost.cycles for r in rows)},
            "weight_bits": sum(r.weight_bits for r in rows),
        },
        "host_nodes": [{"name": h.name, "op_type": h.op_type, "reason": h.reason}
                       for h in graph.host_nodes],
        "edges": len(graph.edges),
    }
