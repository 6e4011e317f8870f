"""The one link model: how long one frame's message takes between two neighbouring stages.

Every constant is defined here once; the CNN partitioner (``dse.solver.problem``, as integer
cycles per cut stream) and the LLM planner (``dse.llm.hetero.hop_s``) both call it.

* FPGA - FPGA over ACCL+ on Coyote RDMA (both boards on the Coyote shell, 100 GbE): the
  measured eager send/recv curve between two U55C, receiver-side duration, medians of 10-22
  runs (``shared/reference/hardware_facts.md`` §3.4; raw logs zhenhaohe/accl_benchmark
  @08bf0973, ``accl_coyote_rdma_results/results_send``): 512 B 3.79 us, 4 KiB 4.87 us,
  64 KiB 16.8 us, 1 MiB 176.6 us, 4 MiB 692.8 us. Between the points the time is
  interpolated log-log; beyond 4 MiB it grows at the last segment's ~48 Gb/s; below 512 B
  it is the 512 B floor. FINN's ACCLOut sends one message per cut stream and frame
  (hardware_facts.md §4), so a link's time per frame is the sum over its streams.
* FPGA - FPGA on other shells (FINN's Vitis shell, Zynq) or at another line rate: a stream
  at the line rate x ``LINK_EFFICIENCY`` (ACCL kernel-to-kernel streaming reaches ~88 Gb/s on
  100 GbE, §3.4), plus ``HOP_LATENCY_S`` of latency (not of occupancy: it pipelines).
* anything with a GPU or CPU: host TCP between the NICs (ACCL's host-to-host TCP send/recv
  log: ~134 us for small messages, ~40 Gb/s at 4 MiB; ``TCP_H2H``), and on an FPGA or GPU
  side a stage through host memory: a DMA at ``HOST_DMA_GBPS`` (Coyote XDMA, PCIe Gen3 x16
  class) or the GPU's host link, plus ``STAGING_S`` per copy.
* a switch between two devices adds ``SWITCH_S``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: line rate (Gb/s) the ACCL+ Coyote curve was measured at
ACCL_LINE_GBPS = 100.0
#: (bytes, seconds) of one eager message, ACCL+ on Coyote RDMA, 2x U55C
ACCL_COYOTE_EAGER: tuple[tuple[int, float], ...] = (
    (512, 3.79e-6), (4096, 4.87e-6), (65536, 16.8e-6), (1 << 20, 176.6e-6), (4 << 20, 692.8e-6))
#: host-to-host TCP through the NICs: ACCL over the 100G TCP stack, host buffer to host buffer
#: (sendrecv_H2H, sender side), zhenhaohe/accl_benchmark@08bf0973
#: accl_xrt_tcp_results/accl0.log: 4 KiB .. 128 KiB take 109-141 us (median 133.6 us, the
#: small-message floor), 1 MiB 270.7 us, 4 MiB 819-865 us (median 847 us, ~40 Gb/s)
TCP_H2H: tuple[tuple[int, float], ...] = ((4096, 133.6e-6), (1 << 20, 270.7e-6),
                                          (4 << 20, 847e-6))
#: usable share of a streaming link's line rate (ACCL K2K ~88 Gb/s on 100 GbE)
LINK_EFFICIENCY = 0.88
#: latency of one hop of a streaming link: the ACCL+ RDMA 512 B floor
HOP_LATENCY_S = ACCL_COYOTE_EAGER[0][1]
#: host <-> FPGA DMA per board (Coyote XDMA, PCIe Gen3 x16 class), GB/s
HOST_DMA_GBPS = 12.0
#: fixed cost of one copy through host memory
STAGING_S = 10e-6
#: port-to-port latency of a 100 GbE switch (assumption, cut-through class)
SWITCH_S = 1e-6


def message_time_s(nbytes: float, curve: tuple[tuple[int, float], ...] = ACCL_COYOTE_EAGER
                   ) -> float:
    """Time to deliver one message of ``nbytes`` (latency + transfer) on a measured curve."""
    if nbytes <= curve[0][0]:
        return curve[0][1]
    for (b0, t0), (b1, t1) in zip(curve, curve[1:], strict=False):
        if nbytes <= b1:
            f = (math.log(nbytes) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
    b, t = curve[-1]
    b0, t0 = curve[-2]
    return t + (nbytes - b) * (t - t0) / (b - b0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FpgaLink:
    """A board-to-board link: the ACCL+ RDMA curve, or a stream at a line rate."""

    accl_rdma: bool  # both ends on Coyote with ACCL at the curve's line rate
    gbps: float = ACCL_LINE_GBPS
    efficiency: float = LINK_EFFICIENCY
    latency_s: float = HOP_LATENCY_S

    def frame_s(self, nbytes: float) -> float:
        """How long one frame's message of ``nbytes`` occupies the link (throughput)."""
        if self.accl_rdma:
            return message_time_s(nbytes)
        return nbytes * 8 / (self.gbps * self.efficiency * 1e9)

    def arrival_s(self, nbytes: float) -> float:
        """From the first byte sent to the last received (latency)."""
        return self.frame_s(nbytes) + (0.0 if self.accl_rdma else self.latency_s)


def fpga_link(*, accl: bool, gbps: float = ACCL_LINE_GBPS, efficiency: float = LINK_EFFICIENCY,
              latency_s: float = HOP_LATENCY_S) -> FpgaLink:
    """The link between two FPGA boards; ``accl``: both on the Coyote shell with ACCL."""
    return FpgaLink(accl_rdma=accl and gbps == ACCL_LINE_GBPS, gbps=gbps,
                    efficiency=efficiency, latency_s=latency_s)


def is_board(x: Any) -> bool:
    """An FPGA board configuration (``dse.specs.BoardConfig``) rather than a GPU/CPU."""
    return hasattr(x, "shell") and hasattr(x, "board")


def board_link(a: Any, b: Any) -> FpgaLink:
    """The link between two configured FPGA boards (``BoardConfig``) at their line rate."""
    coyote = a.shell.name == "coyote" and b.shell.name == "coyote"
    rate = min((r for r in (a.board.net_line_rate_gbps, b.board.net_line_rate_gbps) if r),
               default=ACCL_LINE_GBPS)
    return fpga_link(accl=coyote, gbps=rate)


def staging_s(x: Any, nbytes: float) -> float:
    """One side's copy through host memory: an FPGA's DMA, a GPU's host link (a CPU reads
    host memory itself)."""
    if is_board(x):  # the board's own host link (catalog host.pcie_gbps), else the default
        gbps = getattr(x.board, "host_pcie_gbps", 0.0) or HOST_DMA_GBPS
        return nbytes / (gbps * 1e9) + STAGING_S
    if x.kind == "gpu":
        return nbytes / (x.host_gbps * 1e9) + STAGING_S
    return 0.0


def host_hop_s(fpga: Any, dev: Any, nbytes: float) -> float:
    """One frame between an FPGA and a GPU/CPU in the same host: the board's DMA into host
    memory and, for a GPU, its copy over its own host link (no network)."""
    return staging_s(fpga, nbytes) + staging_s(dev, nbytes)


def hop_s(a: Any, b: Any, nbytes: float, *, topology: str = "chain") -> float:
    """One frame's ``nbytes`` from device ``a`` to device ``b`` (FPGA ``BoardConfig`` or a
    ``dse.devices.Device``): a direct cable in a chain, one switch traversal more with a
    switch."""
    sw = SWITCH_S if topology == "switch" else 0.0
    if is_board(a) and is_board(b):
        return board_link(a, b).arrival_s(nbytes) + sw
    # host TCP between the NICs, host staging on an FPGA or GPU side
    return message_time_s(nbytes, TCP_H2H) + staging_s(a, nbytes) + staging_s(b, nbytes) + sw
