"""``dse inspect``, ``dse cost`` and ``dse boards``: the layer table, one layer's estimate, the
board catalog."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from dse import api
from dse.cli.render import cost_tag, fmt_int, table
from dse.devices import device_rows
from dse.exceptions import DseError
from dse.models import estimate
from dse.models._common import COST_FINN, COST_SOURCES
from dse.outdir import write_file_atomic


def cmd_inspect(args: argparse.Namespace) -> int:
    res = api.inspect(args.model, part=args.part, input_dtype=args.input_dtype,
                      minimize_bit_width=not args.no_minimize_bit_width)
    rows = res["layers"]
    if args.json:
        out = {k: v for k, v in res.items() if k not in ("graph", "layers")}
        out["layers"] = [r.as_dict() for r in rows]
        out["edge_list"] = [e.as_dict() for e in res["graph"].edges]
        print(json.dumps(out, indent=1, sort_keys=True))
        return 0
    g = res["graph"]
    sha = f"  (sha256 {res['sha256'][:12]})" if res['sha256'] else ""
    print(f"model   {res['model']}{sha}")
    print(f"part    {res['part']}  (FINN estimates; cycles per frame, BRAM in RAMB18 units)")
    print(f"layers  {len(rows)} HW layers, {len(g.edges)} streams; "
          + ", ".join(f"{op} x{n}" for op, n in g.op_counts().items()))
    for h in res["host_nodes"]:
        print(f"host    {h['op_type']} {h['name']!r}: {h['reason']}")
    print()
    headers = ["layer", "op", "params", "A/W/B", "weight bits",
               "cyc@min", "LUT@min", "BRAM@min", "URAM@min", "DSP@min",
               "cyc@max", "LUT@max", "BRAM@max", "URAM@max", "DSP@max", "cost"]
    body = []
    for r in rows:
        s, f = r.smallest.cost, r.fastest.cost
        body.append([r.name, r.op_type, r.params, r.dtypes, fmt_int(r.weight_bits),
                     fmt_int(s.cycles), fmt_int(s.lut), s.bram18, s.uram, s.dsp,
                     fmt_int(f.cycles), fmt_int(f.lut), f.bram18, f.uram, f.dsp,
                     cost_tag(r.cost_source)])
    t = res["totals"]
    sm, fa = t["smallest"], t["fastest"]
    body.append(["TOTAL", "", "", "", fmt_int(t["weight_bits"]),
                 f"II {fmt_int(sm['max_cycles'])}", fmt_int(sm["lut"]), sm["bram18"],
                 sm["uram"], sm["dsp"], f"II {fmt_int(fa['max_cycles'])}", fmt_int(fa["lut"]),
                 fa["bram18"], fa["uram"], fa["dsp"], ""])
    print(table(headers, body, right=set(range(4, 15))))
    print()
    print("@min = PE=SIMD=1 (smallest folding); @max = fastest legal folding; the layer's own "
          "ram_style/mem_mode/resType are kept.")
    print("TOTAL II = the slowest layer's cycles per frame (one board, no links); "
          "FINN has no FF model and leaves ops without a resource model at 0.")
    used = {r.cost_source for r in rows}
    print("cost: " + "; ".join(f"{cost_tag(k)} = {k}" for k in COST_SOURCES if k in used)
          + (" (docs/transformer-cost-models.md)" if used - {COST_FINN} else ""))
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    if args.csv:
        return _cost_batch(args)
    if not args.op:
        raise DseError("give --op OPTYPE --attrs JSON, or --csv FILE for a batch")
    try:
        attrs = json.loads(args.attrs) if args.attrs else {}
    except json.JSONDecodeError as e:
        raise DseError(f"--attrs is not valid JSON: {e}") from None
    if not isinstance(attrs, dict):
        raise DseError("--attrs must be a JSON object of FINN attributes, e.g. "
                       "'{\"MW\": 64, \"MH\": 32, \"PE\": 4, \"SIMD\": 8}'")
    res = api.cost(args.op, attrs, args.part, args.finn)
    if args.json:
        print(json.dumps(res, indent=1, sort_keys=True))
        return 0
    c = estimate(args.op, attrs, args.part, finn=args.finn)
    print(f"{c.op_type} on {args.part or 'an UltraScale+ part'}:")
    print(f"  cycles per frame   {fmt_int(c.cycles)}")
    print(f"  LUT                {fmt_int(c.lut)}")
    print(f"  BRAM18             {c.bram18}")
    print(f"  URAM               {c.uram}")
    print(f"  DSP                {c.dsp}")
    print(f"  in stream bits     {', '.join(map(str, c.instream_widths))}")
    print(f"  out stream bits    {', '.join(map(str, c.outstream_widths))}")
    if c.weightstream_width:
        print(f"  weight stream bits {c.weightstream_width}")
    print(f"  out words/frame    {', '.join(map(str, c.output_words))}")
    return 0


ESTIMATE_COLUMNS = ("exp_cycles", "lut", "bram18", "uram", "dsp", "instream_width",
                    "outstream_width", "weightstream_width", "number_output_values", "error")


def _cost_batch(args: argparse.Namespace) -> int:
    src = Path(args.csv)
    if not src.is_file():
        raise DseError(f"CSV file not found: {src}")
    try:
        with src.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "op_type" not in reader.fieldnames:
                raise DseError(f"{src}: needs an 'op_type' column plus FINN attribute columns")
            rows = list(reader)
            fields = list(reader.fieldnames)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DseError(f"{src} is not a readable UTF-8 CSV file ({type(e).__name__})") from None
    skip = {"op_type", "domain", *ESTIMATE_COLUMNS}
    out_rows, n_err = [], 0
    for row in rows:
        attrs = {k: v for k, v in row.items() if k not in skip and v not in ("", None)}
        rec = dict(row)
        try:
            c = estimate(row["op_type"], attrs, args.part, finn=args.finn)
            rec.update(exp_cycles=c.cycles, lut=c.lut, bram18=c.bram18, uram=c.uram, dsp=c.dsp,
                       instream_width=c.instream_width, outstream_width=c.outstream_width,
                       weightstream_width=c.weightstream_width,
                       number_output_values=c.number_output_values, error="")
        except DseError as e:
            n_err += 1
            rec["error"] = str(e)
        out_rows.append(rec)
    out_fields = fields + [c for c in ESTIMATE_COLUMNS if c not in fields]
    dst = Path(args.out) if args.out else src.with_name(src.stem + "_estimates.csv")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=out_fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(out_rows)
    write_file_atomic(dst, buf.getvalue())  # all rows or nothing
    print(f"wrote {dst}: {len(out_rows)} rows, {n_err} with errors (see column 'error')")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    res = api.boards(args.board_file)
    devices = device_rows(args.board_file or ())
    if args.json:  # FPGA boards ("kind": "fpga"), then GPUs and CPUs
        print(json.dumps([{"kind": "fpga", **b} for b in res] + devices, indent=1,
                         sort_keys=True))
        return 0
    headers = ["board", "part", "SLRs", "shells", "LUT", "BRAM18", "URAM", "DSP",
               "usable LUT (1 board)", "usable LUT (multi)", "memory", "GB/s", "net Gb/s",
               "MHz"]
    body = [[b["name"], b["part"], b["slrs"], ",".join(b["shells"]),
             fmt_int(b["device"]["lut"]), fmt_int(b["device"]["bram18"]), b["device"]["uram"],
             fmt_int(b["device"]["dsp"]), fmt_int(b["capacity_single"]["lut"]),
             fmt_int(b["capacity_multi"]["lut"]), b["memory"], f"{b['memory_gbps']:g}",
             f"{b['network_gbps']:g}", f"{b['default_clock_mhz']:g}"] for b in res]
    print(table(headers, body, right={2, 4, 5, 6, 7, 8, 9, 11, 12, 13}))
    print("\nusable = (device or FINN area - shell overhead of the default shell) x FINN's caps "
          "(LUT 0.7, FF 0.5, BRAM/URAM/DSP 0.8); multi adds the network stack and ACCL; MHz is "
          "the default clock (--clock-mhz or NAME@MHZ sets another).")
    print()
    print(table(["device", "kind", "memory GiB", "GB/s", "TOPS fp16", "TOPS int8", "NIC Gb/s",
                 "$/h"], [_device_row(d) for d in devices], right={2, 3, 4, 5, 6, 7}))
    print("\nGPUs and CPUs run LLM stages beside the boards (--boards U55C,A100-80GB); "
          "TOPS are dense peaks from the data sheets; formats: docs/devices.md.")
    return 0


def _device_row(d: dict[str, Any]) -> list[str]:
    peak = d["peak_tops"]
    return [d["name"], d["kind"], f"{d['memory_gib']:g}", f"{d['memory_gbps']:g}",
            f"{peak.get('fp16', peak['fp32']):g}", f"{peak.get('int8', peak.get('fp16', 0)):g}",
            f"{d['nic_gbps']:g}", "-" if d["price_per_hour"] is None else
            f"{d['price_per_hour']:g}"]
