"""``dse calibrate``: fit a GPU/CPU's roofline efficiencies to measured step times."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from dse.devices import Device, Efficiency, calibrate, load_devices, read_measurements
from dse.exceptions import DseError
from dse.outdir import write_file_atomic


def _calibrate_published(dev: Device, path: str) -> tuple[Efficiency, dict[str, float]]:
    """Fit ``dev`` to its rows of a published-measurements CSV; errors as |ln(pred/pub)|,
    printed as relative."""
    import math
    from dataclasses import replace

    from dse.devices.published import fit_published, read_published

    rows = [r for r in read_published(path) if r.device == dev.name]
    fit = fit_published({dev.name: dev}, rows)

    def rel(x: float) -> float:
        return math.exp(x) - 1

    eff = replace(fit.efficiency, source=f"fitted by dse calibrate to {fit.rows} rows of {path}")
    return eff, {"rows": fit.rows, "median_rel_error": rel(fit.median_abs_log_error),
                 "max_rel_error": rel(fit.max_abs_log_error),
                 "median_rel_error_before": rel(fit.median_abs_log_error_before),
                 "max_rel_error_before": rel(fit.max_abs_log_error_before)}


def cmd_calibrate(args: argparse.Namespace) -> int:
    cat = load_devices(args.board_file or ())
    dev = cat.get(args.device)
    if dev is None:
        raise DseError(f"--device {args.device!r}: unknown; known devices: "
                       f"{', '.join(cat.devices)} (or define one in a --board-file)")
    if args.published:
        eff, err = _calibrate_published(dev, args.published)
        print(f"device   {dev.name}: {err['rows']} published row(s)")
    else:
        eff, err = calibrate(dev, read_measurements(args.measurements))
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
                       f"{args.measurements or args.published}"}
        write_file_atomic(args.out, json.dumps({"devices": [d]}, indent=1) + "\n")
        print(f"device file {args.out} (use it with --board-file)")
    return 0
