"""Minifloat networks (qonnx FloatQuant from brevitas' OCP quantizers): the format identities,
the MAC datapath widths, loading/planning the exports, and dse's interpretation of every
FloatQuant against qonnx's own execution of the exported network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.models import estimate
from dse.models.minifloat import datapath, integer_view_lut
from dse.models.minifloat_type import NAMED, MinifloatType, parse
from tests.minifloat_networks import export

E4M3, E5M2, E2M1, E3M2 = (parse(NAMED[k]) for k in ("fp8e4m3", "fp8e5m2", "fp4", "fp6"))


# -- the formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("t, bits, top_usable", [(E4M3, 19, True), (E2M1, 5, True),
                                                 (E3M2, 10, True), (E5M2, 33, False)])
def test_minifloat_is_an_integer_of_2E_plus_M_bits(t: MinifloatType, bits: int,
                                                   top_usable: bool) -> None:
    assert t.integer_bits == bits
    assert t.integer_bits == 2**t.exponent_bits + t.mantissa_bits - (0 if top_usable else 1)
    # every value is an integer number of subnormal units, and the largest needs every bit
    lv = t.levels()
    assert np.all(lv == np.round(lv)) and int(lv.max()).bit_length() == bits - 1


def test_ocp_largest_values_and_level_counts() -> None:
    # OCP 8-bit FP spec v1.0: E4M3 max 448, E5M2 max 57344; OCP MX v1.0: FP6 E3M2 28, FP4 E2M1 6
    assert (E4M3.max_value, E5M2.max_value, E3M2.max_value, E2M1.max_value) == (448, 57344, 28, 6)
    # finite codes, +0/-0 once: E4M3 256 - 2 NaN - 1; E2M1 16 - 1; E3M2 64 - 1
    assert (len(E4M3.levels()), len(E2M1.levels()), len(E3M2.levels())) == (253, 15, 63)
    assert (E4M3.bitwidth(), E2M1.bitwidth(), E3M2.bitwidth()) == (8, 4, 6)


@pytest.mark.parametrize("t", [E4M3, E5M2, E2M1, E3M2])
def test_levels_are_exactly_qonnx_float_quant_fixed_points(t: MinifloatType) -> None:
    from qonnx.custom_op.general.floatquant import float_quant

    vals = (t.levels() * t.unit).astype(np.float32)
    q = float_quant(vals.copy(), np.float32(1.0), t.exponent_bits, t.mantissa_bits, t.bias,
                    True, np.float32(t.max_value))
    assert np.array_equal(q, vals)
    x = np.random.default_rng(0).normal(0, t.max_value / 4, 4000).astype(np.float32)
    qx = float_quant(x, np.float32(1.0), t.exponent_bits, t.mantissa_bits, t.bias, True,
                     np.float32(t.max_value))
    assert np.isin(np.round(qx.astype(np.float64) / t.unit), t.levels()).all()


# -- the MAC datapath -------------------------------------------------------------------------

def test_datapath_widths() -> None:
    d = datapath(E4M3.name, E4M3.name, simd=16, fan_in=256)
    assert d.mantissa_product_bits == 8  # (3 + 1) x (3 + 1)
    assert d.exponent_sum_bits == 5
    assert d.product_bits == 2 * 19 - 1  # two's complement product of two 19-bit integers
    assert d.tree_bits == d.product_bits + 4  # + ceil(log2 16)
    assert d.acc_bits == d.product_bits + 8  # + ceil(log2 256)
    assert d.shift_stages == 5  # shifts 0 .. 2 * (15 - 1) = 28
    d4 = datapath(E2M1.name, E2M1.name, simd=3, fan_in=9)
    assert (d4.mantissa_product_bits, d4.product_bits, d4.tree_bits, d4.acc_bits) == (4, 9, 11, 13)
    mixed = datapath(E2M1.name, E4M3.name, simd=1, fan_in=1)  # W4A8: 5 + 19 - 1
    assert mixed.product_bits == 23 and mixed.tree_bits == 23
    assert datapath("INT4", E4M3.name, simd=1, fan_in=1).product_bits == 4 + 19 - 1


def test_minifloat_mvau_is_dse_model_and_integer_layers_are_untouched() -> None:
    base = {"MW": 64, "MH": 32, "PE": 4, "SIMD": 8, "noActivation": 1,
            "accDataType": "INT32", "outputDataType": "INT32"}
    ints = estimate("MVAU", {**base, "inputDataType": "INT8", "weightDataType": "INT8"})
    assert ints.source == "FINN estimate"
    mf = estimate("MVAU", {**base, "inputDataType": E4M3.name, "weightDataType": E4M3.name})
    assert mf.source == "dse model" and mf.op_type == "MVAU_hls"
    assert mf.cycles == ints.cycles and mf.bram18 == ints.bram18  # same folding, same 8 bits
    assert mf.lut > ints.lut  # the shift, decode and 37-bit adders cost more than 8x8
    fp4 = estimate("MVAU", {**base, "inputDataType": E2M1.name, "weightDataType": E2M1.name})
    assert fp4.lut < mf.lut
    # the integer view (19-bit integers in FINN's own model) is a much larger upper check
    from dse.models import normalize_attrs

    a = normalize_attrs("MVAU", {**base, "inputDataType": E4M3.name,
                                 "weightDataType": E4M3.name})
    assert integer_view_lut("MVAU", a) > mf.lut
    dsp = estimate("MVAU", {**base, "inputDataType": E4M3.name, "weightDataType": E4M3.name,
                            "resType": "dsp"})
    assert dsp.dsp == 4 * 8 and dsp.lut < mf.lut  # one DSP per lane for the mantissa product


# -- exported networks ------------------------------------------------------------------------

CASES = [("mlp", "fp8", False), ("mlp", "fp8", True), ("mlp", "fp4w_fp6a", False),
         ("mlp", "fp8_perchannel", True), ("cnn", "fp8", False), ("cnn", "fp4w_fp6a", True),
         ("bert", "fp8", False), ("bert", "fp4w_fp6a", True)]


@pytest.fixture(scope="module")
def net_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("minifloat_nets")


def _lowered(path: Path):
    from dse.ir.lower import read_model
    from dse.ir.lowering import Lowering
    from dse.ir.prepare import prepare

    model = prepare(read_model(path), str(path))
    lw = Lowering(model, name=path.stem, input_dtype=None)
    return model, lw, lw.run(str(path), "")


@pytest.mark.parametrize("kind, fmt, dynamo", CASES)
def test_qonnx_execution_equals_dse_interpretation(kind: str, fmt: str, dynamo: bool,
                                                   net_dir: Path) -> None:
    """Every FloatQuant of the exported network, executed by qonnx on random inputs, equals
    dse's reading of it: weights = dse's integers x scale, bit for bit; activations = the level
    of the code dse's thresholds give (what the minifloat consumer decodes)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from dse.ir.lowering.minifloat import float_format, level_thresholds

    path = export(kind, fmt, net_dir, dynamo=dynamo)
    model, lw, g = _lowered(path)
    mfs = [ly for ly in g.layers if ly.op_type in ("MVAU", "VVAU")
           and "FP<" in str(ly.attrs["weightDataType"])]
    assert mfs and all(ly.cost().source == "dse model" for ly in mfs)
    from qonnx.transformation.infer_shapes import InferShapes

    # the exported file itself, as qonnx executes it (after its shape inference)
    mw = ModelWrapper(str(path)).transform(InferShapes())
    inputs = [i for i in mw.graph.input if mw.get_initializer(i.name) is None]
    rng = np.random.default_rng(3)
    feed = {i.name: rng.normal(size=mw.get_tensor_shape(i.name)).astype(np.float32)
            for i in inputs}
    ctx = execute_onnx(mw, feed, return_full_exec_context=True)
    n_w = n_a = 0
    for node in model.graph.node:  # the nodes dse lowered (tensor names as exported)
        if node.op_type != "FloatQuant":
            continue
        q = ctx[node.output[0]]
        c = lw.consts.get(node.output[0])
        if c is not None:  # weights: integers in subnormal units x (scale x unit)
            mine = (c.ints * np.asarray(c.scale, dtype=np.float64)).astype(np.float32)
            assert np.array_equal(mine, q), node.name
            n_w += 1
            continue
        fmt = float_format(lw, node)
        scale = np.asarray(lw.const(node.input[1]).value, dtype=np.float64)
        thr = np.stack([np.broadcast_to(t, ()) if np.ndim(t) == 0 else t
                        for t in level_thresholds(fmt, scale)], axis=-1)
        x = ctx[node.input[0]].astype(np.float64)
        code = (x[..., None] >= thr).sum(axis=-1)  # FINN Thresholding: thresholds crossed
        decoded = fmt.levels()[code] * fmt.unit * scale  # the consumer's per-lane decode
        assert np.array_equal(decoded.astype(np.float32), q), node.name
        n_a += 1
    assert n_w >= 2 and n_a >= 1


def test_minifloat_networks_optimize_and_emit_a_plan(net_dir: Path, tmp_path: Path) -> None:
    for kind, fmt, dyn in (("mlp", "fp8", False), ("cnn", "fp4w_fp6a", True)):
        model = export(kind, fmt, net_dir, dynamo=dyn)
        out = tmp_path / f"{kind}_{fmt}"
        r = subprocess.run([sys.executable, "-m", "dse", "optimize", "--model", str(model),
                            "--boards", "1", "--board", "ZCU104", "--time-limit", "20",
                            "--out", str(out), "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        plan = json.loads((out / "plan.json").read_text())
        layers = plan["payload"]["layers"]  # the solver's record (docs/plan-format.md)
        compute = [ly for ly in layers if ly["op_type"] in ("MVAU", "VVAU")]
        assert compute and all(ly["cost_source"] == "dse model" for ly in compute)
        assert plan["metrics"]["frames_per_s"] > 0
        from dse.backends.finn.steps import _check_buildable
        from dse.exceptions import BackendError
        from dse.plan import PartitionPlan

        with pytest.raises(BackendError, match="no minifloat MVAU/VVAU"):
            _check_buildable(PartitionPlan.load(out / "plan.json"))  # dse emit refuses


@pytest.mark.parametrize("fmt", ["fp8", "fp4w_fp6a", "fp8_perchannel"])
def test_mlp_integer_datapath_reproduces_qonnx(fmt: str, net_dir: Path) -> None:
    """The whole MLP run the way dse's layers compute it (threshold codes decoded to integers in
    subnormal units, integer dot products with the integer weights, one float scale per output
    channel, bias and ReLU before the next quantizer's thresholds) equals qonnx's execution."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from dse.ir.lowering.minifloat import float_format, level_thresholds

    path = export("mlp", fmt, net_dir)
    model, lw, _ = _lowered(path)
    orig = ModelWrapper(str(path)).transform(InferShapes())
    x = np.random.default_rng(5).normal(size=(64, 16)).astype(np.float32)
    want = np.concatenate([execute_onnx(orig, {orig.graph.input[0].name: x[i:i + 1]})[
        orig.graph.output[0].name] for i in range(len(x))])
    h: np.ndarray = x.astype(np.float64)
    codes_unit: tuple[np.ndarray, float] | None = None
    for node in model.graph.node:
        if node.op_type == "FloatQuant" and lw.consts.get(node.output[0]) is None:
            fmt_ = float_format(lw, node)
            scale = float(np.asarray(lw.const(node.input[1]).value).reshape(-1)[0])
            thr = np.asarray(level_thresholds(fmt_, scale), dtype=np.float64)
            code = (h[..., None] >= thr).sum(axis=-1)
            codes_unit = (fmt_.levels()[code], fmt_.unit * scale)  # integers, their unit
        elif node.op_type == "Gemm":
            w = lw.consts[node.input[1]]
            ints, unit = codes_unit
            acc = ints.astype(np.int64) @ w.ints.astype(np.int64).T  # exact integers
            sw = np.asarray(w.scale, dtype=np.float64).reshape(-1)
            bias = np.asarray(lw.const(node.input[2]).value, dtype=np.float64)
            h = acc * unit * sw + bias
        elif node.op_type == "Relu":
            h = np.maximum(h, 0)
    assert np.allclose(h, want, rtol=1e-5, atol=1e-5)
