from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
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


def run_notebook(name: str, env: dict[str, str]) -> tuple[list, list]:
    """Execute notebooks/<name> (committed without outputs) with ``env`` set; returns
    (error outputs, PNG outputs)."""
    import os

    import nbformat
    from nbclient import NotebookClient

    repo = Path(__file__).resolve().parents[1]
    nb = nbformat.read(repo / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(repo / "notebooks")}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return ([o for o in outs if o.output_type == "error"],
            [o for o in outs if "image/png" in o.get("data", {})])


@pytest.fixture(autouse=True)
def _every_alveo_plan_is_placed(monkeypatch: pytest.MonkeyPatch):
    """Every plan a test gets from dse.api.optimize is checked by the independent per-SLR
    check of tests/solver/test_slr.py (FINN's raw per-SLR table and limits, not dse's packer)."""
    from dse import api

    real = api.optimize

    def checked(*args, **kwargs):
        res = real(*args, **kwargs)
        from tests.solver.test_slr import check_placed

        if res.plan["metrics"].get("placeable") is not False:  # flagged plans are reported
            check_placed(res.plan.data)
        return res

    monkeypatch.setattr(api, "optimize", checked)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow run only when asked for (``-m slow``, or DSE_SLOW=1): the default
    run stays lean."""
    if "slow" in (config.getoption("-m") or "") or os.environ.get("DSE_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or DSE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
