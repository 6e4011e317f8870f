"""``dse calibrate``: fit a GPU/CPU's roofline efficiencies to measured step times."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from dse.devices import calibrate, load_devices, read_measurements
from dse.exceptions import DseError
from dse.outdir import write_file_atomic


def cmd_calibrate(args: argparse.Namespace) -> int:
    cat = load_devices(args.board_file or ())
    dev = cat.get(args.device)
    if dev is None:
        raise DseError(f"--device {args.device!r}: unknown; known devices: "
                       f"{', '.join(cat.devices)} (or define one in a --board-file)")
    rows = read_measurements(args.measurements)
    eff, err = calibrate(dev, rows)
    fitted = (f"; the fit uses {err['rows_fitted']:,} evenly spaced, the errors all"
              if err["rows_fitted"] < err["rows"] else "")
    print(f"device   {dev.name}: {err['rows']:,} measurement(s){fitted}")
    print(f"fit      compute efficiency {eff.compute:.3f}, memory efficiency {eff.memory:.3f}, "
          f"kernel overhead {eff.kernel_overhead_s * 1e6:.2f} us")
    print(f"error    median {100 * err['median_rel_error']:.1f} %, worst "
          f"{100 * err['max_rel_error']:.1f} % (defaults: median "
          f"{100 * err['median_rel_error_before']:.1f} %, worst "
          f"{100 * err['max_rel_error_before']:.1f} %)")
    if args.out:
        d = {"name": dev.name, "kind": dev.kind, "memory_gib": dev.memory_gib,
             "memory_gbps": dev.memory_gbps, "nic_gbps": dev.nic_gbps,
             "host_gbps": dev.host_gbps, "peak_tops": dev.peak_tops,
             "price_per_hour": dev.price_per_hour,
             "efficiency": {k: v for k, v in asdict(eff).items() if k != "kernels_per_block"},
             "source": f"{dev.source}; efficiencies fitted by dse calibrate to "
                       f"{args.measurements}"}
        write_file_atomic(args.out, json.dumps({"devices": [d]}, indent=1) + "\n")
        print(f"device file {args.out} (use it with --board-file)")
    return 0
