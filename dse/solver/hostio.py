"""Host I/O as a pipeline stage: FINN's IODMAs and the board's host link.

FINN's builds put an ``IODMA_hls`` on every graph input and output (``InsertIODMA`` in
``ZynqBuild`` and in the Vitis flow). Its AXI-MM side moves one word of ``intfWidth`` bits per
cycle, where ``intfWidth = gcd(transfer_bits, max_intfwidth)`` (``insert_iodma.py``) and
``max_intfwidth`` is the board's: ``pynq_native_port_width`` on Zynq (64 bits on Pynq-Z1/Z2,
128 on the UltraScale+ MPSoCs; ``finn/util/basic.py``), ``vitis_iodma_intf_max_width`` = 512
on Alveo (``build_dataflow_config.py``). FINN's ``IODMA_hls.get_exp_cycles`` is the base
class's 0, so FINN's own estimate leaves this stage out; its HLS loop
(``Mem2Stream_Batch``, finn-hlslib ``dma.h``) is pipelined at II=1, one AXI word per cycle,
which is the model here. On Zynq the IODMA reads the PS DDR through an HP port at the
fabric clock; on Alveo the frames cross PCIe too (the board's ``host.pcie_gbps``).

A stage's cycles are counted at its board's clock. With replicas, each copy board has its own
IODMAs and PCIe link; copies sharing one board (SLR groups) share them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dse.specs import BoardConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class IoStage:
    """One direction of a board's host I/O for one frame."""

    direction: str  # "in" (host -> first layer) or "out" (last layer -> host)
    bits: int  # payload bits per frame, every graph input (output) together
    dma_bits: int  # the widest IODMA's AXI-MM width (FINN's intfWidth)
    dma_cycles: int  # the slowest IODMA's cycles per frame
    pcie_gbps: float  # 0: no host link beyond the DMA (Zynq)
    pcie_cycles: int  # cycles per frame on the host link at the board's clock
    clock_mhz: float

    @property
    def cycles(self) -> int:
        return max(self.dma_cycles, self.pcie_cycles)

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / max(1, self.cycles)

    @property
    def bound(self) -> str:
        """What sets this stage's cycles."""
        return "PCIe" if self.pcie_cycles > self.dma_cycles else "IODMA"

    def as_dict(self) -> dict[str, object]:
        return {"bits_per_frame": self.bits, "iodma_bits": self.dma_bits,
                "iodma_cycles": self.dma_cycles, "pcie_gbps": self.pcie_gbps,
                "pcie_cycles": self.pcie_cycles, "cycles": self.cycles,
                "fps": round(self.fps, 3), "bound": self.bound}


def iodma(transfer_bits: int, max_intf_bits: int) -> tuple[int, int]:
    """FINN's IODMA for one tensor: (intfWidth, cycles per frame). ``transfer_bits`` is the
    frame as the stream carries it, padded to whole bytes (AXI streams are byte-padded)."""
    transfer = -(-max(transfer_bits, 8) // 8) * 8
    width = math.gcd(transfer, max_intf_bits)
    return width, -(-transfer // width)


def host_stage(direction: str, tensor_bits: Sequence[int], cfg: BoardConfig) -> IoStage:
    """The host I/O of ``cfg``'s board for tensors of ``tensor_bits`` bits per frame, one
    IODMA each (they run in parallel, the PCIe link carries them all)."""
    board = cfg.board
    dmas = [iodma(b, board.host_dma_bits) for b in tensor_bits if b > 0] or [(8, 0)]
    bits = sum(tensor_bits)
    pcie = board.host_pcie_gbps
    pcie_cycles = (math.ceil(bits / 8 / (pcie * 1e9) * cfg.clock_mhz * 1e6)
                   if pcie and bits else 0)
    width, cyc = max(dmas, key=lambda d: d[1])
    return IoStage(direction=direction, bits=bits, dma_bits=width, dma_cycles=cyc,
                     pcie_gbps=pcie, pcie_cycles=pcie_cycles, clock_mhz=cfg.clock_mhz)


def graph_io_bits(graph: object) -> tuple[list[int], list[int]]:
    """Bits per frame of each graph input and output stream of a LayerGraph."""
    edges = graph.edges  # type: ignore[attr-defined]
    ins = [e.bits_per_frame for e in edges if e.src is None]
    outs = [e.bits_per_frame for e in edges if e.dst is None]
    return ins, outs


def host_stages(graph: object, cfg: BoardConfig) -> tuple[IoStage, IoStage]:
    """(input, output) host stages of a network on one board."""
    ins, outs = graph_io_bits(graph)
    return host_stage("in", ins, cfg), host_stage("out", outs, cfg)


def host_fps(graph: object, cfg: BoardConfig, copies: int = 1) -> float:
    """Frames per second one board's host I/O carries, shared by ``copies`` on it."""
    i, o = host_stages(graph, cfg)
    return min(i.fps, o.fps) / max(1, copies)


def describe(h: dict) -> str:
    """One line on a plan's ``metrics.host_io`` (``dse optimize`` and ``dse evaluate``)."""
    i, o = h["input"], h["output"]
    return (f"host I/O input {i['bits_per_frame'] // 8:,} B/frame over a {i['iodma_bits']}-bit "
            f"IODMA ({i['cycles']:,} cycles, {i['bound']}), output "
            f"{o['bits_per_frame'] // 8:,} B/frame ({o['cycles']:,} cycles): "
            f"{h['fps'] or 0:,.0f} fps" + (" - binds the II" if h["binding"] else ""))


__all__ = ["IoStage", "describe", "graph_io_bits", "host_fps", "host_stage", "host_stages",
           "iodma"]
