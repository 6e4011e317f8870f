"""FINN-exact cost models: one module per op family, pure functions, no I/O.

>>> from dse.models import estimate
>>> c = estimate("MVAU_hls", {"MW": 784, "MH": 64, "PE": 2, "SIMD": 28,
...                           "inputDataType": "BINARY", "weightDataType": "BINARY",
...                           "outputDataType": "BINARY", "binaryXnorMode": 1})
>>> c.cycles
896
"""

from dse.models._common import LayerCost, divisors
from dse.models.registry import (
    FINN_VERSIONS,
    estimate,
    get_model,
    known_op_types,
    normalize_attrs,
    split_op_type,
)

__all__ = [
    "FINN_VERSIONS",
    "LayerCost",
    "divisors",
    "estimate",
    "get_model",
    "known_op_types",
    "normalize_attrs",
    "split_op_type",
]
