"""Scale benchmark: the joint optimizer on ResNet-class graphs with 150+ HW layers.

Builds CIFAR-style 4-bit ResNets (dse.examples.make_example.build_resnet; ResNet-34 block
counts, 157 HW layers, and a wider variant) and solves them on 2, 4 and 8 U55C boards with a
60 s limit. Target: proven optimal, or a proven gap <= 1 %, within 60 s on a 2-core machine.
Writes results/scale_benchmark.csv and prints a summary.

    python benchmarks/scale_benchmark.py [--time-limit 60] [--boards 2,4,8]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402

from dse.examples.make_example import build_resnet  # noqa: E402
from dse.ir import load_network  # noqa: E402
from dse.solver.problem import build_problem  # noqa: E402
from dse.solver.search import solve_joint  # noqa: E402
from dse.specs import default_catalog  # noqa: E402

NETWORKS = {
    "resnet34_cifar_w32": dict(blocks=(3, 4, 6, 3), widths=(32, 64, 128, 256)),
    "resnet34_cifar_w64": dict(blocks=(3, 4, 6, 3), widths=(64, 128, 256, 512)),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--boards", default="2,4,8")
    ap.add_argument("--out", default=str(REPO / "results"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cat = default_catalog()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in NETWORKS.items():
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(build_resnet(**kw), str(path))
            graph = load_network(path)
            for nb in [int(x) for x in args.boards.split(",")]:
                t0 = time.monotonic()
                problem = build_problem(graph, [cat.configure("U55C") for _ in range(nb)])
                build_s = time.monotonic() - t0
                r = solve_joint(problem, time_limit=args.time_limit, workers=1, seed=0)
                row = {"network": name, "layers": len(graph), "edges": len(problem.edges),
                       "options": sum(len(o) for o in problem.options), "boards": nb,
                       "status": r.status, "fps": round(r.fps, 2), "ii_cycles": r.ii_cycles,
                       "ii_bound": r.ii_bound, "gap": round(r.gap, 6),
                       "boards_used": r.evaluation.boards_used, "solve_s": round(r.wall_s, 2),
                       "build_s": round(build_s, 2)}
                rows.append(row)
                print(row, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "scale_benchmark.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ok = all(r["gap"] <= 0.01 and r["solve_s"] <= args.time_limit * 1.05 for r in rows)
    print(f"{sum(r['status'] == 'OPTIMAL' for r in rows)} of {len(rows)} proven optimal; "
          f"max gap {max(r['gap'] for r in rows):.4f}; max solve {max(r['solve_s'] for r in rows)}"
          f" s; target met: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
