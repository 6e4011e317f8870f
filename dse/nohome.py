"""Keep libraries' caches out of the user's home: a dse command leaves no files in ``$HOME``.

matplotlib writes its font cache and config directory under ``~/.cache/matplotlib`` and
``~/.config/matplotlib`` unless ``MPLCONFIGDIR`` says otherwise; onnxruntime (imported by
qonnx) writes a telemetry id under ``$XDG_CACHE_HOME`` (default ``~/.cache``). dse points
matplotlib at a per-user directory in the system's temporary directory (kept between runs, so
the font cache is built once) and imports onnxruntime with its cache in a throwaway directory.
A user's own ``MPLCONFIGDIR`` is respected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path


def matplotlib_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"dse-matplotlib-{uid}"


def keep_caches_out_of_home() -> None:
    if not os.environ.get("MPLCONFIGDIR"):
        d = matplotlib_dir()
        with contextlib.suppress(OSError):
            d.mkdir(mode=0o700, exist_ok=True)
        if d.is_dir() and os.access(d, os.W_OK) and not d.is_symlink():
            os.environ["MPLCONFIGDIR"] = str(d)
        else:  # someone else's directory of that name: one of our own
            os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="dse-matplotlib-")
    _import_onnxruntime_without_home_cache()


def _import_onnxruntime_without_home_cache() -> None:
    if "onnxruntime" in sys.modules:
        return
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="dse-ort-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old
