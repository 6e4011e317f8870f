"""The example network shipped inside the package, and the model path a command is given."""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path

from dse.exceptions import ModelLoadError


def example_model_path() -> Path:
    """The example network shipped inside the package (a small quantized CNN)."""
    return Path(str(importlib_resources.files("dse.examples").joinpath("cnv_small_w4a4.onnx")))


def resolve_model(model: str | Path | None) -> Path:
    """The model file (``None``: the bundled example); an empty path is an error, not the
    example."""
    if model is None:
        return example_model_path()
    if str(model).strip() == "":
        raise ModelLoadError("--model is empty; give an .onnx file (omit --model for the "
                             "bundled example)")
    return Path(model)
