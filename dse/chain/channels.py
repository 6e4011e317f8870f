"""The one external-memory channel rule, for the CNN formulation and the LLM planner alike.

* HBM (U50/U55C/U280/V80): one AXI port per pseudo-channel (32 on the U55C, UG1393,
  ``shared/reference/hardware_facts.md`` §1.3). The shell keeps ``HBM_PORTS_RESERVED`` of
  them (host DMA and the network stack's buffers; FINN's Vitis flow maps its DMA to
  ``HBM[0]``, Coyote adds one memory channel per network stack, §2.1), so a design may use
  the rest; a slice of a board (one of ``k`` SLR-group copies) keeps its share, rounded up.
* DDR (U200/U250): ``bandwidth / DDR_CHANNEL_GBPS`` DDR4 channels of 19.25 GB/s each
  (UG1393); the shell's ports share the channels' controllers, so none is reserved.
* Striping: the Coyote shell stripes card memory over every channel (``HBM_SPLIT 0``, §2.1):
  a stream then takes one port and the channels' bandwidth and bytes as a whole; on other
  shells a stream takes whole channels covering its bytes and its rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: theoretical GB/s of one DDR4 channel on Alveo (UG1393: 77 GB/s over 4 channels)
DDR_CHANNEL_GBPS = 19.25
#: HBM AXI ports the shell keeps (host DMA, network stack buffers)
HBM_PORTS_RESERVED = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelRule:
    """How a design on one board may use its external memory."""

    kind: str  # "HBM", "DDR" or "none"
    physical: int  # channels on the board
    reserved: int  # ports the shell keeps
    striped: bool  # the shell stripes every buffer over all channels
    channel_bytes: int  # capacity of one channel

    @property
    def usable(self) -> int:
        """Channels (HBM) or channel ports a design's external streams may take."""
        return max(0, self.physical - self.reserved)

    @property
    def data_channels(self) -> int:
        """Channels a design's data may occupy: all of them when striped (the shell spreads
        every buffer over every bank), else the ones the shell's ports leave."""
        return self.physical if self.striped else self.usable

    def stream_channels(self, nbytes: int, rate_channels: int) -> int:
        """Channels one stream books: one port when striped; otherwise whole channels for
        its ``nbytes`` and for its rate (``rate_channels``: channels its bandwidth fills)."""
        if self.striped:
            return 1
        by_bytes = -(-nbytes // self.channel_bytes) if self.channel_bytes else self.usable + 1
        return max(1, by_bytes, rate_channels)


def channel_rule(board: Any, shell: str) -> ChannelRule:
    """The rule for ``board`` (``dse.specs.Board``) under ``shell`` (its name)."""
    if board.hbm_gib and board.hbm_channels:
        n = int(board.hbm_channels)
        # a slice of a board (one SLR group of several copies) takes its share of them
        reserved = -(-HBM_PORTS_RESERVED // max(1, int(getattr(board, "slice_of", 1) or 1)))
        return ChannelRule(kind="HBM", physical=n, reserved=reserved,
                           striped=shell == "coyote",
                           channel_bytes=int(board.hbm_gib * 2**30 / n))
    if board.ddr_gib and board.ddr_bandwidth_gbps:
        n = max(1, round(board.ddr_bandwidth_gbps / DDR_CHANNEL_GBPS))
        return ChannelRule(kind="DDR", physical=n, reserved=0, striped=shell == "coyote",
                           channel_bytes=int(board.ddr_gib * 2**30 / n))
    return ChannelRule(kind="none", physical=0, reserved=0, striped=False, channel_bytes=0)
