"""QONNX / FINN-ONNX -> FINN HW layers: a small core (``core``) and one module of lowering rules
per op family. Importing this package registers every rule (an explicit list, not discovery)."""

from dse.ir.lowering import affine, layout, mvau, pool, quantizers, streams  # noqa: F401
from dse.ir.lowering.core import RULES, Lowering

__all__ = ["RULES", "Lowering"]
