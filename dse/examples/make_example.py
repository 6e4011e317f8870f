"""Build the bundled example network ``cnv_small_w4a4.onnx`` (deterministic, seed 0).

A small CIFAR-10-shaped QONNX CNN with the structures dse must handle: an 8-bit input quantizer,
padded 3x3 convolutions with 4-bit weights and activations, max pooling, a residual block (fork
and join), a depthwise-separable block, average pooling with Trunc, and a classifier whose float
scale and bias stay in FINN's float tail. Weights are random: only structure, shapes and bit
widths mean anything.

    python -m dse.examples.make_example [OUT.onnx]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"


class _Builder:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count: dict[str, int] = {}

    def name(self, op: str) -> str:
        k = self.count.get(op, 0)
        self.count[op] = k + 1
        return f"{op}_{k}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        n = f"{prefix}_param{sum(1 for i in self.inits if i.name.startswith(prefix + '_'))}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        nm = self.name(op)
        out = f"{nm}_out0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=nm, domain=domain, **attrs))
        return out

    def quant(self, x: str, bits: int, signed: bool, scale: float | np.ndarray,
              narrow: bool = False) -> str:
        nm = f"Quant_{self.count.get('Quant', 0)}"
        ins = [x, self.const(nm, np.asarray(scale)), self.const(nm, np.array(0.0)),
               self.const(nm, np.array(float(bits)))]
        return self.node("Quant", ins, QONNX_DOMAIN, signed=int(signed), narrow=int(narrow),
                         rounding_mode="ROUND")

    def weight(self, shape: tuple[int, ...], bits: int) -> str:
        w = self.rng.standard_normal(shape).astype(np.float32) * 0.1
        nm = f"W_{self.count.get('W', 0)}"
        self.count["W"] = self.count.get("W", 0) + 1
        src = self.const(nm, w)
        per_channel = np.full((shape[0],) + (1,) * (len(shape) - 1), 0.05, dtype=np.float32)
        scale = per_channel if len(shape) == 4 else np.array(0.05, dtype=np.float32)
        return self.quant(src, bits, True, scale, narrow=True)

    def bn(self, x: str, c: int) -> str:
        nm = f"BatchNormalization_{self.count.get('BatchNormalization', 0)}"
        g = self.rng.uniform(0.5, 1.5, c)
        b = self.rng.uniform(-0.1, 0.1, c)
        m = self.rng.uniform(-0.1, 0.1, c)
        v = self.rng.uniform(0.5, 1.5, c)
        ins = [x] + [self.const(nm, t) for t in (g, b, m, v)]
        return self.node("BatchNormalization", ins, epsilon=1e-5)

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0,
             group: int = 1, bits: int = 4) -> str:
        w = self.weight((cout, cin // group, k, k), bits)
        return self.node("Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=group, dilations=[1, 1])

    def act(self, x: str, c: int) -> str:
        return self.quant(self.node("Relu", [self.bn(x, c)]), 4, False, 0.1)


def build(seed: int = 0) -> onnx.ModelProto:
    b = _Builder(seed)
    x = b.quant("global_in", 8, True, 1.0 / 128)
    x = b.act(b.conv(x, 3, 32, 3, pad=1, bits=8), 32)  # 32x32x32
    x = b.act(b.conv(x, 32, 32, 3, pad=1), 32)
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])  # 16x16x32
    # residual block
    y = b.act(b.conv(x, 32, 32, 3, pad=1), 32)
    y = b.quant(b.bn(b.conv(y, 32, 32, 3, pad=1), 32), 4, False, 0.1)
    x = b.quant(b.node("Relu", [b.node("Add", [x, y])]), 4, False, 0.1)
    x = b.act(b.conv(x, 32, 64, 3, stride=2, pad=1), 64)  # 8x8x64
    # depthwise-separable block
    x = b.act(b.conv(x, 64, 64, 3, pad=1, group=64), 64)
    x = b.act(b.conv(x, 64, 64, 1), 64)
    # average pooling + Trunc, classifier
    x = b.node("AveragePool", [x], kernel_shape=[8, 8], strides=[8, 8])
    nm = f"Trunc_{b.count.get('Trunc', 0)}"
    tr = [x] + [b.const(nm, np.array(v)) for v in (0.1, 0.0, 10.0, 1.0, 8.0)]
    x = b.node("Trunc", tr, QONNX_DOMAIN, rounding_mode="FLOOR", signed=0, narrow=0)
    x = b.node("Reshape", [x, b.const("Reshape_0", np.array([1, 64]))])
    w = b.weight((64, 10), 8)
    x = b.node("MatMul", [x, w])
    x = b.node("Mul", [x, b.const("Mul_out", np.array(0.01))])
    out = b.node("Add", [x, b.const("Add_out", b.rng.uniform(-0.1, 0.1, 10))])
    b.nodes[-1].output[0] = "global_out"
    for i in b.inits:
        if i.name.startswith("Reshape_0"):
            i.CopyFrom(numpy_helper.from_array(np.array([1, 64], dtype=np.int64), i.name))
    del out
    graph = helper.make_graph(
        b.nodes, "cnv_small_w4a4",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, 10])],
        initializer=b.inits,
    )
    model = helper.make_model(
        graph, producer_name="dse.examples.make_example",
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)],
    )
    model.ir_version = 8  # readable by every onnxruntime that qonnx supports
    return model


def build_resnet(blocks: tuple[int, ...] = (3, 4, 6, 3),
                 widths: tuple[int, ...] = (32, 64, 128, 256), seed: int = 0,
                 image: int = 32) -> onnx.ModelProto:
    """A CIFAR-style 4-bit ResNet (ResNet-34 block counts by default) for scale tests:
    identity shortcuts inside a stage, 1x1 stride-2 projection shortcuts between stages."""
    b = _Builder(seed)
    x = b.quant("global_in", 8, True, 1.0 / 128)
    c = widths[0]
    x = b.act(b.conv(x, 3, c, 3, pad=1, bits=8), c)
    size = image
    for stage, (n_blocks, w) in enumerate(zip(blocks, widths, strict=True)):
        for blk in range(n_blocks):
            stride = 2 if (stage > 0 and blk == 0) else 1
            y = b.act(b.conv(x, c, w, 3, stride=stride, pad=1), w)
            y = b.quant(b.bn(b.conv(y, w, w, 3, pad=1), w), 4, False, 0.1)
            if stride != 1 or c != w:
                sc = b.quant(b.bn(b.conv(x, c, w, 1, stride=stride), w), 4, False, 0.1)
            else:
                sc = x
            x = b.quant(b.node("Relu", [b.node("Add", [y, sc])]), 4, False, 0.1)
            c = w
            size //= stride
    return _head(b, x, c, size, "resnet_cifar_w4a4", image)


def _head(b: _Builder, x: str, c: int, size: int, name: str, image: int,
          classes: int = 10) -> onnx.ModelProto:
    """Average pooling, Trunc and the 8-bit classifier; the model around the nodes."""
    x = b.node("AveragePool", [x], kernel_shape=[size, size], strides=[size, size])
    nm = f"Trunc_{b.count.get('Trunc', 0)}"
    tr = [x] + [b.const(nm, np.array(v)) for v in (0.1, 0.0, 10.0, 1.0, 8.0)]
    x = b.node("Trunc", tr, QONNX_DOMAIN, rounding_mode="FLOOR", signed=0, narrow=0)
    x = b.node("Reshape", [x, b.const("Reshape_0", np.array([1, c]))])
    for i in b.inits:
        if i.name.startswith("Reshape_0"):
            i.CopyFrom(numpy_helper.from_array(np.array([1, c], dtype=np.int64), i.name))
    x = b.node("MatMul", [x, b.weight((c, classes), 8)])
    b.nodes[-1].output[0] = "global_out"
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 3, image, image])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, classes])],
        initializer=b.inits,
    )
    model = helper.make_model(graph, producer_name="dse.examples.make_example",
                              opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid(QONNX_DOMAIN, 1)])
    model.ir_version = 8
    return model


def build_bottleneck_resnet(blocks: tuple[int, ...] = (3, 4, 6, 3),
                            widths: tuple[int, ...] = (64, 128, 256, 512), expansion: int = 4,
                            seed: int = 0, image: int = 32) -> onnx.ModelProto:
    """A ResNet-50-class 4-bit network (bottleneck blocks 1x1 -> 3x3 -> 1x1 x ``expansion``,
    projection shortcuts where the shape changes), CIFAR-style stem; for scale benchmarks."""
    b = _Builder(seed)
    x = b.quant("global_in", 8, True, 1.0 / 128)
    c = widths[0]
    x = b.act(b.conv(x, 3, c, 3, pad=1, bits=8), c)
    size = image
    for stage, (n_blocks, w) in enumerate(zip(blocks, widths, strict=True)):
        for blk in range(n_blocks):
            stride = 2 if (stage > 0 and blk == 0) else 1
            out = w * expansion
            y = b.act(b.conv(x, c, w, 1), w)
            y = b.act(b.conv(y, w, w, 3, stride=stride, pad=1), w)
            y = b.quant(b.bn(b.conv(y, w, out, 1), out), 4, False, 0.1)
            sc = (b.quant(b.bn(b.conv(x, c, out, 1, stride=stride), out), 4, False, 0.1)
                  if stride != 1 or c != out else x)
            x = b.quant(b.node("Relu", [b.node("Add", [y, sc])]), 4, False, 0.1)
            c = out
            size //= stride
    return _head(b, x, c, size, "resnet50_class_w4a4", image)


def build_mbconv_net(stages: tuple[tuple[int, int, int, int], ...] = (
        (16, 1, 1, 1), (24, 2, 2, 3), (40, 3, 2, 3), (80, 4, 2, 6), (96, 4, 1, 6),
        (192, 4, 2, 6), (320, 1, 1, 6)), seed: int = 0, image: int = 224
                     ) -> onnx.ModelProto:
    """A ProxylessNAS/MobileNetV2-class 4-bit network at 224 x 224: per stage (channels,
    blocks, stride, expansion) inverted-residual blocks (1x1 expand, 3x3 depthwise, 1x1
    project, identity shortcut where the shape holds); for scale benchmarks."""
    b = _Builder(seed)
    x = b.quant("global_in", 8, True, 1.0 / 128)
    c = 32
    x = b.act(b.conv(x, 3, c, 3, stride=2, pad=1, bits=8), c)
    size = image // 2
    for out, n_blocks, stride0, t in stages:
        for blk in range(n_blocks):
            stride = stride0 if blk == 0 else 1
            h = c * t
            y = b.act(b.conv(x, c, h, 1), h) if t != 1 else x
            y = b.act(b.conv(y, h, h, 3, stride=stride, pad=1, group=h), h)
            y = b.quant(b.bn(b.conv(y, h, out, 1), out), 4, True, 0.1)
            if stride == 1 and c == out:
                y = b.quant(b.node("Add", [y, x]), 4, True, 0.1)
            x = y
            c = out
            size //= stride
    x = b.act(b.conv(x, c, 1280, 1), 1280)
    return _head(b, x, 1280, size, "mbconv_224_w4a4", image, classes=1000)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).with_name("cnv_small_w4a4.onnx")
    onnx.save(build(), str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
