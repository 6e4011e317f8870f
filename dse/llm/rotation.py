"""Online Hadamard rotations and model expansion for LLMs built from their configs.

Where the rotations sit (the *online* ones; rotations fused into weights offline cost no
hardware):

* SpinQuant (Liu et al., "SpinQuant: LLM quantization with learned rotations",
  arXiv:2405.16406, Fig. 1/section 3): R1 and R2 are merged into the weights; R3 is an online
  Hadamard of head_dim on the queries and keys after RoPE (for KV-cache quantization) and R4
  an online Hadamard of the intermediate size on the down projection's input.
* QuaRot (Ashkboos et al., "QuaRot: Outlier-free 4-bit inference in rotated LLMs",
  arXiv:2404.00456, section 4 / Fig. 4): the same two online Hadamards (keys/queries after
  RoPE, down_proj input) plus one across the heads before the output projection (the
  head_dim part of that rotation is fused into W_v offline, so the online one has length
  n_heads over each of head_dim positions).

Model expansion (Franco, Monteagudo-Lago, Colbert, Fraser, Blott, "Improving quantization with
post-training model expansion", arXiv:2503.17513: ~5% more parameters on Llama 3 1B) pads the
rotated dimension; dse pads the MLP's intermediate size by ``expand`` and rounds up to a length
a Hadamard matrix exists for (2^k times QuaRot's dense block sizes), so the up/gate
projections, the rotation and the down projection all grow and their cost shows in the plan.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from dse.exceptions import SpecError

POSITIONS: dict[str, tuple[str, ...]] = {
    "none": (),
    "spinquant": ("qk", "down"),  # R3, R4
    "quarot": ("qk", "down", "heads"),
}
MAX_EXPAND = 1.0


def check_rotation(rotation: str, expand: float) -> None:
    if rotation not in POSITIONS:
        raise SpecError(f"--rotation {rotation!r}: choose one of {', '.join(POSITIONS)}")
    if not (isinstance(expand, (int, float)) and 0.0 <= float(expand) <= MAX_EXPAND):
        raise SpecError(f"--expand {expand!r}: give a fraction 0 .. {MAX_EXPAND} of extra "
                        "width (e.g. 0.05)")


def positions(rotation: str) -> tuple[str, ...]:
    return POSITIONS[rotation]


def hadamard_size(n: int) -> int:
    """The smallest length >= n that a Hadamard matrix dse knows exists for."""
    from dse.exceptions import LayerAttributeError
    from dse.models.hadamard import factor

    m = n
    while True:
        try:
            factor(m)
            return m
        except LayerAttributeError:
            m += 1


def expanded(arch: Any, expand: float, rotation: str) -> Any:
    """``arch`` with its intermediate size padded by ``expand`` (rounded up to a Hadamard
    length when the down projection is rotated)."""
    if expand <= 0 and "down" not in positions(rotation):
        return arch
    target = math.ceil(arch.intermediate * (1 + expand))
    if "down" in positions(rotation):
        target = hadamard_size(target)
    return replace(arch, intermediate=target) if target != arch.intermediate else arch
