"""One error hierarchy for dse.

Every message names the object at fault and, where there is one, the fix.
The CLI maps :class:`InfeasibleError` to exit code 1, :class:`InternalError` (and any exception
that is not a :class:`DseError`) to exit code 3, and every other :class:`DseError` to exit
code 2.
"""

from __future__ import annotations


class DseError(Exception):
    """Base class of every error dse raises on purpose."""

    exit_code = 2


class SpecError(DseError):
    """A board, link, cap or other input specification is invalid."""


class ModelLoadError(DseError):
    """An ONNX file cannot be read or is not a quantized network dse can map."""


class UnsupportedLayerError(ModelLoadError):
    """The network holds operators that have no FINN hardware mapping."""

    def __init__(self, message: str, nodes: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.nodes = list(nodes or [])


class NodeNotMappable(UnsupportedLayerError):
    """Raised by a lowering rule: this node has no FINN hardware mapping (the message is the
    reason). The lowering collects these per node and reports them all at once, exit code 2;
    any other exception inside a rule is a bug in dse (:class:`InternalError`, exit code 3)."""


class UnknownOpError(DseError):
    """An op type has no cost model."""


class LayerAttributeError(DseError):
    """A layer attribute is missing, malformed or violates a FINN folding rule."""


class IllegalFoldingError(LayerAttributeError):
    """A folding (PE/SIMD/...) that FINN would reject."""


class InfeasibleError(DseError):
    """No plan satisfies the constraints; the message names what binds."""

    exit_code = 1


class PlanError(DseError):
    """A plan file is malformed or does not match the network."""


class InternalError(DseError):
    """A bug in dse (an invariant broke): exit code 3, distinct from bad input and from
    infeasibility, so scripts can tell them apart."""

    exit_code = 3


class BackendError(DseError):
    """A backend (FINN) step failed or its tools are missing."""
