"""Command line: parse, call dse.api, print. Exit codes: 0 ok, 1 infeasible, 2 bad input."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dse import __version__
from dse.exceptions import DseError
from dse.solver import STRATEGIES


def cost_tag(source: str) -> str:
    """Short column tag of a cost source (dse.models._common.COST_SOURCES)."""
    return {"FINN estimate": "FINN", "FINN cycles + dse resource model": "FINN+dse",
            "dse model": "dse"}.get(source, source)


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] | None = None
          ) -> str:
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    from dse import api

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
        body.append([r.name, r.op_type, r.params, r.dtypes, _fmt_int(r.weight_bits),
                     _fmt_int(s.cycles), _fmt_int(s.lut), s.bram18, s.uram, s.dsp,
                     _fmt_int(f.cycles), _fmt_int(f.lut), f.bram18, f.uram, f.dsp,
                     cost_tag(r.cost_source)])
    t = res["totals"]
    sm, fa = t["smallest"], t["fastest"]
    body.append(["TOTAL", "", "", "", _fmt_int(t["weight_bits"]),
                 f"II {_fmt_int(sm['max_cycles'])}", _fmt_int(sm["lut"]), sm["bram18"],
                 sm["uram"], sm["dsp"], f"II {_fmt_int(fa['max_cycles'])}", _fmt_int(fa["lut"]),
                 fa["bram18"], fa["uram"], fa["dsp"], ""])
    print(table(headers, body, right=set(range(4, 15))))
    print()
    print("@min = PE=SIMD=1 (smallest folding); @max = fastest legal folding; the layer's own "
          "ram_style/mem_mode/resType are kept.")
    print("TOTAL II = the slowest layer's cycles per frame (one board, no links); "
          "FINN has no FF model and leaves ops without a resource model at 0.")
    from dse.models._common import COST_FINN, COST_SOURCES

    used = {r.cost_source for r in rows}
    print("cost: " + "; ".join(f"{cost_tag(k)} = {k}" for k in COST_SOURCES if k in used)
          + (" (docs/transformer-cost-models.md)" if used - {COST_FINN} else ""))
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from dse import api
    from dse.models import estimate

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
    res = api.cost(args.op, attrs, args.part)
    if args.json:
        print(json.dumps(res, indent=1, sort_keys=True))
        return 0
    c = estimate(args.op, attrs, args.part)
    print(f"{c.op_type} on {args.part or 'an UltraScale+ part'}:")
    print(f"  cycles per frame   {_fmt_int(c.cycles)}")
    print(f"  LUT                {_fmt_int(c.lut)}")
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
    import io

    from dse.models import estimate
    from dse.outdir import write_file_atomic

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
            c = estimate(row["op_type"], attrs, args.part)
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


def _host_io_line(h: dict) -> str:
    i, o = h["input"], h["output"]
    return (f"host I/O input {i['bits_per_frame'] // 8:,} B/frame over a {i['iodma_bits']}-bit "
            f"IODMA ({i['cycles']:,} cycles), output {o['bits_per_frame'] // 8:,} B/frame "
            f"({o['cycles']:,} cycles): {h['fps'] or 0:,.0f} fps"
            + (" — binds the II" if h["binding"] else ""))


def _pct(used: int, cap: int) -> str:
    return f"{100 * used / cap:5.1f}% of cap" if cap else "  n/a"


def _optimize_llm(args: argparse.Namespace, progress: Any) -> int:
    from dse import api

    res = api.optimize_llm(
        args.model, boards=args.boards, board=args.board, shell=args.shell,
        caps=api.parse_caps(args.cap), clock_mhz=args.clock_mhz, mode=args.mode,
        seq=args.seq, context=args.context, sequences=args.sequences, weights=args.weights,
        acts=args.acts, kv=args.kv, group=args.group, hbm_efficiency=args.hbm_efficiency,
        board_files=args.board_file or (), out=args.out,
        prices=api.parse_prices(args.price), order=args.board_order, topology=args.topology,
        progress=None if (args.quiet or args.json) else progress)
    d = res.data
    if args.json:
        print(json.dumps(d, indent=1, sort_keys=True))
        return 0
    mdl, m = d["model"], d["metrics"]
    print(f"model    {mdl['name']} ({mdl['family']}, {mdl['params'] / 1e9:.2f} B parameters), "
          f"{mdl['mode']}: {mdl['blocks']} blocks x {mdl['block_layers']} HW layers; weights "
          f"{mdl['weights']}, activations {mdl['acts']}, KV {mdl['kv']}")
    what = (f"{mdl['seq']} tokens per frame" if mdl["mode"] != "decode" else
            f"1 token per step, {mdl['context']} cached tokens, {m['sequences']} sequence(s) "
            "in flight")
    clock = f"FPGA clock {d['clock_mhz']:g} MHz; " if d["clock_mhz"] else ""
    print(f"frame    {what}; {clock}HBM efficiency {d['hbm_efficiency']:g}")
    print()
    rows = []
    for s in d["stages"]:
        r, c = s["resources"], s["capacity"]
        util = max((r[k] / c[k] for k in r if c.get(k)), default=0.0)
        rows.append([s["index"], s["board"], s["blocks"] + ("+head" if "head" in s["parts"]
                                                           else ""), s["style"],
                     s["weights"], f"{s['block_ii_cycles']:,}", f"{s['frame_s'] * 1e3:.3f}",
                     f"{s['weight_bytes'] / 2**30:.2f}", f"{s['kv_bytes'] / 2**30:.2f}",
                     s["hbm_channels"], f"{100 * util:.0f}%", s["binding"]])
    print(table(["board", "type", "blocks", "build", "weights", "block II", "ms/frame",
                 "weights GiB", "KV GiB", "HBM ch", "max util", "bound by"], rows,
                right={0, 5, 6, 7, 8, 9, 10}))
    print()
    if mdl["mode"] == "decode":
        print(f"result   {m['tokens_per_s']:,.1f} tokens/s aggregate ({m['sequences']} "
              f"sequence(s)), {m['tokens_per_s_per_sequence']:,.1f} tokens/s per sequence, "
              f"{m['latency_per_token_s'] * 1e3:.2f} ms per token; limited by {m['binding']}")
        print(f"prompt   {m['prompt_tokens']} tokens: time to first token "
              f"{m['time_to_first_token_s'] * 1e3:,.1f} ms")
        print(f"bound    {m['bound_tokens_per_s']:,.1f} tokens/s = {m['bound']}; this plan "
              f"reaches {100 * m['ratio_to_bound']:.1f}%")
        if m.get("max_sequences_by_kv_capacity") is not None:
            print(f"KV       {m['kv_bytes_per_sequence'] / 2**20:,.0f} MiB per sequence; the "
                  f"HBM left after the weights holds {m['max_sequences_by_kv_capacity']:,}")
    else:
        print(f"result   {m['sequences_per_s']:,.1f} sequences/s ({m['tokens_per_s']:,.0f} "
              f"tokens/s), latency {m['latency_s'] * 1e3:.2f} ms; limited by {m['binding']}")
        if "bound_frames_per_s" in m:
            print(f"bound    {m['bound_frames_per_s']:,.1f} sequences/s = {m['bound']}; this "
                  f"plan reaches {100 * m['ratio_to_bound']:.1f}%")
    if m.get("cost_per_million_tokens") is not None:
        print(f"cost     {m['price_per_hour']:,.2f} $/h, "
              f"{m['cost_per_million_tokens']:,.3f} $ per million tokens")
    if m.get("orders_tried", 0) > 1:
        print(f"order    best of {m['orders_tried']} distinct chain orders")
    if res.out:
        print(f"plan     {res.out / 'llm_plan.json'}")
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from dse import api
    from dse.llm.config import is_config_ref

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if is_config_ref(args.model):
        return _optimize_llm(args, progress)

    res = api.optimize(
        args.model, boards=args.boards, board=args.board, shell=args.shell,
        caps=api.parse_caps(args.cap), clock_mhz=args.clock_mhz, time_limit=args.time_limit,
        strategy=args.strategy, link_gbps=args.link_gbps, link_efficiency=args.link_efficiency,
        topology=args.topology, rx_buffer_bytes=args.rx_buffer_bytes, rx_buffers=args.rx_buffers,
        allow_external=not args.no_external_weights, input_dtype=args.input_dtype,
        minimize_bit_width=not args.no_minimize_bit_width,
        board_order=args.board_order, mvau_wwidth_max=args.mvau_wwidth_max,
        board_files=args.board_file, out=args.out, seed=args.seed, workers=args.workers,
        record_time=not args.reproducible,
        progress=None if (args.quiet or args.json) else progress,
        replicas=args.replicas,
    )
    plan = res.plan
    if args.emit:
        em = api.emit_plan(plan, args.model or api.example_model_path(), args.emit,
                           finn_env=args.finn_env)
        if not args.json:
            print(f"emitted  {len(em.boards)} FINN build dir(s) under {em.out}", file=sys.stderr)
    if args.json:
        print(plan.to_json(), end="")
        return 0
    d = plan.data
    m, s = d["metrics"], d["solver"]
    names = [b["name"] for b in d["boards"]]
    print(f"model    {d['model']['path']}  ({len(d['layers'])} HW layers)")
    hosts = [h for h in res.graph.host_nodes if h.op_type not in ("Quant", "BipolarQuant")]
    if hosts:
        listed = ", ".join(f"{h.op_type} {h.name}" for h in hosts[:4])
        more = f" and {len(hosts) - 4} more" if len(hosts) > 4 else ""
        print(f"host     {listed}{more} stay(s) on the host: {hosts[0].reason}")
    print(f"boards   {d['boards_offered']} offered ({', '.join(sorted(set(names)))}), "
          f"{m['boards_used']} used"
          f"{' (' + str(m['boards_used_total']) + ' with copies)' if m.get('boards_used_total', 0) > m['boards_used'] else ''}"
          f"; clock {d['clock_mhz']:g} MHz; {d['topology']} topology; "
          f"strategy {s['strategy']}")
    print()
    for b in d["boards"]:
        ls = [l for l in d["layers"] if l["board"] == b["index"]]
        r, c = b["resources"], b["capacity"]
        clk = (f" at {b['clock_mhz']:g} MHz" if b.get("clock_mhz") not in (None, d["clock_mhz"])
               else "")
        copies = (f", as {b['replicas']} copies (ranks {b['ranks'][0]}..{b['ranks'][-1]}: "
                  f"{-(-b['ii_cycles'] // b['replicas']):,} cycles per frame together)"
                  if b.get("replicas", 1) > 1 else "")
        print(f"board {b['index']}  {b['name']} ({b['shell']} shell): {len(ls)} layers "
              f"{ls[0]['name']} .. {ls[-1]['name']}, II {b['ii_cycles']:,} cycles{clk}{copies}")
        if b["index"] == 0:
            print("    resource   used / cap (= (device - shell) x FINN's utilization cap)")
        for k in ("lut", "ff", "bram18", "uram", "dsp"):
            print(f"    {k.upper():7s} {r[k]:>12,} / {c[k]:>12,}  {_pct(r[k], c[k])}")
        ext = b["external_memory"]
        if ext["bits"]:
            print(f"    weights in external memory: {ext['bits'] / 8 / 2**20:,.2f} MiB, read at "
                  f"{ext['gbps']:,.2f} GB/s of {ext['capacity_gbps']:,.1f} GB/s")
        if b["accl_buffer_bram18"]:
            kind = "ACCL frame/skip" if d["accl"].get("enabled", True) else "skip-stream"
            print(f"    (includes {b['accl_buffer_bram18']} BRAM18 of {kind} buffers)")
    for ln in d["links"]:
        print(f"link {ln['index']}: {ln['bits_per_frame']:,} bits/frame, "
              f"{100 * ln['utilization']:.1f}% of {d['link']['bandwidth_gbps']:g} Gb/s x "
              f"{d['link']['efficiency']:g}")
    for c in d["cuts"]:
        print(f"    cut {c['src']} -> {c['dst']} (board {c['src_board']} -> {c['dst_board']}): "
              f"{c['bits_per_frame']:,} bits/frame{' (skip stream)' if c['skip'] else ''}")
    print()
    print(f"result   {m['fps']:,.1f} fps (II {m['ii_cycles']:,} cycles at {d['clock_mhz']:g} "
          f"MHz, bottleneck {m['bottleneck']}), latency {m['latency_s'] * 1e3:.4g} ms")
    if m.get("host_io"):
        print(_host_io_line(m["host_io"]))
    if m.get("placeable") is False:
        bad = [b["index"] for b in d["boards"] if b.get("slrs") and not b["slrs"]["feasible"]]
        print(f"warning  board(s) {', '.join(map(str, bad))}: the layers do not fit its SLRs "
              "under FINN's per-SLR limits; FINN would not place this plan (add boards or "
              "lower the caps)")
    rep = m.get("replicas")
    if rep and rep.get("layout") == "segments":
        print(f"replicas board copies {'/'.join(map(str, rep['stage_copies']))} along the "
              f"chain (a board of r copies takes every r-th frame): {rep['fps_total']:,.1f} "
              f"fps on {rep['boards_used_total']} board(s), limited by {rep['bound']}; host "
              f"I/O allows {rep['host_io_fps_per_replica']:,.0f}")
    elif rep and rep.get("per_board", 1) > 1:
        print(f"replicas {rep['count']} copies of this pipeline, {rep['per_board']} per board "
              f"(one SLR group each): {rep['fps_total']:,.1f} fps in total on "
              f"{rep['boards_used_total']} board(s) ({rep['fps_per_replica']:,.1f} each, "
              f"limited by {rep['bound']}; host I/O allows "
              f"{rep['host_io_fps_per_replica']:,.0f} per copy)")
    elif rep:
        print(f"replicas {rep['count']} copies of this {m['boards_used']}-board pipeline: "
              f"{rep['fps_total']:,.1f} fps in total on {rep['boards_used_total']} boards "
              f"({rep['fps_per_replica']:,.1f} each, limited by {rep['bound']}; host I/O "
              f"allows {rep['host_io_fps_per_replica']:,.0f} per copy)")
    if s.get("board_orders"):
        tried = ", ".join(f"{t['order']} {t['fps']:,.0f}" if t["fps"] is not None else
                          f"{t['order']} infeasible" for t in s["board_orders"])
        print(f"order    chosen from {len(s['board_orders'])} board orders (fps): {tried}")
    wall = f", {s['wall_s']:.1f} s" if s["wall_s"] is not None else ""
    print(f"solver   {s['status']}: objective {s['objective']:,.1f} fps, bound "
          f"{s['bound']:,.1f} fps, gap {100 * s['gap']:.2f}%{wall}")
    cut = [p for p in s.get("phases", []) if p["outcome"].startswith("cut short")]
    if args.verbose or cut:
        for p in s.get("phases", []) if args.verbose else cut:
            t = f"{p['wall_s']:.2f} s" if p["wall_s"] is not None else "-"
            print(f"phase    {p['phase']:32s} {t:>9s}  {p['outcome']}")
    if res.plan_path:
        print(f"plan     {res.plan_path}")
    return 0


def _explore_llm(args: argparse.Namespace, progress: Any) -> int:
    from dse import api
    from dse.llm.config import is_config_ref
    from dse.llm.explore import explore_llm

    if not is_config_ref(args.model):
        raise DseError("--devices mixes GPUs and CPUs with FPGAs for LLMs: give --model an "
                       "architecture config (e.g. llama2-7b or config.json)")
    res = explore_llm(args.model, args.devices or f"U55C:{args.boards}", out=args.out,
                      trials=args.trials, seed=args.seed, mode=args.mode, seq=args.seq,
                      context=args.context, sequences=args.sequences, weights=args.weights,
                      acts=args.acts, prices=api.parse_prices(args.price),
                      board_files=tuple(args.board_file or ()),
                      progress=None if args.quiet else progress)
    rows = [[r["chain"], f"{r['tokens_per_s']:,.1f}", f"{r['latency_ms']:.2f}",
             "" if r.get("cost_per_million_tokens") is None else
             f"{r['cost_per_million_tokens']:.3f}", r["binding"]] for r in res["pareto"]]
    print(table(["chain", "tokens/s", "ms/token", "$/Mtok", "limited by"], rows,
                right={1, 2, 3}))
    print(f"\n{len(res['trials'])} trials, {len(res['pareto'])} on the front; "
          f"{res['out'] / 'pareto.csv'}, {res['out'] / 'pareto.png'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from dse.devices import calibrate, load_devices, read_measurements

    cat = load_devices(args.board_file or ())
    dev = cat.get(args.device)
    if dev is None:
        raise DseError(f"--device {args.device!r}: unknown; known devices: "
                       f"{', '.join(cat.devices)} (or define one in a --board-file)")
    rows = read_measurements(args.measurements)
    eff, err = calibrate(dev, rows)
    print(f"device   {dev.name}: {err['rows']} measurement(s)")
    print(f"fit      compute efficiency {eff.compute:.3f}, memory efficiency {eff.memory:.3f}, "
          f"kernel overhead {eff.kernel_overhead_s * 1e6:.2f} us")
    print(f"error    median {100 * err['median_rel_error']:.1f} %, worst "
          f"{100 * err['max_rel_error']:.1f} % (defaults: median "
          f"{100 * err['median_rel_error_before']:.1f} %, worst "
          f"{100 * err['max_rel_error_before']:.1f} %)")
    if args.out:
        from dse.outdir import write_file_atomic

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


def cmd_explore(args: argparse.Namespace) -> int:
    from dse import api
    from dse.llm.config import is_config_ref

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.devices or is_config_ref(args.model):
        return _explore_llm(args, progress)

    lo, _, hi = args.clock_mhz.partition("..")
    try:
        clock = (float(lo), float(hi or lo))
    except ValueError:
        raise DseError(f"--clock-mhz {args.clock_mhz!r}: use a range such as 150..300") from None
    res = api.explore(
        args.model, boards=args.boards, board_types=args.board_types, trials=args.trials,
        storage=args.storage, study=args.study, out=args.out, resume=args.resume,
        seed=args.seed, sampler=args.sampler, clock_range=clock,
        trial_time_limit=args.trial_time_limit, input_dtype=args.input_dtype,
        minimize_bit_width=not args.no_minimize_bit_width,
        board_files=args.board_file, progress=None if args.quiet else progress,
    )
    print(f"study    {res.study_name}: {res.n_trials} trials, {res.n_feasible} feasible")
    print(f"results  {res.out}/trials.csv, pareto.csv, plans/, pareto.png/.svg, provenance.json")
    headers = ["trial", "fps", "boards", "latency ms", "LUT", "boards / clock"]
    body = [[r["trial"], f"{float(r['fps']):,.0f}", int(float(r["boards_used"])),
             f"{1e3 * float(r['latency_s']):.3f}", f"{int(float(r['lut'])):,}",
             f"{r['board_names']} @ {float(r['param_clock_mhz']):g} MHz"] for r in res.pareto]
    print("\nPareto front (FPS max, boards min, latency min, LUT min):")
    print(table(headers, body, right={0, 1, 2, 3, 4}))
    return 0


def cmd_emit(args: argparse.Namespace) -> int:
    from dse import api

    em = api.emit_plan(args.plan, args.model, args.out, finn_env=args.finn_env,
                       bitfile=not args.estimate_only)
    m = em.manifest
    print(f"emitted {len(em.boards)} FINN build directories to {em.out} "
          f"(manifest.json, README.md)")
    for b in m["boards"]:
        print(f"  {b['dir']}: rank {b['rank']} {b['name']}, {len(b['layers'])} layers, "
              f"{len(b['inputs'])} ACCL input(s), {len(b['outputs'])} ACCL output(s)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from dse import api

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = api.build_plan(args.dir, jobs=args.jobs, finn_env=args.finn_env,
                             progress=progress)
    bad = 0
    for r in results:
        print(f"\nrank {r.rank} ({r.dir.name}): {'ok' if r.ok else 'FAILED'} in {r.wall_s:.1f} s"
              + (f" - {r.note}" if r.note else ""))
        if not r.ok:
            print(f"    {r.error} (log: {r.dir / 'build.log'})")
            bad += 1
            continue
        headers = ["FINN node", "cycles plan", "cycles FINN", "LUT plan", "LUT FINN",
                   "BRAM18 plan", "BRAM18 FINN", "URAM plan", "URAM FINN", "DSP plan",
                   "DSP FINN", ""]
        body = []
        for row in r.rows:
            p, f = row["plan"] or {}, row["finn"]
            body.append([row["node"]] + [x for k in ("cycles", "lut", "bram18", "uram", "dsp")
                                         for x in (p.get(k, "-"), f.get(k, "-"))]
                        + ["" if row["match"] else "DIFFERS"])
        print(table(headers, body, right=set(range(1, 11))))
        bad += bool(r.mismatches)
    print(f"\ncomparison written to {Path(args.dir) / 'comparison.json'}")
    if bad:
        print(f"{bad} board(s) failed or disagree with the plan", file=sys.stderr)
        return EXIT_FINN_DISAGREES
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from dse import api

    res = api.verify_build(args.dir, model=args.model, inputs=args.inputs, seed=args.seed,
                           finn_env=args.finn_env,
                           progress=lambda m: print(m, file=sys.stderr, flush=True))
    verdict = "equal" if res.equal else "DIFFERENT"
    print(f"{args.dir}: {res.stages} stage(s) in sequence vs the whole network on "
          f"{res.inputs} random input(s): outputs {verdict} (max |difference| "
          f"{res.max_abs_diff:g})")
    return 0 if res.equal else EXIT_FINN_DISAGREES


def cmd_finn_setup(args: argparse.Namespace) -> int:
    from dse import api

    path = api.finn_setup(args.path, force=args.force,
                          progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from dse import viz
    from dse.outdir import staged_dir

    d = Path(args.dir)
    if not (d / "trials.csv").is_file() and not (d / "plan.json").is_file():
        raise DseError(f"{d}: no trials.csv (dse explore) or plan.json (dse optimize) to plot")
    with staged_dir(d, "plot directory") as tmp:  # figures appear only if all were drawn
        if (d / "trials.csv").is_file():
            written = viz.save_explore_figures(d, out=tmp)
        else:
            written = viz.save_plan_figures(d / "plan.json", tmp)
    for p in written:
        print(d / p.relative_to(tmp))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dse.solver.folding import evaluate_folding, format_report

    res = evaluate_folding(args.model, args.folding, args.board, clock_mhz=args.clock_mhz,
                           input_dtype=args.input_dtype, board_files=args.board_file or ())
    print(res.plan.to_json() if args.json else format_report(res.plan), end="\n" * (
        not args.json))
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from dse import api

    res = api.boards(args.board_file)
    if args.json:
        print(json.dumps(res, indent=1, sort_keys=True))
        return 0
    headers = ["board", "part", "SLRs", "shells", "LUT", "BRAM18", "URAM", "DSP",
               "usable LUT (1 board)", "usable LUT (multi)", "memory", "GB/s", "net Gb/s",
               "MHz"]
    body = [[b["name"], b["part"], b["slrs"], ",".join(b["shells"]),
             _fmt_int(b["device"]["lut"]), _fmt_int(b["device"]["bram18"]), b["device"]["uram"],
             _fmt_int(b["device"]["dsp"]), _fmt_int(b["capacity_single"]["lut"]),
             _fmt_int(b["capacity_multi"]["lut"]), b["memory"], f"{b['memory_gbps']:g}",
             f"{b['network_gbps']:g}", f"{b['default_clock_mhz']:g}"] for b in res]
    print(table(headers, body, right={2, 4, 5, 6, 7, 8, 9, 11, 12, 13}))
    print("\nusable = (device or FINN area - shell overhead of the default shell) x FINN's caps "
          "(LUT 0.7, FF 0.5, BRAM/URAM/DSP 0.8); multi adds the network stack and ACCL; MHz is "
          "the default clock (--clock-mhz or NAME@MHZ sets another).")
    return 0


# ---------------------------------------------------------------------------------------------


EXIT_FINN_DISAGREES = 4  # dse build: FINN failed or its reports differ from the plan


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other dse error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dse",
        description="Map quantized networks onto several FPGA boards with FINN: layer graphs, "
                    "FINN-exact cost models, joint folding + partition optimization.",
    )
    p.add_argument("--version", action="version", version=f"dse {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the Python traceback of an internal error (exit code 3)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("inspect", help="HW-layer table of a network with FINN's estimates")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--part", default="xcu55c-fsvh2892-2L-e", help="FPGA part (default: U55C)")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8 "
                                         "(default: float input, as exported)")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("cost", help="FINN's estimate for one layer, or a CSV of layers")
    s.add_argument("--op", help="op type, e.g. MVAU_hls, ConvolutionInputGenerator_rtl, MVAU")
    s.add_argument("--attrs", help="JSON object of FINN attributes")
    s.add_argument("--part", default=None, help="FPGA part (affects MVAU_rtl DSPs)")
    s.add_argument("--csv", help="batch: CSV with op_type and attribute columns")
    s.add_argument("--out", help="batch output CSV (default: <csv>_estimates.csv)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_cost)

    s = sub.add_parser("optimize", help="joint folding + multi-board partition (CP-SAT)")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--boards", default="1",
                   help="number of boards (of --board) or a list, e.g. U55C,U55C,U280; "
                        "NAME@MHZ gives a board its own clock (U55C@250,U280@200)")
    s.add_argument("--board", default="U55C", help="board type for a count (default U55C)")
    s.add_argument("--shell", help="shell profile: coyote, vitis or zynq (default per board)")
    s.add_argument("--cap", action="append",
                   help="utilization caps, e.g. lut=0.8,bram18=0.9 (default FINN's)")
    s.add_argument("--clock-mhz", type=float, default=None,
                   help="FPGA clock in MHz (default per board: 100 on Zynq-7000 boards, as "
                        "FINN builds them, 200 on the others)")
    s.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    s.add_argument("--strategy", default="joint",
                   choices=STRATEGIES,
                   help="joint (default): folding, boards and SLRs solved together; setfolding: "
                   "FINN's SetFolding + an even split; two-stage: SetFolding + fewest boards; "
                   "elastic-df: SetFolding + Elastic-DF's placement (use --replicas for its "
                   "replicas)")
    s.add_argument("--topology", default="chain", choices=("chain", "switch"))
    s.add_argument("--link-gbps", type=float, default=None,
                   help="link line rate (default: the boards' network port, 100 on Alveo)")
    s.add_argument("--link-efficiency", type=float, default=0.88)
    s.add_argument("--rx-buffer-bytes", type=int, help="ACCL RX buffer size (default 4 MiB)")
    s.add_argument("--rx-buffers", type=int, help="ACCL RX buffer count (default boards + 2)")
    s.add_argument("--no-external-weights", action="store_true",
                   help="keep all weights on chip (no HBM/DDR mem_mode=external)")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--board-order", default="auto", choices=("auto", "given"),
                   help="auto: try every distinct order of the boards and keep the best "
                        "(default); given: keep the order typed")
    s.add_argument("--mvau-wwidth-max", type=int, default=None,
                   help="SetFolding's cap on MVAU weight-stream bits per PE for the baseline "
                        "strategies (default: the best of 36, 64, 128, 256; FINN's own "
                        "default is 36)")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--out", default="dse_out", help="directory for plan.json (default dse_out)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1,
                   help="CP-SAT workers (default 1, reproducible; more: not reproducible)")
    s.add_argument("--reproducible", action="store_true",
                   help="leave wall-clock time out of plan.json (byte-identical reruns)")
    s.add_argument("--json", action="store_true", help="print the plan JSON")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.add_argument("--verbose", action="store_true",
                   help="print the time and outcome of every phase (also kept in plan.json)")
    s.add_argument("--emit", metavar="DIR", help="also write per-board FINN builds to DIR")
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.add_argument("--replicas", default="1",
                   help="data-parallel copies: a count of whole-pipeline copies (each on "
                        "whole boards, or one SLR group of a board: 3 per U55C, as Elastic-DF "
                        "replicates); segments (each board of the chain may run as several "
                        "copies, e.g. a slow first stage on 3 boards, chosen by the solver); "
                        "or auto (the best of all). Default 1")
    g = s.add_argument_group(
        "LLMs from architecture configs (--model llama2-7b, bert-base, ... or config.json)")
    g.add_argument("--mode", choices=("encoder", "prefill", "decode"),
                   help="encoder: a sequence per frame; prefill: the prompt; decode: one token "
                        "per step with the KV cache in HBM (default: decode for decoders, "
                        "encoder otherwise)")
    g.add_argument("--seq", type=int, default=128,
                   help="tokens per frame (encoder, prefill); the prompt for the time to first "
                        "token (decode)")
    g.add_argument("--context", type=int, default=1024, help="cached tokens (decode)")
    g.add_argument("--sequences", type=int, default=1,
                   help="sequences in flight across the pipeline (decode)")
    g.add_argument("--weights", default="int4", help="weight type, e.g. int4 (default), int8")
    g.add_argument("--acts", default="int8", help="activation type (default int8)")
    g.add_argument("--kv", help="KV-cache type (default: --acts)")
    g.add_argument("--group", type=int, default=0,
                   help="weights quantized per group of this many input channels, with a "
                        "16-bit scale per group (default 0: per tensor)")
    g.add_argument("--price", action="append",
                   help="price per hour by board/device name for the cost metric, e.g. "
                        "U55C=1.65,A100-80GB=3.67 (or price_per_hour in a board file)")
    g.add_argument("--hbm-efficiency", type=float, default=0.9,
                   help="fraction of the HBM bandwidth streams reach (default 0.9)")
    s.set_defaults(func=cmd_optimize)

    s = sub.add_parser("evaluate", help="cost a FINN folding config on a board, as a plan")
    s.add_argument("--model", required=True, help="QONNX / FINN-ONNX model")
    s.add_argument("--folding", required=True, help="FINN folding_config.json")
    s.add_argument("--board", required=True, help="catalog board (dse boards)")
    s.add_argument("--clock-mhz", type=float, default=None)
    s.add_argument("--input-dtype", default=None, help="e.g. UINT8 for an image input")
    s.add_argument("--board-file", action="append", default=None)
    s.add_argument("--json", action="store_true", help="the plan JSON")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("emit", help="per-board FINN build directories for a plan")
    s.add_argument("--plan", required=True, help="plan.json from dse optimize")
    s.add_argument("--model", required=True,
                   help="the plan's model: FINN HW graph, or QONNX (lowered by finn-plus)")
    s.add_argument("--out", required=True)
    s.add_argument("--estimate-only", action="store_true",
                   help="configure FINN's estimate-only flow (default: the full flow to "
                        "bitstreams, which dse build runs where Vivado/Vitis is installed)")
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=cmd_emit)

    s = sub.add_parser("build", help="run FINN on emitted builds and compare with the plan")
    s.add_argument("dir")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("verify", help="run the emitted partitions in sequence (FINN's Python "
                                     "execution) and compare with the whole network")
    s.add_argument("dir", help="the dse emit output directory")
    s.add_argument("--model", help="the whole HW-layer graph (default: DIR/finn_hw_graph.onnx)")
    s.add_argument("--inputs", type=int, default=2, help="random inputs (default 2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--finn-env", help="finn-plus environment (default: dse's cache)")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("finn-setup", help="create the finn-plus environment FINN runs in")
    s.add_argument("path", nargs="?", help="where (default: ~/.cache/dse/finn-plus-<ver>)")
    s.add_argument("--force", action="store_true", help="recreate it")
    s.set_defaults(func=cmd_finn_setup)

    s = sub.add_parser("explore", help="Optuna search over boards, clock, caps, weight "
                                      "placement; Pareto fronts")
    s.add_argument("--model", help="QONNX / FINN-ONNX file (default: the bundled example)")
    s.add_argument("--boards", default="1..8", help="board counts: 1..8, 1,2,4 or 4")
    s.add_argument("--board-types", default="U55C", help="board types to mix, e.g. U55C,U280")
    s.add_argument("--trials", type=int, default=40, help="finished trials in the study")
    s.add_argument("--storage", help="Optuna storage URL (e.g. postgresql://...) or a journal "
                                     "file; default DIR/study.journal")
    s.add_argument("--study", help="study name (default dse-<model>)")
    s.add_argument("--out", default="dse_explore")
    s.add_argument("--resume", action="store_true", help="continue the study in DIR")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe"))
    s.add_argument("--clock-mhz", default="150..300", help="clock range (default 150..300)")
    s.add_argument("--trial-time-limit", type=float, default=20.0, help="seconds per trial")
    s.add_argument("--input-dtype", help="declare the graph input integer, e.g. UINT8")
    s.add_argument("--no-minimize-bit-width", action="store_true",
                   help="keep data-type bounds (INT32 accumulators) instead of FINN's "
                        "minimize_bit_width from the weight values")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--quiet", action="store_true")
    g = s.add_argument_group("LLMs over device mixes (--model llama2-7b, config.json)")
    g.add_argument("--devices", help="device types and counts to mix, e.g. "
                                     "U55C:0..8,A100-80GB:0..2,EPYC-9654x2:0..1")
    g.add_argument("--mode", choices=("encoder", "prefill", "decode"))
    g.add_argument("--seq", type=int, default=128)
    g.add_argument("--context", type=int, default=1024)
    g.add_argument("--sequences", type=int, default=8, help="sequences in flight (decode)")
    g.add_argument("--weights", default="int4")
    g.add_argument("--acts", default="int8")
    g.add_argument("--price", action="append", help="NAME=USD_PER_HOUR, e.g. U55C=1.65")
    s.set_defaults(func=cmd_explore)

    s = sub.add_parser("calibrate", help="fit a GPU/CPU's roofline efficiencies to "
                                         "measured step times")
    s.add_argument("--device", required=True, help="device name, e.g. A100-80GB")
    s.add_argument("--measurements", required=True,
                   help="CSV: params, weight_bits, tokens, attn_gops, kv_mb, act_mb, blocks, "
                        "precision, measured_ms (one kernel step per row)")
    s.add_argument("--board-file", action="append", help="device files (TOML or JSON)")
    s.add_argument("--out", help="write the calibrated device as a JSON device file")
    s.set_defaults(func=cmd_calibrate)

    s = sub.add_parser("plot", help="figures of an explore or optimize output directory")
    s.add_argument("dir")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("boards", help="list the board catalog")
    s.add_argument("--board-file", action="append", help="extra boards (TOML or JSON)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_boards)
    return p


def _import_onnxruntime_without_home_cache() -> None:
    """onnxruntime writes a telemetry device id under $XDG_CACHE_HOME (default ~/.cache) when
    it is imported (qonnx imports it); a dse command should not leave files in the user's home,
    so the import happens once, up front, with the cache pointed at a temporary directory."""
    import os
    import tempfile

    if "onnxruntime" in sys.modules:
        return
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="dse-ort-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _import_onnxruntime_without_home_cache()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(args.func(args) or 0)
    except DseError as e:
        kind = {1: "infeasible", 3: "internal error"}.get(e.exit_code, "error")
        print(f"dse {args.command}: {kind}: {e}", file=sys.stderr)
        if args.debug and e.exit_code == 3:
            traceback.print_exc()
        return e.exit_code
    except KeyboardInterrupt:
        print(f"dse {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in dse or a library: not the user's input, not infeasible
        if args.debug:
            traceback.print_exc()
        where = f" ({str(e).splitlines()[0][:200]})" if str(e) else ""
        print(f"dse {args.command}: internal error: {type(e).__name__}{where}; rerun with "
              "--debug for the traceback and please report it", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
