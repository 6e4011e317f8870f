"""Run FINN on emitted board directories (in the finn-plus environment, as subprocesses, in
parallel), parse FINN's reports and compare them with the plan's predictions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.backends.finn.env import env_python, require
from dse.exceptions import BackendError

DRIVER = Path(__file__).with_name("driver.py")
FIELDS = (("cycles", None), ("lut", "LUT"), ("bram18", "BRAM_18K"), ("uram", "URAM"),
          ("dsp", "DSP"))


def run_driver(env: Path, *args: str, cwd: Path | None = None, log: Path | None = None,
               timeout: float = 3600, script: Path = DRIVER) -> dict[str, Any]:
    """Run driver.py (or another ``script``) in the FINN environment; its last line is
    ``DSE_RESULT {json}``."""
    cmd = [str(env_python(env)), str(script), *args]
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           env=envvars)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"FINN did not finish within {timeout:g} s"}
    if log is not None:
        log.write_text(r.stdout + r.stderr)
    for line in reversed(r.stdout.splitlines()):
        if "DSE_RESULT " in line:
            return json.loads(line.split("DSE_RESULT ", 1)[1])
    tail = (r.stderr or r.stdout).strip().splitlines()[-2:]
    return {"ok": False, "error": " | ".join(tail) or f"exit code {r.returncode}"}


def have_vivado() -> bool:
    return bool(os.environ.get("XILINX_VIVADO")) and shutil.which("vivado") is not None


@dataclass
class BoardBuild:
    rank: int
    dir: Path
    ok: bool
    wall_s: float
    note: str = ""
    error: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)  # plan vs FINN per layer

    @property
    def mismatches(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["match"]]


def compare(predicted: dict[str, Any], report_dir: Path) -> list[dict[str, Any]]:
    """Per FINN node: the plan's cycles and resources next to FINN's estimate reports."""
    cycles = json.loads((report_dir / "estimate_layer_cycles.json").read_text())
    res = json.loads((report_dir / "estimate_layer_resources.json").read_text())
    rows = []
    names = sorted(set(predicted) | set(cycles), key=lambda n: (n not in predicted, n))
    for name in names:
        p = predicted.get(name)
        f = {"cycles": cycles.get(name)}
        for k, key in FIELDS[1:]:
            v = res.get(name, {}).get(key)
            f[k] = None if v is None else int(float(v))
        row = {"node": name, "plan": p, "finn": f,
               "match": p is not None and all(p.get(k) == f[k] for k, _ in FIELDS)}
        rows.append(row)
    return rows


def build(build_dir: str | Path, *, jobs: int = 2, env: Path | None = None,
          progress: Callable[[str], None] | None = None) -> list[BoardBuild]:
    d = Path(build_dir).resolve()  # FINN runs in each board's directory: paths must be absolute
    man_path = d / "manifest.json"
    if not man_path.is_file():
        raise BackendError(f"{d} has no manifest.json; create it with 'dse emit'")
    try:
        manifest = json.loads(man_path.read_text())
        boards = [b for b in manifest["boards"] if (d / b["dir"]).is_dir()]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"{man_path} is not a dse emit manifest ({type(e).__name__}); "
                           "re-create it with 'dse emit'") from None
    if len(boards) != len(manifest["boards"]):
        raise BackendError(f"{d}: the manifest lists board directories that are missing; "
                           "re-create the build with 'dse emit'")
    env = require(env)
    say = progress or (lambda m: None)
    if not have_vivado():
        say("Vivado/Vitis not found: running FINN's estimate-only flow (bitstreams need "
            "Vivado; set XILINX_VIVADO and put vivado on PATH for the full flow)")

    def one(b: dict[str, Any]) -> BoardBuild:
        bd = d / b["dir"]
        say(f"rank {b['rank']} ({b['name']}): FINN build started, log {bd / 'build.log'}")
        t0 = time.monotonic()
        r = run_driver(env, "build", str(bd), cwd=bd, log=bd / "build.log")
        out = BoardBuild(rank=b["rank"], dir=bd, ok=bool(r.get("ok")),
                         wall_s=round(time.monotonic() - t0, 2), note=r.get("note", ""),
                         error=r.get("error", ""))
        if out.ok:
            out.rows = compare(b["predicted"]["layers"], bd / "output" / "report")
        say(f"rank {b['rank']}: {'done' if out.ok else 'FAILED: ' + out.error} "
            f"({out.wall_s:.1f} s)")
        return out

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, boards))
    summary = {"boards": [{"rank": r.rank, "ok": r.ok, "wall_s": r.wall_s, "note": r.note,
                           "error": r.error, "layers": r.rows} for r in results]}
    (d / "comparison.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return results
