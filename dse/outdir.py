"""Output directories that change only on success.

Every command that writes files writes them into a fresh temporary directory beside ``--out``
(same file system, so the final moves are atomic renames) and moves them into place only when
it succeeded; a failure, an exception or Ctrl-C leaves ``--out`` exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dse.exceptions import SpecError


def check_out_dir(out: str | Path, what: str = "--out") -> Path:
    """``out`` as a directory dse may write, or a one-line error saying why not."""
    if str(out).strip() == "":
        raise SpecError(f"{what} is empty; give a directory to write to")
    p = Path(out).expanduser()
    resolved = p.resolve()
    if resolved == Path(resolved.anchor):
        raise SpecError(f"{what} {out}: refusing to write into the file system root; give a "
                        "directory of its own")
    if p.exists() and not p.is_dir():
        raise SpecError(f"{what} {out} is a file, not a directory; give a directory")
    parent = resolved if p.exists() else _existing_parent(resolved)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError(f"{what} {out}: {parent} is not writable; choose another directory")
    return p


def _existing_parent(p: Path) -> Path:
    while not p.exists():
        p = p.parent
    return p


@contextlib.contextmanager
def staged_dir(out: str | Path, what: str = "--out") -> Iterator[Path]:
    """Yield a temporary directory; on success its contents move into ``out`` (files already
    in ``out`` that the command did not write stay), on failure it is removed."""
    dest = check_out_dir(out, what)
    parent = _existing_parent(dest.resolve().parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _move_into(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(src: Path, dest: Path) -> None:
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        src.mkdir()  # for the caller's cleanup
        return
    for item in sorted(src.iterdir()):
        target = dest / item.name
        if item.is_dir() and target.is_dir():
            _move_into(item, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)


def write_file_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``path`` through a temporary file in the same directory and rename it."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"{p} is a directory; give a file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p
