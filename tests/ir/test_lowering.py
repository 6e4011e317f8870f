"""Lowering on the bundled example, on hand-built graphs, and on every shared model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dse.api import example_model_path
from dse.examples.make_example import QONNX_DOMAIN, _Builder, build
from dse.exceptions import ModelLoadError, UnsupportedLayerError
from dse.ir import LayerGraph, load_network
from tests.conftest import shared_path


def _save(b: _Builder, out: str, path: Path, in_shape: list, out_shape: list,
          in_dims: list | None = None) -> Path:
    b.nodes[-1].output[0] = "global_out"
    inp = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, in_dims or in_shape)
    g = helper.make_graph(b.nodes, "t", [inp],
                          [helper.make_tensor_value_info("global_out", TensorProto.FLOAT,
                                                         out_shape)], initializer=b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_example_structure() -> None:
    g = load_network(example_model_path())
    assert g.op_counts() == {
        "ConvolutionInputGenerator": 8, "DuplicateStreams": 1, "ElementwiseAdd": 2,
        "ElementwiseMul": 1, "FMPadding": 6, "MVAU": 7, "Pool": 2, "Thresholding": 2, "VVAU": 1,
    }
    dup = g.layer("DuplicateStreams_0")
    consumers = sorted(e.dst for e in g.out_edges(dup.name))
    assert consumers == ["ElementwiseAdd_0", "FMPadding_2"]
    assert len(g.in_edges("ElementwiseAdd_0")) == 2
    # the input quantizer is a standalone Thresholding on float input, 8-bit out
    t0 = g.layer("Thresholding_0")
    assert (t0.attrs["inputDataType"], t0.attrs["outputDataType"], t0.attrs["numSteps"]) == (
        "FLOAT32", "INT8", 255)
    out = g.out_edges("Thresholding_0")[0]
    assert out.bits_per_frame == 32 * 32 * 3 * 8
    # depthwise conv -> SWG(depthwise) + VVAU with thresholds fused
    v = g.layer("VVAU_0")
    assert v.attrs["noActivation"] == 0 and list(v.attrs["Kernel"]) == [3, 3]
    # every MVAU but the classifier has fused thresholds
    mvaus = [l for l in g.layers if l.op_type == "MVAU"]
    assert [l.attrs["noActivation"] for l in mvaus] == [0] * 6 + [1]


def test_example_is_reproducible(tmp_path: Path) -> None:
    p = tmp_path / "again.onnx"
    onnx.save(build(), str(p))
    assert p.read_bytes() == example_model_path().read_bytes()


def test_graph_json_round_trip() -> None:
    g = load_network(example_model_path())
    g2 = LayerGraph.from_json(g.to_json())
    assert g2.to_json() == g.to_json()
    assert [l.cost() for l in g2.layers] == [l.cost() for l in g.layers]


def test_float_only_model_is_rejected(tmp_path: Path) -> None:
    b = _Builder()
    w = b.const("W", np.ones((4, 2)))
    b.node("MatMul", ["global_in", w])
    p = _save(b, "", tmp_path / "float.onnx", [1, 4], [1, 2])
    with pytest.raises(ModelLoadError, match="float-only model"):
        load_network(p)


def test_dynamic_shape_is_rejected(tmp_path: Path) -> None:
    b = _Builder()
    x = b.quant("global_in", 4, False, 0.1)
    b.node("Relu", [x])
    p = _save(b, "", tmp_path / "dyn.onnx", [1, 4], [1, 4], in_dims=["batch", 4])
    with pytest.raises(ModelLoadError, match="dynamic shape"):
        load_network(p)


def test_unsupported_op_names_the_node(tmp_path: Path) -> None:
    b = _Builder()
    x = b.quant("global_in", 4, False, 0.1)
    w = b.weight((8, 4), 4)
    y = b.node("MatMul", [x, w])
    b.node("Sin", [y])
    p = _save(b, "", tmp_path / "sin.onnx", [1, 8], [1, 4])
    with pytest.raises(UnsupportedLayerError, match=r"Sin 'Sin_0'") as e:
        load_network(p)
    assert e.value.nodes == [("Sin_0", "Sin")]


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all", b"\x08\x07\x12"])
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelLoadError):
        load_network(p)


def test_missing_file() -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_network("/nonexistent/model.onnx")


def test_residual_fork_and_join() -> None:
    g = load_network(shared_path("models", "resnet10_cifar_w4a4.onnx"))
    counts = g.op_counts()
    assert counts["DuplicateStreams"] == 4
    assert counts["MVAU"] == 12  # 11 mapped convs + classifier; the float-input conv on host
    # the float-input conv stays on the host, and so does its weight quantizer
    assert [h.op_type for h in g.host_nodes] == ["Conv", "Quant"]
    assert "host" in g.host_nodes[1].reason
    adds = [l for l in g.layers if l.op_type == "ElementwiseAdd" and l.attrs["rhs_style"] ==
            "input"]
    assert len(adds) == 4
    for a in adds:
        assert len(g.in_edges(a.name)) == 2


def test_input_dtype_maps_the_first_conv() -> None:
    g = load_network(shared_path("models", "resnet10_cifar_w4a4.onnx"), input_dtype="INT8")
    assert g.host_nodes == ()
    assert g.op_counts()["MVAU"] == 13
    first = next(l for l in g.layers if l.op_type == "MVAU")
    assert first.attrs["inputDataType"] == "INT8" and first.attrs["MW"] == 27


MODELS = json.loads(shared_path("models", "models.json").read_text())["models"]


@pytest.mark.parametrize("entry", MODELS, ids=lambda m: m["name"])
def test_every_shared_model_loads_or_fails_clearly(entry: dict) -> None:
    path = shared_path("models", entry["file"])
    g = load_network(path)
    assert len(g) > 0
    for layer in g.layers:
        layer.cost()  # every layer is costable at its lowered folding
    assert all(e.elems_per_frame > 0 for e in g.edges)
