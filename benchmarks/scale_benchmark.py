"""Scale benchmark: ``dse optimize`` end to end on 140-300-layer networks, SLRs included.

Builds 4-bit networks with ``dse.examples.make_example``: CIFAR-style ResNet-34 (basic blocks,
157 HW layers; and a wider variant), a ProxylessNAS/MobileNetV2-class inverted-residual
network at 224 x 224 (138 HW layers), a ResNet-50 (bottleneck blocks, 142) and a bottleneck
ResNet with ResNet-101 block counts (~290 HW layers), and runs ``dse.api.optimize`` on 2, 4 and
8 U55C with a 60 s limit that covers the whole run (loading, costing, search, SLR placement and
its re-solve). Target: proven optimal, or a proven gap <= 1 %, within 60 s on 2 cores.
Writes results/scale_benchmark.csv (with per-phase times) and prints a summary.

    python benchmarks/scale_benchmark.py [--time-limit 60] [--boards 2,4,8]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402

from benchmarks.optimize_benchmark import write_readme  # noqa: E402
from dse import api  # noqa: E402
from dse.examples.make_example import (  # noqa: E402
    build_bottleneck_resnet,
    build_mbconv_net,
    build_resnet,
)

NETWORKS = {
    "resnet34_cifar_w32": lambda: build_resnet((3, 4, 6, 3), (32, 64, 128, 256)),
    "resnet34_cifar_w64": lambda: build_resnet((3, 4, 6, 3), (64, 128, 256, 512)),
    "mbconv_224 (ProxylessNAS-class)": build_mbconv_net,
    "resnet50_cifar": build_bottleneck_resnet,
    "resnet101_blocks_cifar": lambda: build_bottleneck_resnet((3, 4, 23, 3)),
}


def readme(rows: list[dict], time_limit: float) -> str:
    lines = ["## scale_benchmark.csv", "",
             f"`python benchmarks/scale_benchmark.py`: `dse.api.optimize` end to end (loading, "
             "costing, search, SLR placement) on 4-bit networks from "
             "`dse.examples.make_example`, on 2, 4 and 8 U55C, a "
             f"{time_limit:g} s limit for the whole run, one CP-SAT worker on a 2-core machine. "
             "Target: proven optimal or gap <= 1 % within 60 s, every plan placeable.", "",
             "| network | HW layers | boards | status | fps | gap | boards used | placeable "
             "| wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['layers']} | {r['boards']} | {r['status']} | "
                     f"{float(r['fps']):,.0f} | {float(r['gap']):.4f} | {r['boards_used']} | "
                     f"{r['placeable']} | {r['wall_s']} |")
    lines += ["", "Per-phase times are in the CSV (`phases`). Status and gap hold for plans "
              "whose SLRs follow the chain where a board was modelled per SLR "
              "(`per_slr_boards`); docs/placement.md.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--boards", default="2,4,8")
    ap.add_argument("--networks", help="comma-separated subset")
    ap.add_argument("--out", default=str(REPO / "results"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in NETWORKS.items():
            if args.networks and name.split()[0] not in args.networks.split(","):
                continue
            path = Path(tmp) / f"{name.split()[0]}.onnx"
            onnx.save(build(), str(path))
            for nb in [int(x) for x in args.boards.split(",")]:
                t0 = time.monotonic()
                r = api.optimize(path, boards=nb, board="U55C", time_limit=args.time_limit,
                                 workers=1, seed=0)
                wall = time.monotonic() - t0
                p = r.plan
                s, m = p["solver"], p["metrics"]
                row = {"network": name, "layers": len(r.graph), "edges": len(r.graph.edges),
                       "options": sum(len(o) for o in r.result.problem.options), "boards": nb,
                       "status": s["status"], "fps": m["fps"], "ii_cycles": m["ii_cycles"],
                       "gap": s["gap"], "boards_used": m["boards_used"],
                       "placeable": m["placeable"],
                       "per_slr_boards": ",".join(s.get("slr_model", {}).get(
                           "per_slr_boards", [])),
                       "wall_s": round(wall, 2),
                       "phases": json.dumps({ph["phase"]: ph["wall_s"] for ph in s["phases"]})}
                rows.append(row)
                print({k: v for k, v in row.items() if k != "phases"}, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "scale_benchmark.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_readme(out / "README.md", readme(rows, args.time_limit), ("## scale_benchmark.csv",))
    ok = all(r["gap"] <= 0.01 and r["wall_s"] <= args.time_limit * 1.05 and r["placeable"]
             for r in rows)
    print(f"{sum(r['status'] == 'OPTIMAL' for r in rows)} of {len(rows)} proven optimal; "
          f"max gap {max(r['gap'] for r in rows):.4f}; max wall {max(r['wall_s'] for r in rows)}"
          f" s; all placeable {all(r['placeable'] for r in rows)}; target met: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
