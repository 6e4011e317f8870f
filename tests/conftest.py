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
