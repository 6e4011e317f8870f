from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DSE_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"shared reference data missing: {p} (set DSE_SHARED to the shared/ folder)")
    return p


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def finn_env() -> Path:
    """The cached finn-plus environment, created on first use (a few minutes, once)."""
    from dse.backends.finn.env import default_env_path, is_ready, setup
    from dse.exceptions import BackendError

    env = default_env_path()
    if not is_ready(env):
        try:
            setup(env, progress=lambda m: print(f"[finn-setup] {m}", flush=True))
        except BackendError as e:
            if os.environ.get("CI"):
                pytest.fail(f"cannot create the finn-plus environment: {e}")
            pytest.skip(f"no finn-plus environment: {e}")
    return env
