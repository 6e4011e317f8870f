"""finn-plus's own SetFolding swept over targets and ``mvau_wwidth_max``, on the specialized
HW-layer graphs finn-plus made of the shared models (``../shared/models/finn_hw``). Runs
SetFolding in the finn-plus environment (``dse finn-setup``) and writes what it set per node:
``tests/data/finn_plus_setfolding_sweep.json`` (tests/backends/test_setfolding_sweep.py compares
dse's SetFolding with every row).

    python benchmarks/finn_setfolding_sweep.py [--shared ../shared] [--finn-env DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dse.backends.finn.env import env_python, require  # noqa: E402
from tests.networks import finn_hw_model  # noqa: E402

#: per model: FINN's own target (fps at 200 MHz, index.json) times these factors
FACTORS = (1 / 16, 1 / 4, 1, 4, 16, 64)
WIDTHS = (36, 64, 128, 256)
CLOCK = 200e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--finn-env")
    ap.add_argument("--out", default=str(REPO / "tests" / "data" /
                                         "finn_plus_setfolding_sweep.json"))
    args = ap.parse_args()
    py = env_python(require(Path(args.finn_env) if args.finn_env else None))
    shared = Path(args.shared)
    index = json.loads((shared / "models" / "finn_hw" / "index.json").read_text())
    out: dict = {"source": "finn-plus SetFolding (two_pass_relaxation=True), "
                           "run by benchmarks/finn_setfolding_sweep.py", "models": {}}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for e in index:
            if not e["ok"]:
                continue
            folder = shared / "models" / "finn_hw" / e["name"]
            hw = finn_hw_model(folder, "specialized", tmp)
            spec = [[max(1, int(CLOCK / (e["target_fps"] * f))), w]
                    for f in FACTORS for w in WIDTHS]
            (tmp / "spec.json").write_text(json.dumps(spec))
            res = tmp / f"{e['name']}.json"
            cmd = [str(py), str(REPO / "dse" / "backends" / "finn" / "driver.py"),
                   "setfolding", str(hw), str(res), str(tmp / "spec.json")]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if not res.exists():
                print(f"{e['name']}: failed\n{p.stderr[-2000:]}", flush=True)
                return 1
            runs = json.loads(res.read_text())["runs"]
            out["models"][e["name"]] = {"file": str(hw.name), "runs": runs}
            print(f"{e['name']}: {len(runs)} settings", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
