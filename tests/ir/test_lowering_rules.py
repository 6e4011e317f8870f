"""Lowering rules that once dropped layers or refused networks FINN builds, the conservation of
nodes, and FINN-ONNX inputs equal to their QONNX twins (converted by finn-plus itself)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dse.api import example_model_path
from dse.examples.make_example import QONNX_DOMAIN, _Builder
from dse.exceptions import InternalError, UnsupportedLayerError
from dse.ir import load_network
from dse.ir.accounting import absorbed_nodes
from dse.ir.lower import read_model
from dse.ir.prepare import prepare
from tests.conftest import SHARED
from tests.networks import export_bnn_pynq, to_finn_onnx
from tests.ir.test_lowering import _save
from tests.ir.test_lowering_vs_finn import _signature


def _annotate(path: Path, tensor: str, dtype: str) -> None:
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(path))
    m.set_tensor_datatype(tensor, DataType[dtype])
    m.save(str(path))


def _accounted(path: Path) -> list[str]:
    """Names of the nodes of the prepared model that nothing accounts for."""
    g = load_network(path)
    m = prepare(read_model(path), str(path))
    seen = {s for l in g.layers for s in l.source_nodes + l.absorbed}
    seen |= {h.name for h in g.host_nodes}
    return [n.name for n in m.graph.node if n.name not in seen]


# --- conservation ------------------------------------------------------------------------------

def _loadable_models() -> list[Path]:
    paths = [Path(p) for p in sorted(glob.glob(str(SHARED / "models" / "*.onnx")))]
    return paths + [example_model_path()]


@pytest.mark.parametrize("path", _loadable_models(), ids=lambda p: p.name)
def test_every_node_is_accounted_for(path: Path) -> None:
    """Each node is a layer's source, absorbed into a named layer, or a host node."""
    assert _accounted(path) == []


def test_absorbed_nodes_name_their_layer() -> None:
    g = load_network(example_model_path())
    owner = {n: l.name for l in g.layers for n in l.absorbed}
    assert owner, "BatchNorm/ReLU/weight quantizers are absorbed somewhere"
    bn = [n for n in owner if n.startswith("BatchNormalization")]
    assert bn and all(owner[n].startswith(("MVAU", "VVAU", "Thresholding")) for n in bn)


def test_a_lost_node_is_an_internal_error() -> None:
    """The check is independent of the rules: a MaxPool no layer claims is reported."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="Relu_0"),
                           helper.make_node("MaxPool", ["r"], ["y"], name="MaxPool_0",
                                            kernel_shape=[2, 2], strides=[2, 2])],
                          "g", [x], [y])
    with pytest.raises(InternalError, match="MaxPool 'MaxPool_0'"):
        absorbed_nodes(g, [["Relu_0"]], [], [0])
    absorbed, host = absorbed_nodes(g, [["MaxPool_0"]], [], [0])
    assert absorbed == {0: ["Relu_0"]} and host == []


# --- the silent drop: MaxPool between a threshold's offset Add and the next Conv ---------------

def _finn_onnx_cnv_block(path: Path) -> Path:
    """FINN-ONNX as ConvertQONNXtoFINN writes signed activations: MultiThreshold(INT2), its
    offset Add and scale Mul, a MaxPool, then the next Conv (the scale moves past the pool
    and the Conv, so the pool was held back and, once, never emitted)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def init(name, arr, dtype=None):
        inits.append(onnx.numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    x = "global_in"
    c_in = 3
    for i, c in enumerate((8, 8)):
        w = init(f"W{i}", rng.integers(-2, 2, (c, c_in, 3, 3)))
        nodes.append(helper.make_node("Conv", [x, w], [f"c{i}"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1]))
        thr = init(f"T{i}", np.sort(rng.normal(size=(c, 3)), axis=1))
        nodes.append(helper.make_node("MultiThreshold", [f"c{i}", thr], [f"m{i}"],
                                      domain=QONNX_DOMAIN, out_dtype="INT2"))
        nodes.append(helper.make_node("Add", [f"m{i}", init(f"o{i}", -2.0)], [f"a{i}"]))
        nodes.append(helper.make_node("Mul", [f"a{i}", init(f"s{i}", 0.5)], [f"q{i}"]))
        nodes.append(helper.make_node("MaxPool", [f"q{i}"], [f"p{i}"], kernel_shape=[2, 2],
                                      strides=[2, 2]))
        x, c_in = f"p{i}", c
    nodes[-1].output[0] = "global_out"
    g = helper.make_graph(nodes, "cnv_block", [helper.make_tensor_value_info(
        "global_in", TensorProto.FLOAT, [1, 3, 16, 16])], [helper.make_tensor_value_info(
            "global_out", TensorProto.FLOAT, [1, 8, 4, 4])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 8
    onnx.save(m, str(path))
    _annotate(path, "global_in", "INT8")
    for i in range(2):
        _annotate(path, f"W{i}", "INT2")
    return path


def test_maxpool_after_threshold_offset_is_kept(tmp_path: Path) -> None:
    g = load_network(_finn_onnx_cnv_block(tmp_path / "blk.onnx"))
    ops = [l.op_type for l in g.layers]
    assert ops.count("Pool") == 2, ops
    # each pool sits between its MVAU and the next sliding window, as FINN places it
    i = ops.index("Pool")
    assert ops[i - 2:i + 2] == ["MVAU", "ConvolutionInputGenerator", "Pool", "FMPadding"]
    pool = g.layers[i]
    assert pool.attrs["Function"] == "MaxPool" and pool.attrs["InputDataType"] == "INT2"
    assert "MaxPool_0" in pool.source_nodes
    mvau = g.layers[i - 2]
    assert mvau.attrs["ActVal"] == -2 and mvau.attrs["outputDataType"] == "INT2"


# --- refusals of networks FINN builds ---------------------------------------------------------

def test_mlp_with_input_offset_scaling_loads(tmp_path: Path) -> None:
    """UNSW-NB15 style: a BIPOLAR-annotated input shifted to {0, 1} by Add/Mul before the first
    Gemm; FINN moves the scalar ops past the MatMul and maps it."""
    b = _Builder(0)
    x = b.node("Add", ["global_in", b.const("Add_0", np.array(1.0))])
    x = b.node("Mul", [x, b.const("Mul_0", np.array(0.5))])
    for i, (k, n) in enumerate([(600, 64), (64, 64), (64, 1)]):
        x = b.node("MatMul", [x, b.weight((k, n), 2)])
        if i < 2:
            x = b.quant(b.node("Relu", [b.bn(x, n)]), 2, False, 0.1)
    p = _save(b, x, tmp_path / "unsw.onnx", [1, 600], [1, 1])
    _annotate(p, "global_in", "BIPOLAR")
    g = load_network(p)
    assert [l.op_type for l in g.layers] == ["MVAU", "MVAU", "MVAU"]
    first = g.layers[0]
    assert (first.attrs["MW"], first.attrs["inputDataType"]) == (600, "BIPOLAR")
    assert {"Add_0", "Mul_0"} <= set(first.absorbed)  # into its thresholds


def test_input_offset_moves_past_a_matmul_into_the_float_tail(tmp_path: Path) -> None:
    """No threshold to absorb it: the offset becomes a per-channel bias after the MVAU."""
    b = _Builder(0)
    x = b.node("Add", ["global_in", b.const("Add_0", np.array(1.0))])
    x = b.node("MatMul", [x, b.weight((16, 4), 2)])
    p = _save(b, x, tmp_path / "one.onnx", [1, 16], [1, 4])
    _annotate(p, "global_in", "BIPOLAR")
    g = load_network(p)
    assert [l.op_type for l in g.layers] == ["MVAU", "ElementwiseMul", "ElementwiseAdd"]
    assert list(g.layers[-1].attrs["rhs_shape"]) == [4]  # one bias per output channel


def _stem(path: Path, signed: bool) -> Path:
    b = _Builder(0)
    x = b.quant("global_in", 8, True, 1.0 / 128)
    x = b.bn(b.conv(x, 3, 16, 7, stride=2, pad=3, bits=8), 16)
    x = b.quant(b.node("Relu", [x]) if not signed else x, 4, signed, 0.1)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = b.act(b.conv(x, 16, 16, 3, pad=1), 16)
    return _save(b, x, path, [1, 3, 32, 32], [1, 16, 8, 8])


def test_padded_maxpool_lowers_to_padding_window_and_pool(tmp_path: Path) -> None:
    g = load_network(_stem(tmp_path / "stem.onnx", signed=False))
    ops = [l.op_type for l in g.layers]
    i = ops.index("Pool")
    assert ops[i - 2:i + 1] == ["FMPadding", "ConvolutionInputGenerator", "Pool"]
    pad, swg, pool = g.layers[i - 2:i + 1]
    assert list(pad.attrs["ImgDim"]) == [16, 16] and list(pad.attrs["Padding"]) == [1, 1, 1, 1]
    assert list(swg.attrs["IFMDim"]) == [18, 18] and swg.attrs["depthwise"] == 1
    assert list(pool.attrs["OutImgDims"]) == [8, 8]


def test_padded_maxpool_of_signed_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedLayerError, match="padded max pooling of signed INT4"):
        load_network(_stem(tmp_path / "stem_s.onnx", signed=True))


def test_quant_avg_pool_2d(tmp_path: Path) -> None:
    """FINN-ONNX average pooling: Pool(QuantAvgPool) with qonnx's accumulator and shift."""
    b = _Builder(0)
    x = b.act(b.conv(b.quant("global_in", 8, True, 1.0 / 128), 3, 32, 3, pad=1, bits=8), 32)
    x = b.node("QuantAvgPool2d", [x], QONNX_DOMAIN, kernel=4, stride=4, ibits=4, obits=6,
               signed=0, data_layout="NCHW")
    p = _save(b, x, tmp_path / "qap.onnx", [1, 3, 8, 8], [1, 32, 2, 2])
    pool = [l for l in load_network(p).layers if l.op_type == "Pool"][0]
    assert pool.attrs["Function"] == "QuantAvgPool"
    # QuantAvgPool2d.get_accum_size(): bit length of 15 * 16 = 240 -> 8; shifts 8 - 6 = 2
    assert (pool.attrs["AccumBits"], pool.attrs["Size"], pool.attrs["OutputDataType"]) == (
        8, 2, "UINT6")


# --- FINN-ONNX twins converted by finn-plus, on networks we export ourselves -----------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bnn_pynq")


@pytest.mark.parametrize("qonnx, twin", [("tfc_w1a1.onnx", "tfc_w1a1_finn.onnx"),
                                         ("cnv_w1a1.onnx", "cnv_w1a1_finn.onnx")])
def test_shared_finn_onnx_pairs_equal_with_minimized_bit_widths(qonnx: str, twin: str) -> None:
    """FINN-ONNX files (integer weights with annotations) minimize like their QONNX source."""
    ours, theirs = load_network(SHARED / "models" / qonnx), load_network(SHARED / "models" / twin)
    assert [l.finn_attrs() for l in ours.layers] == [l.finn_attrs() for l in theirs.layers]


@pytest.mark.finn
@pytest.mark.parametrize("name", ["cnv_2w2a", "cnv_1w2a", "lfc_1w2a", "mobilenetv1_w4a4"])
def test_finn_onnx_twin_equals_qonnx(name: str, exported: Path, finn_env: Path) -> None:
    """The refusal of MobileNetV1 in FINN-ONNX form (QuantAvgPool2d) is gone too."""
    if name.startswith("mobilenet"):
        qonnx = exported / f"{name}.onnx"
        qonnx.write_bytes((SHARED / "models" / f"{name}.onnx").read_bytes())
    else:
        qonnx = export_bnn_pynq(name, exported)
    twin = to_finn_onnx(finn_env, qonnx)
    ours, theirs = load_network(qonnx), load_network(twin)
    assert ours.op_counts() == theirs.op_counts()
    assert _signature(ours.layers) == _signature(theirs.layers)
    assert [l.finn_attrs() for l in ours.layers] == [l.finn_attrs() for l in theirs.layers]
    assert _accounted(twin) == [] and _accounted(qonnx) == []
    if name.startswith("cnv"):
        assert ours.op_counts()["Pool"] == 2


@pytest.mark.finn
@pytest.mark.parametrize("name", ["cnv_1w2a", "lfc_1w2a", "cnv_2w2a"])
def test_bit_widths_and_costs_equal_finns_own_build(name: str, exported: Path,
                                                   finn_env: Path) -> None:
    """On networks the shared set lacks (binary weights with 2-bit activations among them),
    our lowering equals finn-plus's folded graph after its minimize_bit_width in every
    non-folding attribute and name, and at FINN's folding our totals equal FINN's report."""
    import json

    from dse.models import estimate
    from tests.networks import finn_estimate
    from tests.ir.test_lowering_vs_finn import FOLDING, attribute_mismatches

    qonnx = export_bnn_pynq(name, exported)
    folded, report = finn_estimate(finn_env, qonnx, 5000)
    ours, finn = load_network(qonnx), load_network(folded)
    assert attribute_mismatches(ours, finn) == []
    lut = bram = 0.0
    for a, b in zip(ours.layers, finn.layers, strict=True):
        fold = {k: v for k, v in b.finn_attrs().items() if k in FOLDING}
        c = estimate(b.specialized_op_type, {**a.finn_attrs(), **fold}, "xcu55c-fsvh2892-2L-e")
        lut, bram = lut + c.lut, bram + c.bram18
    total = json.loads((report / "estimate_layer_resources.json").read_text())["total"]
    assert (lut, bram) == (pytest.approx(total["LUT"]), total["BRAM_18K"])


@pytest.mark.parametrize("on", ["activations", "weights"])
def test_minifloat_quantizers_lower_to_minifloat_operands(on: str, tmp_path: Path) -> None:
    """An FP8 model (qonnx FloatQuant, E4M3 bias 7 clamped at 240) lowers to an MVAU with a
    minifloat operand (dse's own model; tests/models/test_minifloat.py checks the values)."""
    b = _Builder(0)

    def fq(x: str) -> str:
        ins = [x] + [b.const("FloatQuant_0", np.array(v)) for v in (1.0, 4.0, 3.0, 7.0, 240.0)]
        return b.node("FloatQuant", ins, QONNX_DOMAIN)

    x = "global_in"
    if on == "activations":
        x = b.node("MatMul", [fq(x), b.weight((16, 4), 4)])
    else:
        w = b.const("W_fp8", np.random.default_rng(0).standard_normal((16, 4)))
        x = b.node("MatMul", [b.quant(x, 8, True, 0.1), fq(w)])
    p = _save(b, x, tmp_path / "fp8.onnx", [1, 16], [1, 4])
    mvau = [ly for ly in load_network(p).layers if ly.op_type == "MVAU"]
    key = "inputDataType" if on == "activations" else "weightDataType"
    assert len(mvau) == 1 and mvau[0].attrs[key] == "FP<4,3,7,max=240>"
    assert mvau[0].cost().source == "dse model"


@pytest.mark.parametrize("thresholds, in_type, expected", [
    (np.arange(15) + 0.5, "UINT5", "UINT4"),        # a residual sum requantized to 4 bits
    (np.arange(255) + 0.5, "UINT8", "UINT8"),       # an 8-bit image requantized to 8 bits
    (np.arange(-3.5, 4.0), "INT8", "INT4"),         # signed input: signed thresholds
    (np.array([1.0, 2.0]), "INT8", "INT3"),         # ... even when they are all positive
    (np.array([20.0, 40.0]), "UINT4", "UINT5"),     # clipped to max + 1 of the input
    (np.zeros(3), "UINT4", "UINT1"),
    (np.zeros(3), "INT4", "INT2"),
    (np.array([np.nan]), "UINT4", None),
])
def test_threshold_type_follows_finns_rounding_and_minimization(thresholds, in_type,
                                                                expected) -> None:
    """RoundAndClipThresholds (ceil, clip to [min, max + 1]) then
    Thresholding.minimize_weight_bit_width (finn-plus 1.6.1)."""
    from dse.ir.bitwidth import threshold_type

    assert threshold_type(thresholds, in_type) == expected


def test_external_weights_take_the_worst_case_accumulator() -> None:
    """MVAU options with weights streamed from memory: FINN's minimize_accumulator_width
    sizes the accumulator from the weight type, not the values (MobileNetV1's first conv:
    27 x UINT8 inputs x INT8 weights -> INT21 where its values give INT20)."""
    from dse.models import estimate
    from dse.models.candidates import enumerate_options

    attrs = {"MW": 27, "MH": 32, "numInputVectors": [1, 111, 111], "inputDataType": "UINT8",
             "weightDataType": "INT8", "accDataType": "INT20", "outputDataType": "UINT4",
             "noActivation": 0, "ActVal": 0, "mem_mode": "internal_decoupled"}
    opts = enumerate_options("MVAU_hls", attrs, part="xcu55c-fsvh2892-2L-e")
    ext = [o for o in opts if o.attrs.get("mem_mode") == "external"]
    inner = [o for o in opts if o.attrs.get("mem_mode") != "external"]
    assert ext and inner
    for o, acc in [(ext[0], "INT21"), (inner[0], "INT20")]:
        c = estimate("MVAU_hls", {**attrs, **o.attrs, "accDataType": acc},
                     "xcu55c-fsvh2892-2L-e")
        assert (c.cycles, c.lut, c.bram18, c.dsp) == (o.cost.cycles, o.cost.lut,
                                                      o.cost.bram18, o.cost.dsp)
