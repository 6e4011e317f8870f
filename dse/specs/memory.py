"""HBM modelled per pseudo-channel: which channels each external stream (weights, KV cache)
uses, such that every stream's channels together cover its rate and its bytes, and no channel
carries more than its bandwidth or holds more than its capacity.

U55C: 32 pseudo-channels of 512 MB and 14.375 GB/s theoretical each (UG1393,
``shared/reference/hardware_facts.md`` §1.3). ``efficiency`` derates the bandwidth to what
a stream reaches in practice (default 0.9).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dse.exceptions import InfeasibleError

DEFAULT_EFFICIENCY = 0.9


@dataclass(frozen=True)
class StreamDemand:
    name: str
    bytes_per_s: float  # sustained rate at the plan's II
    bytes: int  # what it stores


@dataclass(frozen=True)
class Share:
    channel: int
    bytes_per_s: float
    bytes: int
    offset: int


@dataclass(frozen=True)
class ChannelMap:
    channels: int
    channel_bytes_per_s: float  # usable, after the efficiency
    channel_bytes: int
    shares: dict[str, tuple[Share, ...]]

    def load(self) -> list[tuple[float, int]]:
        """(bytes/s, bytes) per channel."""
        out = [[0.0, 0] for _ in range(self.channels)]
        for parts in self.shares.values():
            for s in parts:
                out[s.channel][0] += s.bytes_per_s
                out[s.channel][1] += s.bytes
        return [(r, b) for r, b in out]

    def check(self) -> None:
        """Raise if any channel is oversubscribed (used by tests and by emit)."""
        for c, (rate, nbytes) in enumerate(self.load()):
            if rate > self.channel_bytes_per_s * (1 + 1e-9) or nbytes > self.channel_bytes:
                raise InfeasibleError(
                    f"HBM pseudo-channel {c} oversubscribed: {rate / 1e9:.2f} GB/s of "
                    f"{self.channel_bytes_per_s / 1e9:.2f}, {nbytes / 2**20:.0f} MiB of "
                    f"{self.channel_bytes / 2**20:.0f}")


def allocate(streams: Sequence[StreamDemand], channels: int, channel_bytes_per_s: float,
             channel_bytes: int, *, efficiency: float = DEFAULT_EFFICIENCY,
             align: int = 4096, exclusive: bool = False) -> ChannelMap:
    """Give each stream whole channels where it needs more than one, and pack the small ones
    together (best fit, largest first), or with ``exclusive`` give every stream channels of
    its own (what the CP-SAT formulation assumes). Raises InfeasibleError when the channels
    cannot carry the streams, naming the one that does not fit."""
    usable = channel_bytes_per_s * efficiency
    free_rate = [usable] * channels
    free_bytes = [channel_bytes] * channels
    offset = [0] * channels
    shares: dict[str, list[Share]] = {}
    order = sorted(streams, key=lambda s: (-max(s.bytes_per_s / usable,
                                                s.bytes / channel_bytes), s.name))
    for s in order:
        need = max(s.bytes_per_s / usable, s.bytes / channel_bytes)
        parts: list[Share] = []
        if need > 1 or exclusive:  # spread over n empty channels, equal shares
            n = max(1, math.ceil(need - 1e-12))
            empty = [c for c in range(channels) if free_rate[c] == usable
                     and free_bytes[c] == channel_bytes]
            if len(empty) < n:
                raise InfeasibleError(
                    f"HBM: {s.name} needs {n} pseudo-channels ({s.bytes_per_s / 1e9:.1f} GB/s, "
                    f"{s.bytes / 2**20:.0f} MiB) but only {len(empty)} are free of "
                    f"{channels}")
            per_b = -(-s.bytes // n)
            for c in empty[:n]:
                parts.append(Share(c, s.bytes_per_s / n, per_b, offset[c]))
                free_rate[c] -= s.bytes_per_s / n
                free_bytes[c] -= per_b
                offset[c] += -(-per_b // align) * align
        else:
            cands = [c for c in range(channels) if free_rate[c] >= s.bytes_per_s - 1e-6
                     and free_bytes[c] >= s.bytes]
            if not cands:
                raise InfeasibleError(
                    f"HBM: no pseudo-channel has {s.bytes_per_s / 1e9:.2f} GB/s and "
                    f"{s.bytes / 2**20:.1f} MiB left for {s.name}")
            c = min(cands, key=lambda c: (free_rate[c] - s.bytes_per_s, c))  # best fit
            parts.append(Share(c, s.bytes_per_s, s.bytes, offset[c]))
            free_rate[c] -= s.bytes_per_s
            free_bytes[c] -= s.bytes
            offset[c] += -(-s.bytes // align) * align
        shares[s.name] = parts
    m = ChannelMap(channels, usable, channel_bytes, {k: tuple(v) for k, v in shares.items()})
    m.check()
    return m
