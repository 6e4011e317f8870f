"""Per-message link latency from measurements.

ACCL+ on Coyote RDMA between two U55C, eager send/recv into FPGA memory, receiver-side
duration, medians of 10-22 runs (``shared/reference/hardware_facts.md`` §3.4, raw logs in
zhenhaohe/accl_benchmark): 512 B 3.79 us, 4 KiB 4.87 us, 64 KiB 16.8 us, 1 MiB 176.6 us,
4 MiB 692.8 us. Between the points the time is interpolated log-log; beyond 4 MiB it grows
at the measured ~48 Gb/s; below 512 B it is the 512 B floor.
"""

from __future__ import annotations

import itertools
import math

ACCL_COYOTE_EAGER = ((512, 3.79e-6), (4096, 4.87e-6), (65536, 16.8e-6), (1 << 20, 176.6e-6),
                     (4 << 20, 692.8e-6))


def message_time_s(nbytes: float, table: tuple = ACCL_COYOTE_EAGER) -> float:
    """Time to deliver one message of ``nbytes`` (latency + transfer), measured curve."""
    if nbytes <= table[0][0]:
        return table[0][1]
    for (b0, t0), (b1, t1) in itertools.pairwise(table):
        if nbytes <= b1:
            f = (math.log(nbytes) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0)))
    b, t = table[-1]
    b0, t0 = table[-2]
    return t + (nbytes - b) * (t - t0) / (b - b0)
