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

#: kernel file systems: writable for root by permission bits, but not places for files
VIRTUAL_FS = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_out_dir(out: str | Path, what: str = "--out", files: tuple[str, ...] = ()) -> Path:
    """``out`` as a directory dse may write, or a one-line error saying why not. ``files``:
    names the command will write into it (none of them may be a directory)."""
    if str(out).strip() == "" or "\0" in str(out):
        raise SpecError(f"{what} is empty; give a directory to write to")
    p = Path(out).expanduser()
    try:
        resolved = p.resolve()
        exists = p.exists()
    except (OSError, RuntimeError) as e:
        raise SpecError(f"{what} {out}: not a usable path ({e})") from None
    if resolved == Path(resolved.anchor):
        raise SpecError(f"{what} {out}: refusing to write into the file system root; give a "
                        "directory of its own")
    fs = next((v for v in VIRTUAL_FS if resolved == v or v in resolved.parents), None)
    if fs is not None:
        raise SpecError(f"{what} {out}: {fs} is a kernel file system, not a place for "
                        "results; choose another directory")
    if exists and not p.is_dir():
        raise SpecError(f"{what} {out} is a file, not a directory; give a directory")
    parent = resolved if exists else _existing_parent(resolved)
    if not parent.is_dir():
        raise SpecError(f"{what} {out}: {parent} is a file, so nothing can be created under "
                        "it; give a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SpecError(f"{what} {out}: {parent} is not writable; choose another directory")
    for name in files:
        if (p / name).is_dir():
            raise SpecError(f"{what} {out}: {p / name} is a directory, where dse writes the "
                            f"file {name}; move it away or choose another {what}")
    return p


def _existing_parent(p: Path) -> Path:
    while not p.exists() and not p.is_symlink():
        p = p.parent
    return p


@contextlib.contextmanager
def staged_dir(out: str | Path, what: str = "--out", files: tuple[str, ...] = ()
               ) -> Iterator[Path]:
    """Yield a temporary directory; on success its contents move into ``out`` (files already
    in ``out`` that the command did not write stay), on failure it is removed."""
    dest = check_out_dir(out, what, files)
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


def _conflicts(src: Path, dest: Path) -> None:
    """Refuse, before anything moves, to replace a directory by a file or a file by a
    directory in ``dest``."""
    if not dest.exists():
        return
    for item in src.iterdir():
        target = dest / item.name
        if item.is_dir() and target.exists() and not target.is_dir():
            raise SpecError(f"{target} is a file, where dse writes a directory; move it away")
        if not item.is_dir() and target.is_dir():
            raise SpecError(f"{target} is a directory, where dse writes a file; move it away")
        if item.is_dir():
            _conflicts(item, target)


def _move_into(src: Path, dest: Path) -> None:
    _conflicts(src, dest)
    _move(src, dest)


def _move(src: Path, dest: Path) -> None:
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        src.mkdir()  # for the caller's cleanup
        return
    for item in sorted(src.iterdir()):
        target = dest / item.name
        if item.is_dir() and target.is_dir():
            _move(item, target)
        else:
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
