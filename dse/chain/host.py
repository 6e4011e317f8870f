"""The layers FINN leaves on the host, as a stage of the chain on a GPU or CPU.

FINN maps a network from its first quantizer on; what comes before (a float first conv fed by
the float image) or after it (what it cannot lower) runs on the host. When the user offers a
GPU or CPU in ``--boards``, those nodes become a stage of their own, costed with the roofline
of ``dse.devices`` (one kernel per node, FP32 as exported): time per frame =
``max(ops / (peak x eff), bytes / (memory bandwidth x eff)) + kernels x launch cost``. The
link to the FPGA chain is host staging (``dse.chain.links.staging_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from dse.chain.links import host_hop_s
from dse.devices import Device, load_devices, step_cost
from dse.ir import LayerGraph
from dse.ir.onnx_io import read_model
from dse.ir.prepare import ModelIndex, prepare

_MAC_OPS = ("Conv", "MatMul", "Gemm")
_SKIP = ("Quant", "BipolarQuant", "Trunc")  # quantizers run fused into the kernels


@dataclass(frozen=True, slots=True, kw_only=True)
class HostWork:
    """The host nodes of one side of the FPGA pipeline, per frame."""

    nodes: tuple[str, ...]
    position: Literal["head", "tail"]  # before the FPGA pipeline, or after it
    macs: float
    weights: float  # weight elements
    elementwise: float  # other ops, one per output element
    act_bytes: float  # activations read and written (FP32)
    boundary_bytes: int  # what crosses to / from the FPGA chain per frame
    quantizers: tuple[str, ...] = ()  # nodes fused into their neighbours' kernels


@dataclass(frozen=True, slots=True, kw_only=True)
class HostStage:
    device: Device
    work: HostWork
    frame_s: float
    latency_s: float
    link_s: float
    binding: str

    def payload(self) -> dict[str, Any]:
        """The CNN plan's record of it (``host_stages``), read by ``dse.chain.plan``."""
        w = self.work
        return {"device": self.device.name, "kind": self.device.kind, "layers": list(w.nodes),
                "position": w.position, "frame_s": self.frame_s, "latency_s": self.latency_s,
                "binding": self.binding, "in_bytes": w.boundary_bytes, "link_s": self.link_s,
                "macs": w.macs, "weights": w.weights}


def _elems(shape: Any) -> int:
    return math.prod(shape) if shape else 0


def host_work(graph: LayerGraph) -> list[HostWork]:
    """The host nodes of ``graph`` (from its source model), grouped before / after FINN's:
    a host node reading what an FPGA layer produced runs after the pipeline, the others
    before it; quantizers of constants (weights) go with no side, their weights counted at
    the node that reads them."""
    names = {h.name for h in graph.host_nodes}
    if not names or not graph.source_path:
        return []
    model = prepare(read_model(graph.source_path), graph.source_path)
    idx = ModelIndex(model)
    g = model.graph
    dynamic = {i.name for i in g.input}  # tensors that depend on the frame
    fpga_made: set[str] = set()
    groups: dict[str, list[Any]] = {"head": [], "tail": []}
    for n in g.node:  # topologically sorted by prepare()
        if not any(i in dynamic for i in n.input):
            continue  # a constant subgraph (weights and their quantizers)
        dynamic.update(o for o in n.output if o)
        if n.name not in names:
            fpga_made.update(o for o in n.output if o)
        else:
            groups["tail" if any(i in fpga_made for i in n.input) else "head"].append(n)
    return [_work(idx, nodes, pos, dynamic, graph)  # type: ignore[arg-type]
            for pos, nodes in groups.items() if nodes]


def _work(idx: Any, nodes: list[Any], position: Literal["head", "tail"],
          dynamic: set[str], graph: LayerGraph) -> HostWork:
    macs = weights = elementwise = act = 0.0
    for n in nodes:
        if n.op_type in _SKIP:
            continue
        out_elems = sum(_elems(idx.shape(o)) for o in n.output if o)
        w = [i for i in n.input if i and i not in dynamic and idx.shape(i)]
        if n.op_type in _MAC_OPS and w:
            shape = idx.shape(w[0])
            c_out = shape[0] if n.op_type == "Conv" else shape[-1]
            macs += out_elems * _elems(shape) / max(1, c_out)
        else:
            elementwise += out_elems
        weights += sum(_elems(idx.shape(i)) for i in w)
        act += 4 * (out_elems + sum(_elems(idx.shape(i)) for i in n.input if i in dynamic))
    # what crosses to the FPGA chain: its input stream (head) or its output stream (tail)
    edge = [e for e in graph.edges if (e.src if position == "head" else e.dst) is None]
    bits = sum(e.bits_per_frame for e in edge)
    return HostWork(nodes=tuple(n.name for n in nodes), position=position, macs=macs,
                    weights=weights, elementwise=elementwise, act_bytes=act,
                    boundary_bytes=math.ceil(bits / 8),
                    quantizers=tuple(n.name for n in nodes if n.op_type in _SKIP))


def host_stage(work: HostWork, dev: Device, fpga: Any) -> HostStage:
    """The roofline of ``work`` on ``dev`` (one frame; one kernel per node), joined to the
    FPGA board ``fpga`` at its end of the chain through host memory."""
    kernels = sum(1 for n in work.nodes if n not in work.quantizers) or 1
    eff = replace(dev.efficiency, kernels_per_block=1)
    tokens = 1
    params = work.macs  # 2 ops per MAC; weights read once per frame
    cost = step_cost(dev, params=params, weight_bits=0.0, tokens=tokens,
                     attn_ops=work.elementwise, kv_bytes=work.weights * 4,
                     act_bytes=work.act_bytes, blocks=kernels, precision="fp32", eff=eff)
    link = host_hop_s(fpga, dev, work.boundary_bytes)
    return HostStage(device=dev, work=work, frame_s=cost.time_s, latency_s=cost.time_s,
                     link_s=link, binding=f"{dev.kind.upper()} {cost.binding}")


def split_devices(names: list[str], board_files: Any = ()) -> tuple[list[str], list[Device]]:
    """(FPGA board names, GPUs/CPUs) of a ``--boards`` list, in order; a name the device
    catalog knows (``dse.devices``, and the user's ``[[devices]]``) is a GPU/CPU."""
    devs = load_devices(list(board_files or ()))
    fpga: list[str] = []
    hosts: list[Device] = []
    for n in names:
        d = devs.get(n.partition("@")[0])
        if d is None:
            fpga.append(n)
        else:
            hosts.append(d)
    return fpga, hosts


def with_host_stages(data: dict[str, Any], graph: LayerGraph, hosts: list[Device],
                     boards: list[Any]) -> tuple[dict[str, Any], list[HostStage]]:
    """The CNN plan ``data`` with its host stages on the first GPU/CPU offered (``boards``:
    the FPGA chain's configurations, in order): ``host_stages`` and ``host_devices_offered``.
    With no host layers the devices are reported as offered and not needed."""
    if not hosts:
        return data, []
    dev = hosts[0]
    used = data["metrics"]["boards_used"]
    stages = [host_stage(w, dev, boards[0] if w.position == "head" else boards[used - 1])
              for w in host_work(graph)]
    out = dict(data)
    out["host_stages"] = [s.payload() for s in stages]
    out["host_devices_offered"] = [d.name for d in hosts]
    return out, stages
