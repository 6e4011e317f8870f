"""QONNX / FINN-ONNX -> FINN HW layers: a small core (``core``) and one module of lowering rules
per op family. Importing this package registers every rule (an explicit list, not discovery)."""

from dse.ir.lowering import (  # noqa: F401
    affine,
    attention,
    hadamard,
    heads,
    layout,
    minifloat,
    mvau,
    norms,
    pool,
    quantizers,
    streams,
)
from dse.ir.lowering.core import RULES, Lowering

__all__ = ["RULES", "Lowering"]
