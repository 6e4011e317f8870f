"""Lower a QONNX / FINN-ONNX network to the FINN HW layers FINN would create.

This is a structural lowering: it reproduces which HW layers FINN's ``step_convert_to_hw``
makes and their shape, channel, kernel, stride and bit-width attributes, without FINN's numeric
streamlining (threshold values are never needed for costing). qonnx does the ONNX work
(cleanup, shape and data-type inference); ``dse.ir.lowering`` walks the prepared graph once,
tracking for every activation tensor the HW stream it lives on and the float affine map (scale,
bias) applied to it since, so that:

* an activation quantizer after an MVAU/VVAU (through BatchNorm, scales, biases, ReLU) becomes
  the MVAU's fused thresholds, and a standalone ``Thresholding`` elsewhere;
* Conv -> [FMPadding] + ConvolutionInputGenerator + MVAU; depthwise Conv -> SWG + VVAU;
  MatMul/Gemm -> MVAU; MaxPool -> depthwise SWG + Pool; AveragePool + Trunc -> SWG + Pool
  (QuantAvgPool); GlobalAveragePool -> GlobalAccPool; TopK -> LabelSelect; Add of two streams ->
  ElementwiseAdd with DuplicateStreams at the fork; Softmax -> HWSoftmax; non-trivial Reshape ->
  Reshape (finn-plus); float scale/bias after the last quantizer -> ElementwiseMul/Add;
* a MatMul/Conv on a float tensor before any quantizer stays on the host, as FINN leaves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dse.exceptions import ModelLoadError
from dse.ir.finn_hw import graph_from_hw_model
from dse.ir.graph import LayerGraph
from dse.ir.lowering import Lowering
from dse.ir.onnx_io import HW_DOMAIN, file_sha256, is_hw_graph, read_model
from dse.ir.prepare import prepare
from dse.models._common import dtype as qdtype

__all__ = ["HW_DOMAIN", "file_sha256", "is_hw_graph", "load_network", "prepare", "read_model"]


def _check_static_shapes(model: Any, path: str) -> None:
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if not dims:
            raise ModelLoadError(f"{path}: graph input {inp.name!r} has no shape; export with a "
                                 "fixed input shape")
        for d in dims:
            if d.dim_param or d.dim_value <= 0:
                shape = [d.dim_param or d.dim_value for d in dims]
                raise ModelLoadError(
                    f"{path}: graph input {inp.name!r} has a dynamic shape {shape}; FINN needs "
                    "static shapes (export with a fixed batch size 1 and image size)"
                )


def load_network(path: str | Path, *, input_dtype: str | None = None,
                 minimize_bit_width: bool = True) -> LayerGraph:
    """Read a QONNX, FINN-ONNX or FINN HW-layer ONNX file and return its layer graph.

    ``input_dtype`` (e.g. ``"UINT8"``) declares the graph input an integer image, as FINN users
    do with an input annotation; without it a float input feeding a MatMul/Conv leaves that layer
    on the host, as FINN does. ``minimize_bit_width`` (default, as FINN's default flow) gives
    weights and accumulators the types FINN's ``step_minimize_bit_width`` derives from the
    weight values; ``False`` keeps the data-type bounds (INT32 accumulators).
    """
    p = Path(path)
    model = read_model(p)
    _check_static_shapes(model, str(p))
    sha = file_sha256(p)
    if is_hw_graph(model):
        return graph_from_hw_model(model, p, sha)
    if input_dtype is not None:
        qdtype(input_dtype)  # validates the name
    model = prepare(model, str(p))
    return Lowering(model, name=p.stem, input_dtype=input_dtype,
                     minimize_bit_width=minimize_bit_width).run(str(p), sha)
