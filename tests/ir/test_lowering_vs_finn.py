"""Our QONNX lowering must give the HW layers finn-plus made of the same models.

Ground truth: ``shared/models/finn_hw/<model>/<model>_hw_generic.onnx[.xz]`` (finn-plus 1.6.1,
after step_convert_to_hw) for the lowering without bit-width minimization, and
``<model>_hw_folded.onnx[.xz]`` (after SetFolding and step_minimize_bit_width) for the default
lowering: every attribute but the folding must equal FINN's, layer by layer in FINN's order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dse.ir import load_network
from tests.conftest import shared_path
from tests.networks import finn_hw_model

KEYS = {
    "MVAU": ("MW", "MH", "numInputVectors", "inputDataType", "weightDataType", "outputDataType",
             "noActivation", "binaryXnorMode"),
    "VVAU": ("Channels", "Kernel", "Dim", "inputDataType", "weightDataType", "outputDataType",
             "noActivation"),
    "ConvolutionInputGenerator": ("ConvKernelDim", "IFMChannels", "IFMDim", "OFMDim", "Stride",
                                  "Dilation", "depthwise", "inputDataType", "is1D"),
    "Thresholding": ("NumChannels", "numSteps", "inputDataType", "outputDataType", "ActVal",
                     "numInputVectors"),
    "Pool": ("Channels", "KernelSize", "OutImgDims", "Function", "InputDataType",
             "OutputDataType"),
    "FMPadding": ("ImgDim", "Padding", "NumChannels", "inputDataType"),
    "ElementwiseMul": ("lhs_shape", "rhs_shape", "lhs_dtype", "out_dtype", "rhs_style"),
    "ElementwiseAdd": ("lhs_shape", "rhs_shape", "lhs_dtype", "out_dtype", "rhs_style"),
    "HWSoftmax": ("NumChannels", "ifm_dim"),
    "Reshape": ("inp_shape", "out_shape", "dtype"),
    "DuplicateStreams": ("NumChannels", "NumOutputStreams", "inputDataType"),
    "GlobalAccPool": ("NumChannels", "inputDataType", "numInputVectors"),
    "LabelSelect": ("Labels", "K", "inputDataType"),
}


def _lowered_models() -> list[dict]:
    index = json.loads(shared_path("models", "finn_hw", "index.json").read_text())
    return [m for m in index if m["ok"]]


def _generic_path(entry: dict, tmp: Path, stage: str = "generic") -> Path:
    return finn_hw_model(shared_path("models", "finn_hw", entry["name"]), stage, tmp)


def _signature(layers) -> Counter:
    sig = Counter()
    for l in layers:
        keys = KEYS.get(l.op_type)
        assert keys is not None, f"layer {l.name}: op {l.op_type} has no comparison keys"
        sig[(l.op_type,) + tuple((k, json.dumps(l.finn_attrs().get(k))) for k in keys)] += 1
    return sig


@pytest.mark.parametrize("entry", _lowered_models(), ids=lambda e: e["name"])
def test_lowering_matches_finn_plus(entry: dict, tmp_path: Path) -> None:
    ours = load_network(shared_path("models", entry["source_model"]), minimize_bit_width=False)
    finn = load_network(_generic_path(entry, tmp_path))
    assert ours.op_counts() == finn.op_counts()
    mine, theirs = _signature(ours.layers), _signature(finn.layers)
    assert mine == theirs, (
        f"only ours: {sorted(mine - theirs)}\nonly finn-plus: {sorted(theirs - mine)}"
    )


@pytest.mark.parametrize("source, reference", [("tfc_w1a1_finn.onnx", "tfc_w1a1"),
                                               ("cnv_w1a1_finn.onnx", "cnv_w1a1")])
def test_finn_onnx_input_matches_finn_plus(source: str, reference: str, tmp_path: Path) -> None:
    """FINN-ONNX (MultiThreshold form) lowers to the same HW layers as its QONNX source."""
    ours = load_network(shared_path("models", source), minimize_bit_width=False)
    finn = load_network(_generic_path({"name": reference}, tmp_path))
    assert _signature(ours.layers) == _signature(finn.layers)


FOLDING = {"PE", "SIMD", "ram_style", "resType", "mem_mode", "runtime_writeable_weights",
           "parallel_window", "depth_trigger_uram", "depth_trigger_bram", "ram_style_thresholds"}


def attribute_mismatches(ours, finn) -> list[str]:
    """Layer-by-layer differences (FINN's order and names) in every non-folding attribute."""
    out = []
    names = ours.finn_names()
    assert len(ours.layers) == len(finn.layers)
    for a, b in zip(ours.layers, finn.layers, strict=True):
        if a.op_type != b.op_type or names[a.name] != b.name:
            out.append(f"{a.name}/{names[a.name]} vs {b.name}")
            continue
        da, db = a.finn_attrs(), b.finn_attrs()
        diff = {k: (da[k], db[k]) for k in da.keys() & db.keys()
                if k not in FOLDING and da[k] != db[k]}
        if diff:
            out.append(f"{a.name}: {diff}")
    return out


@pytest.mark.parametrize("entry", _lowered_models(), ids=lambda e: e["name"])
def test_minimized_lowering_equals_finn_folded_graph(entry: dict, tmp_path: Path) -> None:
    """FINN's bit widths (weights, accumulators, last-layer output) and names, from our own
    weight values: every layer equals FINN's folded graph in every non-folding attribute."""
    ours = load_network(shared_path("models", entry["source_model"]))
    finn = load_network(_generic_path(entry, tmp_path, "folded"))
    assert attribute_mismatches(ours, finn) == []


def test_every_finn_plus_lowered_model_is_covered() -> None:
    names = {e["name"] for e in _lowered_models()}
    assert {"tfc_w1a1", "cnv_w1a1", "zoo_qkeras_jettagging_w6a6"} <= names
    assert len(names) == 7
