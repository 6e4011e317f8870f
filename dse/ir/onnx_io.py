"""Reading ONNX files with one-line errors (shared by the lowering and the HW-graph loader)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from dse.exceptions import ModelLoadError

HW_DOMAIN = "finn.custom_op.fpgadataflow"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading


def read_model(path: str | Path) -> Any:
    """qonnx ModelWrapper for ``path``, with one-line errors for unreadable files."""
    from qonnx.core.modelwrapper import ModelWrapper

    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelLoadError(f"{p} is a directory; give an .onnx file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModelWrapper(str(p), fix_missing_initializer_valueinfo=False)
    except Exception as e:  # protobuf raises several types for garbage input
        raise ModelLoadError(f"{p} is not a readable ONNX model ({type(e).__name__})") from None
    if len(model.graph.node) == 0:
        raise ModelLoadError(f"{p}: the ONNX graph has no nodes")
    return model


def is_hw_graph(model: Any) -> bool:
    """Does the file already hold FINN HW layers (as FINN/finn-plus write them)?"""
    return any(n.domain.startswith(HW_DOMAIN) for n in model.graph.node)
