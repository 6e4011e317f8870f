"""Minifloat test networks we export ourselves: brevitas' OCP quantizers (FP8 E4M3, and FP4 E2M1 /
FP6 E3M2 through brevitas' Fp*Mixin + FpOCP* classes), seeded random weights, nothing
downloaded, through ``export_qonnx`` with the TorchScript or the dynamo exporter."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

KINDS = ("mlp", "cnn", "bert")
FORMATS = ("fp8", "fp4w_fp6a", "fp8_perchannel")


def quantizers(fmt: str):
    """(weight quantizer, activation quantizer) classes of brevitas 0.13 for ``fmt``."""
    from brevitas.quant.float_base import Fp4e2m1Mixin, Fp6e3m2Mixin
    from brevitas.quant.float_quant_ocp import (
        Fp8e4m3OCPActPerTensorFloat,
        Fp8e4m3OCPWeightPerChannelFloat,
        Fp8e4m3OCPWeightPerTensorFloat,
        FpOCPActPerTensorFloat,
        FpOCPWeightPerChannelFloat,
    )

    if fmt == "fp8":
        return Fp8e4m3OCPWeightPerTensorFloat, Fp8e4m3OCPActPerTensorFloat
    if fmt == "fp8_perchannel":
        return Fp8e4m3OCPWeightPerChannelFloat, Fp8e4m3OCPActPerTensorFloat

    class W4(Fp4e2m1Mixin, FpOCPWeightPerChannelFloat):
        """OCP FP4 E2M1 weights, per output channel."""

    class A6(Fp6e3m2Mixin, FpOCPActPerTensorFloat):
        """OCP FP6 E3M2 activations, per tensor."""

    if fmt == "fp4w_fp6a":
        return W4, A6
    return _by_bits(fmt)


def _by_bits(fmt: str):
    """``int<b>``: brevitas' Int8*PerTensorFloat at b bits; ``e<E>m<M>``: an FpOCP minifloat
    of 1 + E + M bits (IEEE bias 2^(E-1) - 1; OCP: no inf/NaN codes below 8 bits)."""
    import re

    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
    from brevitas.quant.float_quant_ocp import FpOCPActPerTensorFloat, FpOCPWeightPerTensorFloat

    m = re.fullmatch(r"int(\d)", fmt)
    if m:
        b = int(m.group(1))
        return (type(f"W{b}", (Int8WeightPerTensorFloat,), {"bit_width": b}),
                type(f"A{b}", (Int8ActPerTensorFloat,), {"bit_width": b}))
    m = re.fullmatch(r"e(\d)m(\d)", fmt)
    if not m:
        raise ValueError(fmt)
    E, M = int(m.group(1)), int(m.group(2))
    em = {"bit_width": 1 + E + M, "exponent_bit_width": E, "mantissa_bit_width": M}
    return (type(f"WE{E}M{M}", (FpOCPWeightPerTensorFloat,), dict(em)),
            type(f"AE{E}M{M}", (FpOCPActPerTensorFloat,), dict(em)))


def _mlp(torch, wq, aq):
    import brevitas.nn as qnn

    return torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantLinear(16, 32, bias=True, weight_quant=wq),
        torch.nn.ReLU(),
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantLinear(32, 32, bias=True, weight_quant=wq),
        torch.nn.ReLU(),
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantLinear(32, 10, bias=True, weight_quant=wq)), (1, 16)


def _cnn(torch, wq, aq):
    import brevitas.nn as qnn

    return torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantConv2d(3, 8, 3, padding=1, bias=False, weight_quant=wq),
        torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantConv2d(8, 8, 3, groups=8, padding=1, bias=False, weight_quant=wq),  # depthwise
        torch.nn.ReLU(),
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        qnn.QuantConv2d(8, 16, 3, stride=2, bias=False, weight_quant=wq),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(16 * 3 * 3, 10, bias=True, weight_quant=wq)), (1, 3, 16, 16)


def _bert(torch, wq, aq):
    from brevitas.graph.quantize import LAYERWISE_COMPUTE_LAYER_MAP, layerwise_quantize

    from tests.networks import _trained_looking, transformer_block

    model, (x,) = transformer_block("bert")
    _trained_looking(torch, model)
    lin_cls, kw = LAYERWISE_COMPUTE_LAYER_MAP[torch.nn.Linear]
    layer_map = {**LAYERWISE_COMPUTE_LAYER_MAP,
                 torch.nn.Linear: (lin_cls, {**kw, "weight_quant": wq, "input_quant": aq,
                                            "bias_quant": None})}  # Int32Bias needs int inputs
    return layerwise_quantize(model.eval(), compute_layer_map=layer_map), x


def build(kind: str, fmt: str):
    """(quantized module, example input) of a tiny ``kind`` network in ``fmt``, seed 0."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    torch.manual_seed(0)
    wq, aq = quantizers(fmt)
    if kind == "bert":
        return _bert(torch, wq, aq)
    model, shape = {"mlp": _mlp, "cnn": _cnn}[kind](torch, wq, aq)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # BatchNorm statistics as a trained network has them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    model.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        model(x)
    return model, x


def export(kind: str, fmt: str, out_dir: Path, *, dynamo: bool = False) -> Path:
    """QONNX export of ``kind`` in ``fmt`` (cached in ``out_dir``)."""
    path = out_dir / f"mf_{kind}_{fmt}_{'dynamo' if dynamo else 'ts'}.onnx"
    return _export(lambda: build(kind, fmt), path, dynamo)


def _export(make, path: Path, dynamo: bool) -> Path:
    """``export_qonnx`` of the (module, input) ``make()`` builds, unless ``path`` exists."""
    torch = pytest.importorskip("torch")
    from brevitas.export import export_qonnx

    if path.exists():
        return path
    model, x = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            export_qonnx(model, x, str(path), dynamo=dynamo)
    return path


# -- rotated networks: an online Hadamard rotation before a quantized projection -----------------

def fwht(torch, x):
    """A hand-written fast Walsh-Hadamard transform over the last axis (butterfly stages)."""
    n = x.shape[-1]
    h = 1
    while h < n:
        y = x.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        x = torch.stack((a + b, a - b), dim=-2).reshape(*x.shape[:-1], n)
        h *= 2
    return x


def hadamard_matrix(n: int):
    import numpy as np

    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def build_rotated(form: str, n: int = 32, fmt: str | None = None):
    """(module, input) of QuantIdentity -> rotation -> QuantIdentity -> QuantLinear(n, 16),
    the rotation as a hand-written FWHT (``form='fwht'``) or a MatMul by the Hadamard matrix
    (``form='matmul'``), scaled by 1/sqrt(n); int8 quantizers, or minifloat ``fmt``."""
    torch = pytest.importorskip("torch")
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat

    wq, aq = (Int8WeightPerTensorFloat, Int8ActPerTensorFloat) if fmt is None else quantizers(fmt)
    H = torch.tensor(hadamard_matrix(n), dtype=torch.float32) / n ** 0.5

    class Rotated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_in = qnn.QuantIdentity(act_quant=aq, return_quant_tensor=False)
            self.q_rot = qnn.QuantIdentity(act_quant=aq, return_quant_tensor=True)
            self.proj = qnn.QuantLinear(n, 16, bias=False, weight_quant=wq)
            self.register_buffer("H", H)

        def forward(self, x):
            x = self.q_in(x)
            x = fwht(torch, x) / n ** 0.5 if form == "fwht" else x @ self.H
            return self.proj(self.q_rot(x))

    torch.manual_seed(0)
    m = Rotated().eval()
    x = torch.randn(1, 4, n)
    with torch.no_grad():
        m(x)
    return m, x


def export_rotated(form: str, out_dir: Path, *, dynamo: bool = False, n: int = 32) -> Path:
    path = out_dir / f"rot_{form}_{n}_{'dynamo' if dynamo else 'ts'}.onnx"
    return _export(lambda: build_rotated(form, n), path, dynamo)


def export_rotated_bert(out_dir: Path, *, dynamo: bool = False, form: str = "fwht") -> Path:
    """The tiny BERT block (int8 layerwise_quantize), its FFN output projection's input rotated
    online (quantized, then a Hadamard of the intermediate size 64, as QuaRot/SpinQuant's R4)."""
    torch = pytest.importorskip("torch")
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.graph.quantize import layerwise_quantize
    from brevitas.quant import Int8ActPerTensorFloat

    from tests.networks import _trained_looking, transformer_block

    path = out_dir / f"rot_bert_{form}_{'dynamo' if dynamo else 'ts'}.onnx"
    if path.exists():
        return path
    model, (x,) = transformer_block("bert")
    _trained_looking(torch, model)
    model = layerwise_quantize(model.eval())
    dense = model.layer.output.dense
    n = dense.in_features
    H = torch.tensor(hadamard_matrix(n), dtype=torch.float32) / n ** 0.5

    class RotatedInput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat,
                                       return_quant_tensor=False)
            self.dense = dense
            self.register_buffer("H", H)

        def forward(self, h):
            h = self.q(h)
            return self.dense(fwht(torch, h) / n ** 0.5 if form == "fwht" else h @ self.H)

    model.layer.output.dense = RotatedInput()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            model(x)
            export_qonnx(model.eval(), x, str(path), dynamo=dynamo)
    return path
