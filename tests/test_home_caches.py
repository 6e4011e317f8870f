"""No dse command leaves files in $HOME: matplotlib's font cache and config directory and
onnxruntime's telemetry id go elsewhere (dse/nohome.py). Real subprocesses with HOME set to an
empty temporary directory and no XDG/MPL variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _dse(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "MPL")) and k != "HOME"}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "dse", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def test_commands_write_nothing_into_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out"
    runs = [
        ("inspect",),
        ("boards",),
        ("optimize", "--quiet", "--boards", "2", "--board", "Pynq-Z1", "--time-limit", "10",
         "--out", str(out)),
        ("plot", str(out)),
        ("optimize", "--quiet", "--model", "gpt2", "--boards", "A100-80GB", "--out",
         str(tmp_path / "llm")),
        ("explore", "--quiet", "--model", "gpt2", "--devices", "U55C:0..1,A100-80GB:0..1",
         "--trials", "3", "--out", str(tmp_path / "ex")),
    ]
    for args in runs:
        r = _dse(home, *args)
        assert r.returncode == 0, (args, r.stderr)
        left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
        assert left == [], (args, left)
    assert (out / "board_resources.png").exists() or list(out.glob("*.png"))
    assert (tmp_path / "ex" / "pareto.png").exists()
