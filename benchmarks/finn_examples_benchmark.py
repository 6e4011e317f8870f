"""dse against finn-examples' published, measured designs.

For every finn-examples design whose network is here (the shared QONNX exports with the TopK
FINN's examples add): its folding config (tests/data/finn_examples, copied from
github:Xilinx/finn-examples@810a1e7, SOURCES.md) costed by ``dse evaluate`` on its board at
the clock its notebook measured, beside the throughput the notebook's committed output
reports. ``throughput_test()`` times one call of FINN's PYNQ driver on a batch (the
notebook's ``batch_size``), so dse's figure at that batch (``metrics.batch``: the driver's
register accesses, then one II per frame; dse.solver.hostio.DriverCall) is what the
measurement compares with; the steady-state fps is kept beside it. Then ``dse optimize`` on
the same board and clock, with host I/O, FIFOs and width converters in (the plan as FINN
builds it must fit), and without them (the layers alone, as dse planned before), to show what
they cost dse's own plans.

    python benchmarks/finn_examples_benchmark.py [--time-limit 30] [--out results/]

Writes results/finn_examples_benchmark.csv. Not included: ResNet-50 w1a2 on U250 (its
network is not in brevitas' examples, and its measured 2,972 fps needs finn-experimental's
two-MACs-per-DSP packing, which FINN's estimates do not model).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dse import api  # noqa: E402
from dse.ir import load_network  # noqa: E402
from dse.solver.folding import evaluate_folding  # noqa: E402
from dse.solver.problem import build_problem  # noqa: E402
from dse.solver.search import solve_joint  # noqa: E402
from dse.specs import load_catalog  # noqa: E402
from tests.conftest import shared_path  # noqa: E402
from tests.networks import with_topk  # noqa: E402

DATA = ROOT / "tests" / "data" / "finn_examples"
NB = "github:Xilinx/finn-examples finn_examples/notebooks/"
#: (design, shared model, folding config, board, clock MHz, measured fps, the batch the
#: notebook's throughput_test() ran (its output's batch_size), source of the figure)
DESIGNS = [
    ("TFC-w1a1", "tfc_w1a1", "bnn-pynq_tfc-w1a1_folding_config.json", "Pynq-Z1", 100.0,
     837019.4, 1000,
     NB + "0_mnist_with_fc_networks.ipynb@44fdb99 throughput_test(), batch_size 1000"),
    ("CNV-w1a1", "cnv_w1a1", "bnn-pynq_cnv-w1a1_folding_config.json", "Pynq-Z1", 100.0,
     3020.5, 1000,
     NB + "1_cifar10_with_cnv_networks.ipynb@44fdb99 throughput_test(), batch_size 1000"),
    ("MobileNet-v1 w4a4", "mobilenetv1_w4a4", "mobilenet-v1_U250_folding_config.json", "U250",
     206.0, 1813.1, 1000, NB + "2_imagenet_with_mobilenet_v1.ipynb@ffb033d throughput_test(), "
     "fclk 206, batch_size 1000"),
    ("MobileNet-v1 w4a4", "mobilenetv1_w4a4", "mobilenet-v1_ZCU102_folding_config.json",
     "ZCU102", 187.5, 459.5, 100, NB + "2_imagenet_with_mobilenet_v1.ipynb@4377912 "
     "throughput_test(), fclk 187.5, batch_size 100"),
    ("MobileNet-v1 w4a4", "mobilenetv1_w4a4", "mobilenet-v1_ZCU104_folding_config.json",
     "ZCU104", 100.0, 245.2, 100, NB + "2_imagenet_with_mobilenet_v1.ipynb@8262712 "
     "throughput_test(), fclk 100, batch_size 100"),
]
#: config entries with no counterpart in the shared network, and why they are left out
DROPPED = {"ChannelwiseOp_hls_0": "the final scale: dse lowers it to ElementwiseMul (not in "
                                  "the config, FINN's defaults; 1,000 cycles, never binding)"}


def _config(name: str, tmp: Path) -> tuple[Path, list[str]]:
    cfg = json.loads((DATA / name).read_text())
    dropped = [k for k in DROPPED if cfg.pop(k, None) is not None]
    p = tmp / name
    p.write_text(json.dumps(cfg))
    return p, dropped


def _bare(model: Path, board: str, mhz: float, limit: float) -> float:
    """dse's own plan without host I/O, FIFOs and converters (the layers alone)."""
    g = load_network(model, input_dtype="UINT8")
    cfg = load_catalog().configure(board, clock_mhz=mhz)
    prob = build_problem(g, [cfg], host_io=False, fifos=False)
    return solve_joint(prob, time_limit=limit).evaluation.fps


def run(limit: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for design, net, cfg_name, board, mhz, measured, batch, source in DESIGNS:
            model = with_topk(shared_path("models", f"{net}.onnx"), tmp / f"{net}_topk.onnx")
            cfg, dropped = _config(cfg_name, tmp)
            t0 = time.monotonic()
            ev = evaluate_folding(model, cfg, board, clock_mhz=mhz, input_dtype="UINT8",
                                  record_time=False, batch=batch).plan.data
            t_eval = time.monotonic() - t0
            opt = api.optimize(model, boards=1, board=board, clock_mhz=mhz,
                               input_dtype="UINT8", time_limit=limit, record_time=False,
                               batch=batch)
            od = opt.plan.data
            bare = _bare(model, board, mhz, limit)
            b = ev["boards"][0]
            rows.append({
                "design": design, "board": board, "clock_mhz": mhz,
                "folding_config": f"tests/data/finn_examples/{cfg_name}",
                "dropped_entries": ";".join(dropped),
                "measured_fps": measured, "measured_source": source, "batch": batch,
                "dse_fps_at_batch": ev["metrics"]["batch"]["fps"],
                "ratio_at_batch": round(ev["metrics"]["batch"]["fps"] / measured, 4),
                "driver_call_us": ev["metrics"]["batch"]["driver_call_us"],
                "mmio_source": ev["metrics"]["batch"]["mmio_source"],
                "dse_fps": ev["metrics"]["fps"],
                "ratio": round(ev["metrics"]["fps"] / measured, 4),
                "bottleneck": ev["metrics"]["bottleneck"],
                "fifos": ev["metrics"]["fifos"], "dwcs": ev["metrics"]["dwcs"],
                "lut_as_built": b["resources_as_built"]["lut"],
                "bram18_as_built": b["resources_as_built"]["bram18"],
                "uram_as_built": b["resources_as_built"]["uram"],
                "fits_caps": ev["metrics"]["fits_as_built"] and not ev["metrics"]["violations"],
                "evaluate_s": round(t_eval, 2),
                "optimize_fps": od["metrics"]["fps"],
                "optimize_vs_measured": round(od["metrics"]["fps"] / measured, 3),
                "optimize_fps_at_batch": od["metrics"]["batch"]["fps"],
                "optimize_at_batch_vs_measured": round(
                    od["metrics"]["batch"]["fps"] / measured, 3),
                "optimize_bottleneck": od["metrics"]["bottleneck"],
                "optimize_status": od["solver"]["status"],
                "optimize_fits_as_built": od["metrics"]["fits_as_built"],
                "optimize_placeable": od["metrics"].get("placeable", True),
                "optimize_layers_only_fps": round(bare, 3),
                "advantage_kept": round(od["metrics"]["fps"] / bare, 3),
            })
            r = rows[-1]
            print(f"{design:18s} {board:8s} measured {measured:>11,.0f}  dse at batch "
                  f"{batch} {r['dse_fps_at_batch']:>11,.0f}  x{r['ratio_at_batch']:.3f} "
                  f"(steady {r['dse_fps']:,.0f} x{r['ratio']:.3f})  optimize "
                  f"{r['optimize_fps']:>11,.0f} (layers only {bare:,.0f})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--out", default=str(ROOT / "results"))
    a = ap.parse_args()
    rows = run(a.time_limit)
    out = Path(a.out) / "finn_examples_benchmark.csv"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
