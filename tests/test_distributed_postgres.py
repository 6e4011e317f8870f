"""Two `dse explore` workers share one Optuna study on a real PostgreSQL server (loopback).

The fixture starts a throw-away PostgreSQL cluster on 127.0.0.1 with the server binaries of the
machine (.ci/run installs Debian's postgresql). In CI a missing server fails the test; on a
developer machine without one it is skipped with the reason.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing; .ci/run installs them")
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    # root runs the server as postgres; runuser lives in sbin, which a bare PATH may lack
    runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    as_postgres = [runuser or "runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="dse-pg-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                    "-l", str(root / "log"), "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study(postgres_url: str, tmp_path: Path) -> None:
    import optuna

    study = "shared-study"
    cmd = [sys.executable, "-m", "dse.cli", "explore", "--storage", postgres_url, "--study",
           study, "--trials", "10", "--boards", "1..2", "--board-types", "Pynq-Z1",
           "--trial-time-limit", "3", "--quiet"]
    procs = []
    for w in range(2):
        procs.append(subprocess.Popen([*cmd, "--out", str(tmp_path / f"w{w}"), "--seed", str(w)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.5)
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    st = optuna.load_study(study_name=study, storage=postgres_url)
    done = [t for t in st.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 10
    workers = {t.user_attrs.get("worker") for t in done}
    assert len(workers) == 2, workers  # both processes contributed trials
    # each worker's export sees the union of both workers' trials finished when it wrote it
    # (the other worker may still finish a slow trial afterwards)
    import datetime

    for w in range(2):
        path = tmp_path / f"w{w}" / "trials.csv"
        written = datetime.datetime.fromtimestamp(path.stat().st_mtime)
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert {int(r["trial"]) for r in rows if r["state"] == "COMPLETE"} >= \
            {t.number for t in done if t.number < 10 and t.datetime_complete is not None
             and t.datetime_complete <= written}
