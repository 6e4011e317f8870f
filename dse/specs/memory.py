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
from dataclasses import dataclass, replace

from dse.exceptions import InfeasibleError

#: Fraction of an HBM board's peak bandwidth that FINN's weight and KV streams reach. Shuhai
#: (Wang, Huang, Zhang, Alonso: "Shuhai: Benchmarking High Bandwidth Memory on FPGAs", FCCM
#: 2020; IEEE TC 2021, doi 10.1109/tc.2021.3075765) measured up to 425 GB/s of the U280's
#: 460 GB/s (0.92) with long sequential bursts, each AXI port on its own pseudo-channel:
#: FINN's streams are that pattern. dse takes 0.9, a little under it, because Coyote stripes
#: card memory over all 32 pseudo-channels through the HBM crossbar, whose cost for this
#: pattern nobody here has measured (an assumption; --hbm-efficiency overrides it).
DEFAULT_EFFICIENCY = 0.9
HBM_EFFICIENCY_SOURCE = ("Shuhai (FCCM 2020 / IEEE TC 2021): 425 of 460 GB/s (0.92) on a U280 "
                         "for sequential bursts per pseudo-channel; 0.9 allows for Coyote's "
                         "striping through the crossbar (not measured: an assumption)")


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamDemand:
    name: str
    bytes_per_s: float  # sustained rate at the plan's II
    bytes: int  # what it stores


@dataclass(frozen=True, slots=True, kw_only=True)
class Share:
    channel: int
    bytes_per_s: float
    bytes: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelMap:
    channels: int
    channel_bytes_per_s: float  # usable, after the efficiency
    channel_bytes: int
    shares: dict[str, tuple[Share, ...]]

    def load(self) -> list[tuple[float, int]]:
        """(bytes/s, bytes) per channel."""
        rates = [0.0] * self.channels
        sizes = [0] * self.channels
        for parts in self.shares.values():
            for s in parts:
                rates[s.channel] += s.bytes_per_s
                sizes[s.channel] += s.bytes
        return list(zip(rates, sizes, strict=True))

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
             align: int = 4096, exclusive: bool = False, striped: bool = False
             ) -> ChannelMap:
    """``striped``: every stream spread evenly over all channels, as Coyote maps card memory
    (``HBM_SPLIT 0``, ``shared/reference/hardware_facts.md`` §2.1); otherwise give each stream
    as many whole channels as it fills and put the rest of it, and the
    small streams, into shared channels (best fit, largest first); with ``exclusive`` every
    stream gets channels of its own (what the CP-SAT formulation assumes). Raises InfeasibleError
    when the channels cannot carry the streams, naming the one that does not fit."""
    usable = channel_bytes_per_s * efficiency
    if striped:  # Coyote's default: card memory striped over every pseudo-channel
        return _striped(streams, channels, usable, channel_bytes, align)
    if not exclusive:
        fluid = _fluid(streams, channels, usable, channel_bytes, align)
        if fluid is not None:
            return fluid
    free_rate = [usable] * channels
    free_bytes = [channel_bytes] * channels
    offset = [0] * channels
    shares: dict[str, list[Share]] = {}
    order = sorted(streams, key=lambda s: (-max(s.bytes_per_s / usable,
                                                s.bytes / channel_bytes), s.name))
    def put(c: int, name: str, rate: float, nbytes: int) -> None:
        parts.append(Share(channel=c, bytes_per_s=rate, bytes=nbytes, offset=offset[c]))
        free_rate[c] -= rate
        free_bytes[c] -= nbytes
        offset[c] += -(-nbytes // align) * align

    for s in order:
        need = max(s.bytes_per_s / usable, s.bytes / channel_bytes)
        parts: list[Share] = []
        n_own = max(1, math.ceil(need - 1e-9)) if exclusive else int(need + 1e-9)
        rate_left, bytes_left = s.bytes_per_s, s.bytes
        if n_own:  # whole channels of its own
            empty = [c for c in range(channels) if free_rate[c] == usable
                     and free_bytes[c] == channel_bytes]
            if len(empty) < n_own:
                raise InfeasibleError(
                    f"HBM: {s.name} needs {math.ceil(need - 1e-9)} pseudo-channels "
                    f"({s.bytes_per_s / 1e9:.1f} GB/s, {s.bytes / 2**20:.0f} MiB) but only "
                    f"{len(empty)} of {channels} are free")
            units = n_own if exclusive else need  # each own channel carries one unit
            for j, c in enumerate(empty[:n_own]):
                last = exclusive and j == n_own - 1
                r = rate_left if last else min(rate_left, s.bytes_per_s / units)
                nb = bytes_left if last else min(bytes_left, int(s.bytes / units))
                put(c, s.name, r, nb)
                rate_left -= r
                bytes_left -= nb
        if rate_left > 1e-6 * max(1.0, s.bytes_per_s) or bytes_left > 0:
            cands = [c for c in range(channels) if free_rate[c] >= rate_left * (1 - 1e-9)
                     and free_bytes[c] >= bytes_left]
            if not cands:
                raise InfeasibleError(
                    f"HBM: no pseudo-channel has {rate_left / 1e9:.2f} GB/s and "
                    f"{bytes_left / 2**20:.1f} MiB left for {s.name}")
            put(min(cands, key=lambda c: (free_rate[c] - rate_left, c)), s.name,
                rate_left, bytes_left)
        shares[s.name] = parts
    m = ChannelMap(channels=channels, channel_bytes_per_s=usable, channel_bytes=channel_bytes,
                   shares={k: tuple(v) for k, v in shares.items()})
    m.check()
    return m


def _fluid(streams: Sequence[StreamDemand], channels: int, usable: float, channel_bytes: int,
           align: int) -> ChannelMap | None:
    """Fill the channels one by one with fractions of streams (a fraction f of a stream
    carries f of its rate and f of its bytes), pairing rate-heavy with byte-heavy streams so
    that both dimensions fill: near-perfect packing whenever the totals fit. None if not."""
    left = {s.name: 1.0 for s in streams}
    by_name = {s.name: s for s in streams}
    shares: dict[str, list[Share]] = {s.name: [] for s in streams}
    for c in range(channels):
        rate_room, byte_room = usable, float(channel_bytes)
        offset = 0
        while left and rate_room > 1e-9 * usable and byte_room > 1e-9 * channel_bytes:
            # the stream whose shape best matches what this channel has room for
            want_rate = rate_room / usable >= byte_room / channel_bytes

            def score(n: str, want_rate: bool = want_rate) -> float:
                s = by_name[n]
                r, b = s.bytes_per_s / usable, s.bytes / channel_bytes
                return -(r - b) if want_rate else (r - b)

            n = min(sorted(left), key=score)
            s = by_name[n]
            f = left[n]
            if s.bytes_per_s:
                f = min(f, rate_room / s.bytes_per_s)
            if s.bytes:
                f = min(f, byte_room / s.bytes)
            if f <= 1e-12:
                break
            nb = int(round(s.bytes * f))
            shares[n].append(Share(channel=c, bytes_per_s=s.bytes_per_s * f, bytes=nb,
                                         offset=offset))
            offset += -(-nb // align) * align
            rate_room -= s.bytes_per_s * f
            byte_room -= s.bytes * f
            left[n] -= f
            if left[n] <= 1e-9:
                del left[n]
    if left:
        return None
    # whole bytes: rounding leftovers go to the stream's last share
    for n, parts in shares.items():
        diff = by_name[n].bytes - sum(p.bytes for p in parts)
        if diff and parts:
            last = parts[-1]
            parts[-1] = replace(last, bytes=last.bytes + diff)
    m = ChannelMap(channels=channels, channel_bytes_per_s=usable, channel_bytes=channel_bytes,
                   shares={k: tuple(v) for k, v in shares.items()})
    try:
        m.check()
    except InfeasibleError:
        return None
    return m


def _striped(streams: Sequence[StreamDemand], channels: int, usable: float,
             channel_bytes: int, align: int) -> ChannelMap:
    shares = {}
    offset = [0] * channels
    for s in streams:
        parts = []
        for c in range(channels):
            nb = -(-s.bytes // channels)
            parts.append(Share(channel=c, bytes_per_s=s.bytes_per_s / channels, bytes=nb,
                               offset=offset[c]))
            offset[c] += -(-nb // align) * align
        shares[s.name] = tuple(parts)
    m = ChannelMap(channels=channels, channel_bytes_per_s=usable, channel_bytes=channel_bytes,
                   shares=shares)
    m.check()
    return m
