"""The records of an LLM pipeline: one block at one II (``BlockPoint``) and one stage of the
chain on its device (``Stage``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dse.specs import RESOURCE_NAMES, Resources

RES = RESOURCE_NAMES


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockPoint:
    """One block at one II: its resources and external streams."""

    ii: int
    latency: int  # fill cycles along the longest path (first input to first output)
    res: Resources
    ext_streams: tuple[tuple[str, int, int], ...]  # (layer, weight bits, bits per frame)
    folding: tuple[tuple[str, dict[str, Any], str], ...]  # (layer, attrs, impl)
    bottleneck: str
    #: per layer: (name, its resources, padded output width), for the SLR placement
    layers: tuple[tuple[str, Resources, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    board: str
    index: int
    blocks: int
    first_block: float  # x.5: starts with the MLP half of block x
    style: str  # spatial | rolled
    placement: str  # onchip | hbm
    point: BlockPoint
    frame_s: float
    latency_s: float
    compute_s: float
    hbm_s: float
    hbm_bytes_per_frame: float
    weight_bytes: int
    kv_bytes: int
    hbm_channels: int
    binding: str
    resources: Resources | None  # None: not an FPGA stage
    capacity: Resources | None
    extras: tuple[str, ...] = ()  # partial blocks (mlp: leading, attn: trailing) and "head"
    hbm_map: Any = None  # dse.specs.memory.ChannelMap of the stage's external streams
    mem_Bps: float = 0.0  # the memory bandwidth (x efficiency) behind hbm_bytes_per_frame
    kind: str = "fpga"  # fpga | gpu | cpu
    price_per_hour: float | None = None
    prefill_s: float | None = None  # the prompt through this stage (None: streamed)
    clock_mhz: float = 0.0  # this board's clock (FPGA stages)
    slrs: Any = None  # dse.solver.slr.Packing of the stage's layers (boards with SLRs)
    #: (part.layer, resources, SLR) per layer of the stage, where the board has SLRs
    slr_layers: tuple[tuple[str, Resources, int], ...] = ()
    efficiency: Any = None  # dse.devices.Efficiency of a GPU/CPU stage
    #: the point of each extra part (``extras``): its folding, as ``point`` is the block's
    extra_points: tuple[tuple[str, BlockPoint], ...] = ()


ZERO = BlockPoint(ii=0, latency=0, res=Resources(), ext_streams=(), folding=(),
                  bottleneck="")
