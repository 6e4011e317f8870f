"""PartitionPlan: the versioned JSON artifact ``dse optimize`` writes (docs/plan-format.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.chain.plan import CNN_SCHEMA_VERSION as SCHEMA_VERSION
from dse.chain.plan import PipelinePlan, from_cnn, load_plan
from dse.exceptions import PlanError
from dse.schemas import check_cnn_plan
from dse.solver.hostio import DEFAULT_BATCH, driver_call


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    data: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def to_json(self) -> str:
        """This CNN record alone (the chain plan's payload)."""
        return json.dumps(self.data, indent=1, sort_keys=True) + "\n"

    def chain(self) -> PipelinePlan:
        """The plan as a chain of stages (``dse.chain.plan``), this record its payload."""
        return from_cnn(self.data)

    def save(self, path: str | Path) -> Path:
        """Write the plan file: the chain format."""
        return self.chain().save(path)

    @classmethod
    def load(cls, path: str | Path) -> PartitionPlan:
        """A CNN plan from any plan file (the chain format or schema_version 1); an LLM
        plan is refused in one line."""
        plan = load_plan(path)
        if plan.network != "cnn":
            raise PlanError(f"{path}: an LLM plan ({plan.model.get('name')}); this command "
                            "needs a CNN plan (dse emit takes either kind)")
        return cls(plan.payload)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "plan") -> PartitionPlan:
        return cls(check_cnn_plan(data, where))


def finn_node_names(plan_layers: list[dict]) -> dict[str, tuple]:
    """layer -> (generic name in the partition, FINN name after specialization), as FINN's
    GiveUniqueNodeNames numbers them per op type within each partition."""
    out = {}
    gen_count: dict[str, int] = {}
    spec_count: dict[str, int] = {}
    for layer in plan_layers:
        g, s = layer["op_type"], f"{layer['op_type']}_{layer['impl']}"
        gi, si = gen_count.get(g, 0), spec_count.get(s, 0)
        gen_count[g], spec_count[s] = gi + 1, si + 1
        out[layer["name"]] = (f"{g}_{gi}", f"{s}_{si}")
    return out


def host_io_metrics(prob: Any, ev: Any) -> dict[str, Any]:
    """The plan's host I/O stage: the input IODMA on board 0, the output IODMA on the last
    board used, each at its board's clock, and whether it binds the II."""
    last = max(ev.boards_used - 1, 0)
    return {"input": prob.host[0][0].as_dict(), "output": prob.host[last][1].as_dict(),
            "ii_cycles": ev.host_ii,
            "fps": round(prob.clock_mhz * 1e6 / ev.host_ii, 3) if ev.host_ii else None,
            "binding": ev.bottleneck.startswith("host I/O")}


def batch_metrics(prob: Any, fps: float, frames: int) -> dict[str, Any]:
    """``metrics.batch``: one call of FINN's PYNQ driver on ``frames`` frames, driven from the
    first board's host (dse.solver.hostio.DriverCall); ``metrics.fps`` stays the pipeline's
    steady state."""
    cfg = prob.boards[0]
    call = driver_call(prob.graph, cfg, frames=frames, steady_fps=fps)
    return call.as_dict(cfg.board.host_mmio_source)


def make_plan(result: Any, *, model_path: str, model_sha256: str, clock_mhz: float,
              dse_version: str, seed: int, record_time: bool = True,
              input_dtype: str | None = None,
              minimize_bit_width: bool = False,
              board_orders: list[dict] | None = None,
              phases: list[tuple[str, float, str]] | None = None,
              batch: int = DEFAULT_BATCH) -> PartitionPlan:
    """Build the plan document from a SolveResult (its problem and evaluation).

    With ``record_time=False`` the plan holds no wall-clock figure (``solver.wall_s`` is null),
    so the same inputs and seed give a byte-identical file. ``batch``: the frames of the one
    driver call ``metrics.batch`` reports (where host I/O is modelled).
    """
    prob = result.problem
    ev = result.evaluation
    layers = []
    for i, name in enumerate(prob.order):
        layer = prob.graph.layer(name)
        opt = prob.options[i][result.choice[i]]
        c = prob.cost_on(i, result.choice[i], int(result.boards[i]))  # on that board's part
        folding = {k: v for k, v in sorted(opt.attrs.items())}
        layers.append({
            "name": name,
            "op_type": layer.op_type,
            "impl": opt.impl,
            "finn_op_type": f"{layer.op_type}_{opt.impl}",
            "board": int(result.boards[i]),
            "folding": folding,
            "cycles": c.cycles,
            "resources": {"lut": c.lut, "ff": c.ff, "bram18": c.bram18, "uram": c.uram,
                          "dsp": c.dsp},
            "external_weight_bits": opt.external_weight_bits,
            # read per frame (FINN streams external weights once per input vector)
            "external_bits_per_frame": opt.external_weight_bits * prob.nvec[i],
            "cost_source": c.source,  # FINN's estimate, or where FINN has none dse's model
        })
    for b in {lyr["board"] for lyr in layers}:  # FINN names its nodes per board's build
        names = finn_node_names([lyr for lyr in layers if lyr["board"] == b])
        for lyr in layers:
            if lyr["board"] == b:
                lyr["finn_name"] = names[lyr["name"]][1]
    boards = []
    used = ev.boards_used
    fps = ev.fps
    reps = list(ev.replicas or (1,) * used)[:used]
    first_rank = [sum(reps[:b]) for b in range(used)]
    for b, cfg in enumerate(prob.boards[:used]):
        boards.append({
            "index": b,
            "name": cfg.board.name,
            "part": cfg.board.part,
            "shell": cfg.shell.name,
            "clock_mhz": cfg.clock_mhz,
            "caps": dict(sorted(cfg.caps.items())),
            "capacity": ev.capacity[b].as_dict(),
            "resources": ev.usage[b].as_dict(),
            "accl_buffer_bram18": ev.extra_bram18[b],
            "external_memory": {
                "bits": ev.usage[b].ext_bits,
                "capacity_bits": ev.capacity[b].ext_bits,
                "bits_per_frame": ev.usage[b].ext_bpf,
                "gbps": round(ev.usage[b].ext_bpf * fps / 8e9, 6),
                "capacity_gbps": cfg.board.external_memory_gbps,
                "channels": ev.usage[b].ext_channels,
                "capacity_channels": ev.capacity[b].ext_channels},
            "ii_cycles": max([lyr["cycles"] for lyr in layers if lyr["board"] == b] or [0]),
            # segment replicas: this board's design runs on ``replicas`` boards, copy j
            # taking frames j, j + r, ... (ACCL ranks ``ranks``)
            "replicas": reps[b],
            "ranks": list(range(first_rank[b], first_rank[b] + reps[b])),
        })
    cuts = []
    for ei in ev.cut_edges:
        e = prob.edges[ei]
        cuts.append({
            "tensor": e.tensor,
            "src": prob.order[e.u], "dst": prob.order[e.v],
            "src_board": int(result.boards[e.u]), "dst_board": int(result.boards[e.v]),
            "bits_per_frame": e.bits, "accl_bits_per_frame": e.link_bits,
            "accl_words_per_frame": e.link_bits // 512, "skip": e.skip,
        })
    link_cap = float(prob.link_rate()) * ev.ii_cycles

    def share(li: int) -> int:  # the copies a link's frames are spread over
        if prob.link.topology == "switch":
            return reps[li % len(prob.boards)] if li % len(prob.boards) < used else 1
        return min(reps[li], reps[li + 1]) if li + 1 < used else 1

    loads = ev.link_load or ev.link_bits
    links = [{"index": li, "bits_per_frame": bits,
              "utilization": round(loads[li] / (link_cap * share(li)), 6) if link_cap else 0.0}
             for li, bits in enumerate(ev.link_bits)
             if prob.link.topology == "switch" or li < max(used - 1, 0)]
    fps = ev.fps
    # with the board order chosen, the bound is over every order tried
    bound, status, gap = result.fps_bound, result.status, result.gap
    if board_orders:
        bound = max([bound] + [t["bound_fps"] for t in board_orders if t.get("bound_fps")])
        gap = max(0.0, 1 - fps / bound) if bound else 0.0
        if any(t.get("status") not in (None, "OPTIMAL") for t in board_orders
               if t.get("fps") is not None) and gap > 1e-9:
            status = "FEASIBLE"
    data = {
        "schema_version": SCHEMA_VERSION,
        "dse_version": dse_version,
        "model": {"path": model_path, "sha256": model_sha256, "input_dtype": input_dtype,
                  "minimize_bit_width": minimize_bit_width},
        "clock_mhz": clock_mhz,
        "topology": prob.link.topology,
        "link": {"model": "accl-rdma-curve" if prob.fpga_link.accl_rdma else "stream",
                 "bandwidth_gbps": prob.link.bandwidth_gbps,
                 "efficiency": prob.link.efficiency, "latency_s": prob.link.latency_s},
        "accl": {"enabled": prob.accl.enabled, "rx_buffer_bytes": prob.accl.rx_buffer_bytes,
                 "rx_capacity_bytes": prob.rx_capacity_bytes(),
                 "max_transfer_bytes": prob.accl.max_transfer_bytes},
        "boards": boards,
        "boards_offered": len(prob.boards),
        "layers": layers,
        "cuts": cuts,
        "links": links,
        "metrics": {
            "ii_cycles": ev.ii_cycles,
            "fps": round(fps, 3),
            "latency_s": float(f"{ev.latency_s:.9g}"),
            "bottleneck": ev.bottleneck,
            "boards_used": used,
            "boards_used_total": sum(reps),  # every copy counted (segment replicas)
            **({"host_io": host_io_metrics(prob, ev),
                "batch": batch_metrics(prob, fps, batch)} if prob.host else {}),
        },
        "solver": {
            "strategy": result.strategy,
            "status": status,
            "objective": round(fps, 3),
            "bound": round(bound, 3),
            "gap": round(gap, 6),
            "ii_bound_cycles": result.ii_bound,
            "wall_s": round(result.wall_s, 3) if record_time else None,
            "seed": seed,
            **({"board_orders": board_orders} if board_orders else {}),
            "phases": [{"phase": name, "wall_s": round(sec, 3) if record_time else None,
                        "outcome": outcome}
                       for name, sec, outcome in (phases or list(result.phases))],
        },
    }
    return PartitionPlan(data)
