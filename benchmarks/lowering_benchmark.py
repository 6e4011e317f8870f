"""Lowering time vs network size: ``load_network`` on generated QONNX networks of 25 .. 1,000+
HW layers and on a ProxylessNAS-class network (MBConv blocks, 224x224), median of repeats.

Side by side in the same run, the preparation dse used before (qonnx ``cleanup_model`` +
``InferShapes`` + ``InferDataTypes`` through ``ModelWrapper.transform``) is timed on the
smaller networks, so the ratio is measured, not quoted. Writes results/lowering_benchmark.csv.

    python benchmarks/lowering_benchmark.py [--repeats 3] [--old-max-layers 200]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from dse.examples.make_example import QONNX_DOMAIN, _Builder  # noqa: E402
from dse.ir import load_network  # noqa: E402


class _FastBuilder(_Builder):
    """The example builder with O(1) parameter naming (its own is quadratic)."""

    def const(self, prefix: str, value: np.ndarray) -> str:
        self.count["#"] = self.count.get("#", 0) + 1
        n = f"{prefix}_param{self.count['#']}"
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n


def _model(b: _Builder, x: str, in_shape: list[int], out_c: int, name: str) -> onnx.ModelProto:
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [b.quant(x, 8, False, 0.1)])
    x = b.node("MatMul", [x, b.weight((out_c, 10), 8)])
    b.nodes[-1].output[0] = "global_out"
    g = helper.make_graph(b.nodes, name,
                          [helper.make_tensor_value_info("global_in", TensorProto.FLOAT,
                                                         in_shape)],
                          [helper.make_tensor_value_info("global_out", TensorProto.FLOAT,
                                                         [1, 10])], initializer=b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 8
    return m


def chain(n_blocks: int, width: int = 16, image: int = 8) -> onnx.ModelProto:
    """A residual chain: each block is conv3x3 + conv3x3 + add (about 6 HW layers)."""
    b = _FastBuilder(0)
    x = b.act(b.conv(b.quant("global_in", 8, True, 1 / 128), 3, width, 3, pad=1, bits=8), width)
    for _ in range(n_blocks):
        y = b.act(b.conv(x, width, width, 3, pad=1), width)
        y = b.quant(b.bn(b.conv(y, width, width, 3, pad=1), width), 4, False, 0.1)
        x = b.quant(b.node("Relu", [b.node("Add", [y, x])]), 4, False, 0.1)
    return _model(b, x, [1, 3, image, image], width, f"chain{n_blocks}")


def proxyless_like() -> onnx.ModelProto:
    """ProxylessNAS-mobile-class: 224x224, inverted-residual MBConv blocks (1x1 expand,
    depthwise 3x3/5x5, 1x1 project, residual where shapes allow)."""
    b = _FastBuilder(0)
    x = b.act(b.conv(b.quant("global_in", 8, True, 1 / 128), 3, 32, 3, stride=2, pad=1,
                     bits=8), 32)
    c = 32
    stages = [(16, 1, 1, 3), (32, 2, 4, 3), (40, 2, 4, 5), (80, 2, 4, 5), (96, 1, 4, 5),
              (192, 2, 4, 5), (320, 1, 1, 3)]
    for cout, stride, n, k in stages:
        for i in range(n):
            s = stride if i == 0 else 1
            e = c * 6
            y = b.act(b.conv(x, c, e, 1), e)
            y = b.act(b.conv(y, e, e, k, stride=s, pad=k // 2, group=e), e)
            y = b.quant(b.bn(b.conv(y, e, cout, 1), cout), 4, True, 0.1)
            if s == 1 and c == cout:
                y = b.quant(b.node("Add", [y, x]), 4, True, 0.1)
            x, c = y, cout
    x = b.act(b.conv(x, c, 1280, 1), 1280)
    return _model(b, x, [1, 3, 224, 224], 1280, "proxyless_like")


def _old_prepare(path: Path) -> None:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(path)))
    m = m.transform(InferShapes()).transform(InferDataTypes())


def _median(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-max-layers", type=int, default=200,
                    help="time the old preparation only up to this many layers")
    ap.add_argument("--out", default=str(REPO / "results" / "lowering_benchmark.csv"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    load_network(REPO / "dse" / "examples" / "cnv_small_w4a4.onnx")  # imports, warm caches
    nets = [(f"chain{n}", lambda n=n: chain(n)) for n in (4, 8, 16, 32, 64, 128, 256)]
    nets.append(("proxyless_like", proxyless_like))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in nets:
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(make(), str(path))
            g = load_network(path)
            t_new = _median(lambda p=path: load_network(p), args.repeats)
            t_old = None
            if len(g.layers) <= args.old_max_layers:
                t_old = _median(lambda p=path: _old_prepare(p), args.repeats)
            row = {"network": name, "onnx_nodes": len(onnx.load(str(path)).graph.node),
                   "hw_layers": len(g.layers), "load_network_s": round(t_new, 3),
                   "old_qonnx_prepare_s": None if t_old is None else round(t_old, 3),
                   "speedup": None if t_old is None else round(t_old / t_new, 1),
                   "ms_per_layer": round(1000 * t_new / len(g.layers), 2)}
            rows.append(row)
            print(row, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
