"""The exploration study's journal file (Optuna's JournalFileBackend) as dse uses it: one
``dse explore`` process owns the journal in its ``--out``, so a lock left by a process that
was interrupted (Ctrl-C between Optuna's acquire and release) is stale and removed at once,
instead of making the next ``--resume`` wait out Optuna's 30 s grace period; a journal path
that is a directory, not UTF-8 or not a journal is one line (exit 2); and a command that fails
before its study exists leaves ``--out`` as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dse.exceptions import SpecError

LOCK_SUFFIX = ".lock"  # optuna.storages.journal._file.LOCK_FILE_SUFFIX


def clear_stale_lock(journal: Path) -> bool:
    """Remove the lock of a journal this process owns (True if there was one)."""
    lock = Path(str(journal) + LOCK_SUFFIX)
    if lock.is_symlink() or lock.exists():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        return True
    return False


def open_journal(path: Path, *, owned: bool) -> Any:
    """Optuna's journal storage on ``path``, checked: a readable journal (or none yet).
    ``owned``: dse's own journal in --out (a lock left behind is stale)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if path.is_dir():
        raise SpecError(f"--storage {path} is a directory; give a journal file (or an RDB URL)")
    if path.exists():
        _check_journal_text(path)
    if owned:
        clear_stale_lock(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise SpecError(f"--storage {path}: not an Optuna journal ({str(e)[:120]})") from None


def _check_journal_text(path: Path) -> None:
    """Each line of a journal is a JSON object; a last line cut by a crash is Optuna's to skip."""
    import json

    try:
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if not line.endswith("\n"):
                    break
                if line.strip() and not isinstance(json.loads(line), dict):
                    raise ValueError("not an object")
                if i >= 2:  # the first lines decide: a journal starts with its study
                    break
    except UnicodeDecodeError:
        raise SpecError(f"--storage {path}: not UTF-8 text, so not an Optuna journal; give "
                        "a journal file dse explore wrote, or a new path") from None
    except (ValueError, RecursionError):
        raise SpecError(f"--storage {path}: not an Optuna journal (its lines are not JSON "
                        "objects); give a journal file dse explore wrote, or a new path") from None
    except OSError as e:
        raise SpecError(f"--storage {path}: {e.strerror or e}") from None


@contextlib.contextmanager
def undo_on_failure(out_dir: Path, journal: Path | None) -> Iterator[None]:
    """Setting up a study: on any failure, remove ``out_dir`` if this created it, or the
    journal if this created it, so that a bad --storage or study leaves --out as it was."""
    dir_existed = out_dir.exists()
    journal_existed = journal is None or journal.exists()
    try:
        yield
    except BaseException:
        if not dir_existed:
            shutil.rmtree(out_dir, ignore_errors=True)
        elif not journal_existed and journal is not None:
            with contextlib.suppress(OSError):
                os.unlink(journal)
            clear_stale_lock(journal)
        raise

