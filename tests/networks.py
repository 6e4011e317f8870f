"""Test networks we export ourselves (brevitas, seeded random weights, nothing downloaded), and
their FINN-ONNX twins made by finn-plus's own ConvertQONNXtoFINN."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

# brevitas_examples.bnn_pynq configurations FINN's examples build, and their input shapes
BNN_PYNQ = {
    "cnv_2w2a": (1, 3, 32, 32),   # CNV, 2-bit weights and activations (signed: offset Adds)
    "cnv_1w2a": (1, 3, 32, 32),   # binary weights, 2-bit activations (BIPOLAR -> INT2 rule)
    "lfc_1w2a": (1, 1, 28, 28),   # LFC MLP 4x1024
    "tfc_2w2a": (1, 1, 28, 28),
}


def export_bnn_pynq(name: str, out_dir: Path) -> Path:
    """QONNX export (TorchScript exporter, qonnx-cleaned) of a bnn_pynq model, seed 0."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from qonnx.util.cleanup import cleanup

    path = out_dir / f"{name}.onnx"
    if path.exists():
        return path
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = model_with_cfg(name, pretrained=False)
        model.eval()
        export_qonnx(model, torch.randn(BNN_PYNQ[name]), str(path), dynamo=False)
        cleanup(str(path), out_file=str(path))
    return path


def to_finn_onnx(finn_env: Path, qonnx: Path) -> Path:
    """The FINN-ONNX (MultiThreshold) twin, converted by finn-plus itself."""
    from dse.backends.finn.runner import run_driver

    out = qonnx.with_name(qonnx.stem + "_finn.onnx")
    if not out.exists():
        r = run_driver(finn_env, "to_finn", str(qonnx), str(out))
        assert r.get("ok"), f"finn-plus ConvertQONNXtoFINN failed on {qonnx.name}: {r}"
    return out


def finn_estimate(finn_env: Path, qonnx: Path, target_fps: int) -> tuple[Path, Path]:
    """finn-plus's own default estimate-only flow (SetFolding, minimize_bit_width): the folded
    HW-layer graph and the report directory."""
    from dse.backends.finn.runner import run_driver

    out = qonnx.with_name(qonnx.stem + "_finn_build")
    r = run_driver(finn_env, "estimate", str(qonnx), str(out), str(target_fps))
    assert r.get("ok"), f"finn-plus's estimate flow failed on {qonnx.name}: {r}"
    return Path(r["path"]), Path(r["report_dir"])
