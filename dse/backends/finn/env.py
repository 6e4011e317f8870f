"""The finn-plus environment: its own virtualenv, because finn-plus pins onnx 1.21,
protobuf 5.29, pandas < 2.4 and (through brevitas) torch, which clash with dse's own.

The recipe is the lean one from finn_plus_notes.md: the local CPU torch wheel, finn-plus
without its dependencies (it never imports brevitas), then finn-plus's runtime dependencies,
plus psutil, which finn-plus uses but does not declare.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dse.exceptions import BackendError

FINN_PLUS_VERSION = "1.6.1"
TORCH = "torch==2.13.0"  # the local CPU wheel; any other torch pulls gigabytes of CUDA
FINN_DEPS = [
    "bitstring>=4.3.1,<4.4.0", "click>=8.1.8,<9", "cmake>=4.0.3,<4.1", "mashumaro[yaml]>=3.15,<4",
    "matplotlib>=3.10.9,<3.11", "mip==1.17.0", "numpy>=2.4.6,<2.5", "onnx==1.21.0",
    "onnx-ir>=0.1.15", "onnx-passes>=0.4.0", "onnxoptimizer>=0.4.2,<0.5", "onnxruntime==1.25.1",
    "onnxscript>=0.7.0", "pandas>=2.3.1,<2.4", "protobuf==5.29.6", "pybind11==3.0.1",
    "pydantic>2.0", "pyyaml>=6.0.2,<6.1", "qonnx==1.0.0", "rich>=13.9.4,<14",
    "scikit-learn>=1.7.2,<1.8", "scipy>=1.17.0,<1.18", "termcolor>=2.5.0,<3", "psutil",
]
ENV_VAR = "DSE_FINN_ENV"


def default_env_path() -> Path:
    """Where the FINN environment lives unless told otherwise (cached across runs)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "dse" / f"finn-plus-{FINN_PLUS_VERSION}"


def env_python(env: Path | None = None) -> Path:
    return (env or default_env_path()) / "bin" / "python"


def is_ready(env: Path | None = None) -> bool:
    py = env_python(env)
    if not py.exists():
        return False
    r = subprocess.run([str(py), "-c", "import finn, qonnx, onnx; print(onnx.__version__)"],
                       capture_output=True, text=True)
    return r.returncode == 0


def require(env: Path | None = None) -> Path:
    env = env or default_env_path()
    if not is_ready(env):
        raise BackendError(
            f"no finn-plus environment at {env}; create it with 'dse finn-setup {env}' "
            "(about 2.5 GB, a few minutes)"
        )
    return env


def setup(env: Path | None = None, *, progress: Callable[[str], None] | None = None,
          force: bool = False) -> Path:
    """Create (or reuse) the finn-plus virtualenv at ``env``."""
    env = env or default_env_path()
    say = progress or (lambda m: None)
    if is_ready(env) and not force:
        say(f"finn-plus environment ready at {env}")
        return env
    if env.exists() and force:
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        ("virtualenv", [sys.executable, "-m", "venv", str(env)]),
        ("pip", [str(env_python(env)), "-m", "pip", "install", "-q", "-U", "pip"]),
        ("torch (local CPU wheel)", [str(env_python(env)), "-m", "pip", "install", "-q", TORCH]),
        (f"finn-plus {FINN_PLUS_VERSION} (no deps)",
         [str(env_python(env)), "-m", "pip", "install", "-q", "--no-deps",
          f"finn-plus=={FINN_PLUS_VERSION}"]),
        ("finn-plus dependencies",
         [str(env_python(env)), "-m", "pip", "install", "-q", *FINN_DEPS]),
    ]
    for what, cmd in steps:
        say(f"installing {what} ...")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise BackendError(f"finn-setup failed while installing {what}: {' | '.join(tail)}")
    if not is_ready(env):
        raise BackendError(f"finn-setup finished but 'import finn' fails in {env}")
    say(f"finn-plus environment ready at {env}")
    return env
