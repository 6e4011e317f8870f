"""Hadamard rotations: the FWHT layer's cost model, recognizing a Hadamard MatMul and a
hand-written FWHT (and brevitas' RotatedModule export), and the rotation's exact matrix."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from dse.ir.fwht import hadamard_scale
from dse.ir.lower import load_network
from dse.models import estimate
from dse.models.hadamard import additions, factor
from tests.minifloat_networks import export_rotated, hadamard_matrix


def test_fwht_needs_n_log2_n_additions() -> None:
    assert additions(32) == 32 * 5
    assert additions(4096) == 4096 * 12
    assert factor(11008) == (6, 172)  # Llama-2-7B's intermediate: 64 x 172 (QuaRot)
    assert additions(11008) == 11008 * 6 + 11008 * 171
    with pytest.raises(Exception, match="no Hadamard matrix of size 100"):
        factor(100)


def test_hadamard_layer_cycles_and_resources() -> None:
    a = {"NumChannels": 1024, "inputDataType": "INT8", "outputDataType": "INT18",
         "numInputVectors": [1, 16]}
    one = estimate("Hadamard", {**a, "PE": 1})
    eight = estimate("Hadamard", {**a, "PE": 8})
    assert (one.cycles, eight.cycles) == (16 * 1024, 16 * 1024 // 8)
    assert one.source == eight.source == "dse model" and one.dsp == 0
    assert eight.lut > one.lut  # 8 lanes of adders
    # the 512-deep delay line of the last stage is in BRAM at PE=1
    assert one.bram18 > 0
    # a dense n x n MVAU at the same throughput costs far more than the butterfly
    dense = estimate("MVAU", {"MW": 1024, "MH": 1024, "PE": 8, "SIMD": 1024,
                              "inputDataType": "INT8", "weightDataType": "INT2",
                              "outputDataType": "INT18", "noActivation": 1,
                              "numInputVectors": [1, 16], "mem_mode": "internal_embedded"})
    assert dense.cycles == eight.cycles and dense.lut > 50 * eight.lut


def test_hadamard_matrices_are_recognized() -> None:
    h = hadamard_matrix(16)
    assert hadamard_scale(h) == 1.0
    assert hadamard_scale(h / 4) == pytest.approx(0.25)
    assert hadamard_scale(-h[::-1]) == 1.0  # row permutations and signs stay Hadamard
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((16, 16)))
    assert hadamard_scale(q) is None  # orthogonal, not +-c
    assert hadamard_scale(np.ones((16, 16))) is None
    assert hadamard_scale(h[:8]) is None


@pytest.fixture(scope="module")
def rot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rotated")


@pytest.mark.parametrize("form, dynamo", [("fwht", False), ("fwht", True), ("matmul", False),
                                          ("matmul", True)])
def test_rotations_lower_to_one_hadamard_layer(form: str, dynamo: bool, rot_dir: Path) -> None:
    g = load_network(export_rotated(form, rot_dir, dynamo=dynamo))
    assert g.op_counts() == {"Hadamard": 1, "MVAU": 1, "Thresholding": 2}
    h = next(ly for ly in g.layers if ly.op_type == "Hadamard")
    assert (h.attrs["NumChannels"], h.attrs["inputDataType"], h.attrs["outputDataType"]) == (
        32, "INT8", "INT13")  # 8 bits + log2 32 (exact integer sums)
    assert h.cost().source == "dse model"


def test_folded_fwht_is_the_exported_rotation_exactly(rot_dir: Path) -> None:
    """qonnx executes the hand-written FWHT; the matrix dse folds it into reproduces it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from dse.ir.onnx_io import read_model
    from dse.ir.prepare import prepare

    path = export_rotated("fwht", rot_dir)
    folded = prepare(read_model(path), str(path))
    mm = [n for n in folded.graph.node if n.op_type == "MatMul"
          and n.input[1].startswith("FWHT")]
    assert len(mm) == 1 and not any(n.op_type == "Sub" for n in folded.graph.node)
    x_name, y_name = mm[0].input[0], mm[0].output[0]
    m = next(np.asarray(__import__("onnx").numpy_helper.to_array(i))
             for i in folded.graph.initializer if i.name == mm[0].input[1])
    orig = ModelWrapper(str(path)).transform(InferShapes())
    inp = orig.graph.input[0].name
    x = np.random.default_rng(1).standard_normal((1, 4, 32)).astype(np.float32)
    ctx = execute_onnx(orig, {inp: x}, return_full_exec_context=True)
    assert np.allclose(ctx[x_name] @ m, ctx[y_name], rtol=1e-5, atol=1e-5)
    assert np.allclose(np.abs(m), 1 / np.sqrt(32))


@pytest.mark.slow  # qonnx FoldConstants on its ~300 shape nodes takes minutes (not dse code)
def test_brevitas_rotated_module_torchscript_export_lowers(tmp_path: Path) -> None:
    """brevitas' RotatedModule: the dynamo exporter fails on it (torch.export), TorchScript
    writes an in-place FWHT of ScatterND/Gather/Where nodes, which dse folds too."""
    torch = pytest.importorskip("torch")
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.nn.equalized_layer import RotatedModule

    torch.manual_seed(0)
    h = torch.tensor(hadamard_matrix(32), dtype=torch.float32) / 32**0.5
    m = torch.nn.Sequential(qnn.QuantIdentity(return_quant_tensor=False),
                            RotatedModule(qnn.QuantLinear(32, 16, bias=False), had_mat=h,
                                          k=32)).eval()
    x = torch.randn(1, 4, 32)
    path = tmp_path / "rotated_module.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        m(x)
        export_qonnx(m, x, str(path), dynamo=False)
    g = load_network(path)
    assert g.op_counts() == {"Hadamard": 1, "MVAU": 1, "Thresholding": 1}


@pytest.mark.parametrize("dynamo", [False, True])
def test_rotated_tiny_transformer_plans(dynamo: bool, rot_dir: Path, tmp_path: Path) -> None:
    """A BERT block whose FFN output projection reads a rotated input (FWHT of 64) plans."""
    import json
    import subprocess
    import sys

    from tests.minifloat_networks import export_rotated_bert

    path = export_rotated_bert(rot_dir, dynamo=dynamo)
    g = load_network(path)
    assert g.op_counts()["Hadamard"] == 1 and g.op_counts()["MVAU"] == 6
    h = next(ly for ly in g.layers if ly.op_type == "Hadamard")
    assert h.attrs["NumChannels"] == 64 and h.attrs["numInputVectors"][-1] == 8
    out = tmp_path / "plan"
    r = subprocess.run([sys.executable, "-m", "dse", "optimize", "--model", str(path),
                        "--boards", "1", "--board", "U55C", "--time-limit", "30", "--out",
                        str(out), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    plan = json.loads((out / "plan.json").read_text())
    had = [ly for ly in plan["payload"]["layers"] if ly["op_type"] == "Hadamard"]
    assert len(had) == 1 and had[0]["cost_source"] == "dse model"
