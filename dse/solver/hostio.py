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

**A batch through FINN's PYNQ driver** (``DriverCall``). The steady-state fps is what the
pipeline sustains; what FINN's ``throughput_test()`` measures is one call of the driver's
``execute_on_buffers`` on a batch of N frames (``driver_base.py``, platform ``zynq-iodma``):
the runtime of that call, N / runtime. That call makes its register accesses one after another
from Python before and after the hardware runs: a status read of each output IODMA, then three
writes per IODMA (buffer address, frame count, ap_start; outputs first, the input's ap_start
last), then ``wait_until_finished`` polls each output IODMA until it reads done. So the runtime
is ``accesses x mmio_us`` (the board catalog's ``host.mmio_us``, with its source) plus N
intervals at the steady-state II. The pipeline's fill is one of those intervals: the streaming
layers overlap within a frame, so the first frame leaves after a few intervals at most, far
sooner than a plan's ``latency_s`` (the sum of the layers' cycles, FINN's critical-path
estimate: 40 intervals for MobileNet-v1 on ZCU102, whose notebook measured 2,176 us per frame
at batch 100 against an interval of 2,103 us). Where the catalog has no ``mmio_us`` (0) the
call's accesses are not costed and the figure says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dse.exceptions import SpecError
from dse.solver import DEFAULT_BATCH
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


def driver_mmio_accesses(n_inputs: int, n_outputs: int) -> int:
    """Register accesses one ``execute_on_buffers`` call of FINN's PYNQ driver makes in
    series (``zynq-iodma``): a status read per output IODMA, address / count / ap_start per
    IODMA, and the status read per output IODMA that sees it done."""
    return n_outputs + 3 * (n_inputs + n_outputs) + n_outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverCall:
    """One call of FINN's PYNQ driver on a batch of ``frames``: what ``throughput_test()``
    times. ``mmio_us`` 0: the board's register access time is not known (not costed)."""

    frames: int
    mmio_accesses: int
    mmio_us: float
    steady_fps: float

    @property
    def call_s(self) -> float:
        return self.mmio_accesses * self.mmio_us * 1e-6

    @property
    def runtime_s(self) -> float:
        return self.call_s + self.frames / self.steady_fps

    @property
    def fps(self) -> float:
        return self.frames / self.runtime_s

    def as_dict(self, source: str = "") -> dict[str, object]:
        costed = self.mmio_us > 0
        return {"frames": self.frames, "fps": round(self.fps, 3),
                "runtime_ms": round(self.runtime_s * 1e3, 6),
                "driver_call_us": round(self.call_s * 1e6, 3),
                "mmio_accesses": self.mmio_accesses, "mmio_us": self.mmio_us,
                "mmio_source": source,
                "includes": ("one call of FINN's PYNQ driver on the batch (execute_on_buffers, "
                             "what throughput_test() times): its register accesses"
                             + ("" if costed else " (not costed: no host.mmio_us for this "
                                "board)")
                             + ", then one steady-state interval per frame (the pipeline's "
                             "fill is one of them)")}


def driver_call(graph: object, cfg: BoardConfig, *, frames: int,
                steady_fps: float) -> DriverCall:
    """The driver call on ``frames`` frames of a network whose pipeline sustains
    ``steady_fps``, driven from ``cfg``'s board's host."""
    if frames < 1:
        raise SpecError(f"batch {frames}: a driver call runs at least 1 frame (--batch N, "
                        "N >= 1)")
    ins, outs = graph_io_bits(graph)
    return DriverCall(frames=frames,
                      mmio_accesses=driver_mmio_accesses(len(ins) or 1, len(outs) or 1),
                      mmio_us=cfg.board.host_mmio_us, steady_fps=steady_fps)


def describe_batch(b: dict) -> str:
    """One line on a plan's ``metrics.batch``."""
    how = (f"{b['mmio_accesses']} register accesses x {b['mmio_us']:g} us"
           if b["mmio_us"] else "driver call not costed: no host.mmio_us for this board")
    return (f"batch    {b['fps']:,.0f} fps for one driver call on {b['frames']:,} frames "
            f"({b['runtime_ms']:,.4g} ms: {how}, then one II per frame)")


def describe(h: dict) -> str:
    """One line on a plan's ``metrics.host_io`` (``dse optimize`` and ``dse evaluate``)."""
    i, o = h["input"], h["output"]
    return (f"host I/O input {i['bits_per_frame'] // 8:,} B/frame over a {i['iodma_bits']}-bit "
            f"IODMA ({i['cycles']:,} cycles, {i['bound']}), output "
            f"{o['bits_per_frame'] // 8:,} B/frame ({o['cycles']:,} cycles): "
            f"{h['fps'] or 0:,.0f} fps" + (" - binds the II" if h["binding"] else ""))


__all__ = ["DEFAULT_BATCH", "DriverCall", "IoStage", "describe", "describe_batch",
           "driver_call", "driver_mmio_accesses", "graph_io_bits", "host_fps", "host_stage",
           "host_stages", "iodma"]
