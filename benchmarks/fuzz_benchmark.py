"""Fuzz run: N mutated inputs of each kind (ONNX models, board files, plans, LLM configs,
device files, calibration CSVs) through dse's boundary, counting how many were accepted,
refused with a dse error, or ended in a foreign exception (grouped by where it was raised),
and timing every case (the slowest, and how many took over 60 s). Writes
results/fuzz_benchmark.json.

    python benchmarks/fuzz_benchmark.py [--cases 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from dse import api  # noqa: E402
from tests.fuzz_strategies import (  # noqa: E402
    ACCEPTED,
    REFUSED,
    mutated_config,
    mutated_device_file,
    mutated_json,
    mutated_measurements,
    mutated_model,
)
from tests.test_fuzz import (  # noqa: E402
    BOARD_FILE,
    MODELS,
    check_board_doc,
    check_config_doc,
    check_device_doc,
    check_measurement_bytes,
    check_model_bytes,
    check_plan_doc,
)

SLOW_S = 60.0


def _runner(strategy, check, sites, counts, n, examples, walls):
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(x) -> None:
        n[0] += 1
        t = time.monotonic()
        res = check(x)
        walls.append(time.monotonic() - t)
        if res in (ACCEPTED, REFUSED):
            counts[res] += 1
        else:
            sites[res.split(": ")[0]] += 1  # "Type at file:line via dse-file:line"

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000, help="total cases (split over kinds)")
    ap.add_argument("--out", default=str(REPO / "results" / "fuzz_benchmark.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    plan_doc = json.loads(api.optimize(boards=2, board="Pynq-Z1", time_limit=10,
                                       record_time=False).plan.to_json())
    kinds: list[tuple[str, object, object]] = []
    for name, path in sorted(MODELS.items()):
        kinds.append((f"model:{name}", mutated_model(onnx.load(str(path()))), check_model_bytes))
    kinds.append(("board_file", mutated_json(BOARD_FILE), check_board_doc))
    kinds.append(("plan", mutated_json(plan_doc), check_plan_doc))
    kinds.append(("llm_config", mutated_config(), check_config_doc))
    kinds.append(("device_file", mutated_device_file(), check_device_doc))
    kinds.append(("calibration_csv", mutated_measurements(), check_measurement_bytes))
    per_kind = max(1, -(-args.cases // len(kinds)))  # at least --cases in all
    report: dict[str, dict] = {}
    total_foreign = total_slow = 0
    t0 = time.monotonic()
    for name, strategy, check in kinds:
        sites: collections.Counter[str] = collections.Counter()
        counts: collections.Counter[str] = collections.Counter()
        n = [0]
        walls: list[float] = []
        run = _runner(strategy, check, sites, counts, n, per_kind, walls)
        run()
        foreign = sum(sites.values())
        total_foreign += foreign
        slow = sum(w > SLOW_S for w in walls)
        total_slow += slow
        report[name] = {"cases": n[0], "accepted": counts[ACCEPTED],
                        "refused_with_dse_error": counts[REFUSED],
                        "foreign_exceptions": foreign, "sites": dict(sites.most_common()),
                        "max_case_s": round(max(walls, default=0.0), 2),
                        "over_60_s": slow}
        print(f"{name:22s} {n[0]:6d} cases: {counts[ACCEPTED]} accepted, {counts[REFUSED]} "
              f"refused with a dse error, {foreign} other exceptions, slowest "
              f"{max(walls, default=0.0):.2f} s, {slow} over {SLOW_S:g} s", flush=True)
    summary = {"cases": sum(r["cases"] for r in report.values()),
               "non_dse_exceptions": total_foreign, "runs_over_60_s": total_slow,
               "max_case_s": max(r["max_case_s"] for r in report.values()),
               "wall_s": round(time.monotonic() - t0, 1), "by_kind": report}
    Path(args.out).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "by_kind"}))
    return 0 if total_foreign == 0 and total_slow == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
