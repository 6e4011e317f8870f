"""``dse optimize``: a network file or an LLM architecture over a chain of devices."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from dse import api
from dse.chain.plan import from_llm
from dse.cli.flags import check_flags
from dse.cli.render import Progress, pct, progress_to_stderr, table
from dse.llm.config import is_config_ref
from dse.llm.run import LLMResult
from dse.optimize import OptimizeResult
from dse.option_checks import (
    check_emit_ready,
    default_replicas,
    llm_args,
    restore_on_failure,
)
from dse.specs.parse import parse_boards, parse_caps, parse_prices


def _ms(v: float | None) -> float | None:
    return None if v is None else v / 1e3


def _optimize_llm(args: argparse.Namespace, progress: Progress) -> int:
    args = llm_args(args, sequences_default=1)
    res = api.optimize_llm(
        args.model, boards=args.boards, board=args.board, shell=args.shell,
        caps=parse_caps(args.cap), clock_mhz=args.clock_mhz, mode=args.mode,
        seq=args.seq, context=args.context, sequences=args.sequences, weights=args.weights,
        acts=args.acts, kv=args.kv, group=args.group, rotation=args.rotation,
        expand=args.expand, hbm_efficiency=args.hbm_efficiency,
        board_files=args.board_file or (), out=args.out,
        prices=parse_prices(args.price), order=args.board_order, topology=args.topology,
        time_limit=args.time_limit, progress=None if (args.quiet or args.json) else progress,
        max_latency_s=_ms(args.max_latency), max_ttft_s=_ms(args.max_ttft))
    if args.emit:  # the configs only: a config has no weights (dse emit --model binds them)
        em = api.emit_plan(from_llm(res.data), None, args.emit)
        if not args.json:
            print(f"emitted  {len(em.boards)} FINN build dir(s) under {em.out} (configs "
                  "only, weights not bound)", file=sys.stderr)
    if args.json:
        print(from_llm(res.data).to_json(), end="")  # the plan file's chain format
        return 0
    render_llm(res)
    return 0


def render_llm(res: LLMResult) -> None:
    """The LLM plan: the model, the frame, one row per stage, the result and its bound."""
    d = res.data
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
    for x in m.get("left_out", []):
        print(f"left out {x['count']} x {x['device']}: {x['why']}")
    for a in d.get("assumed", []):
        vals = ", ".join(f"{k} {v:g}" for k, v in a.items()
                         if k not in ("device", "source") and isinstance(v, (int, float)))
        print(f"assumed  {a['device']}: {vals} ({a['source']})")
    if res.out:
        print(f"plan     {res.out / 'plan.json'}")


def cmd_optimize(args: argparse.Namespace) -> int:
    llm = is_config_ref(args.model)
    check_flags("optimize", "llm" if llm else "cnn", args)  # none silently ignored
    if llm:
        return _optimize_llm(args, progress_to_stderr)
    if args.emit:  # finn-plus missing: say so before anything is written
        check_emit_ready(args.model, args.finn_env)
    replicas = default_replicas(args.replicas, parse_boards(args.boards, args.board))
    with (restore_on_failure([Path(args.out) / "plan.json"]) if args.emit
          else contextlib.nullcontext()):
        return _optimize_onnx(args, replicas)


def _optimize_onnx(args: argparse.Namespace, replicas: str) -> int:
    res = api.optimize(
        args.model, boards=args.boards, board=args.board, shell=args.shell,
        caps=parse_caps(args.cap), clock_mhz=args.clock_mhz, time_limit=args.time_limit,
        strategy=args.strategy, link_gbps=args.link_gbps, link_efficiency=args.link_efficiency,
        topology=args.topology, rx_buffer_bytes=args.rx_buffer_bytes, rx_buffers=args.rx_buffers,
        allow_external=not args.no_external_weights, input_dtype=args.input_dtype,
        minimize_bit_width=not args.no_minimize_bit_width,
        board_order=args.board_order, mvau_wwidth_max=args.mvau_wwidth_max,
        board_files=args.board_file, out=args.out, seed=args.seed, workers=args.workers,
        record_time=not args.reproducible,
        progress=None if (args.quiet or args.json) else progress_to_stderr,
        replicas=replicas, batch=args.batch,
    )
    plan = res.plan
    if args.emit:
        em = api.emit_plan(plan, args.model or api.example_model_path(), args.emit,
                           finn_env=args.finn_env)
        if not args.json:
            print(f"emitted  {len(em.boards)} FINN build dir(s) under {em.out}", file=sys.stderr)
    if args.json:
        print(plan.chain().to_json(), end="")  # the plan file's chain format
        return 0
    render_plan(res, verbose=args.verbose)
    return 0


def render_plan(res: OptimizeResult, *, verbose: bool) -> None:
    """The plan: the boards with their layers and resources, links and cuts, the result, the
    replicas, the board orders tried and the solver's status."""
    d = res.plan.data
    m, s = d["metrics"], d["solver"]
    names = [b["name"] for b in d["boards"]]
    print(f"model    {d['model']['path']}  ({len(d['layers'])} HW layers)")
    hosts = [h for h in res.graph.host_nodes if h.op_type not in ("Quant", "BipolarQuant")]
    if hosts:
        listed = ", ".join(f"{h.op_type} {h.name}" for h in hosts[:4])
        more = f" and {len(hosts) - 4} more" if len(hosts) > 4 else ""
        print(f"host     {listed}{more} stay(s) on the host: {hosts[0].reason}")
    for h in d.get("host_stages", []):  # on a GPU/CPU offered in --boards (dse.chain.host)
        print(f"host     stage on {h['device']} ({h['position']}): {h['frame_s'] * 1e6:,.1f} us "
              f"per frame, {h['binding']}; {h['link_s'] * 1e6:,.1f} us through host memory")
    if d.get("host_devices_offered") and not d.get("host_stages"):
        print(f"host     {', '.join(d['host_devices_offered'])} offered, not needed: FINN "
              "maps every layer of this network")
    total = m.get("boards_used_total", 0)
    copies = f" ({total} with copies)" if total > m["boards_used"] else ""
    rep = m.get("replicas") or {}
    offered = d["boards_offered"]
    if rep.get("layout") in ("pipelines", "slr_groups"):  # the plan below is one copy's
        offered, copies = rep.get("boards_offered", offered), " by each copy"
    print(f"boards   {offered} offered ({', '.join(sorted(set(names)))}), "
          f"{m['boards_used']} used{copies}"
          f"; clock {d['clock_mhz']:g} MHz; {d['topology']} topology; "
          f"strategy {s['strategy']}")
    print()
    for b in d["boards"]:
        ls = [x for x in d["layers"] if x["board"] == b["index"]]
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
            print(f"    {k.upper():7s} {r[k]:>12,} / {c[k]:>12,}  {pct(r[k], c[k])}")
        ext = b["external_memory"]
        if ext["bits"]:
            print(f"    weights in external memory: {ext['bits'] / 8 / 2**20:,.2f} MiB, read at "
                  f"{ext['gbps']:,.2f} GB/s of {ext['capacity_gbps']:,.1f} GB/s")
        if b["accl_buffer_bram18"]:
            kind = "ACCL frame/skip" if d["accl"].get("enabled", True) else "skip-stream"
            print(f"    (includes {b['accl_buffer_bram18']} BRAM18 of {kind} buffers)")
    for ln in d["links"]:
        print(f"link {ln['index']}: {ln['bits_per_frame']:,} bits/frame, "
              + (f"{100 * ln['utilization']:.1f}% of the frame time (ACCL+ RDMA message "
                 "curve, one message per stream)"
                 if d["link"].get("model") == "accl-rdma-curve" else
                 f"{100 * ln['utilization']:.1f}% of {d['link']['bandwidth_gbps']:g} Gb/s x "
                 f"{d['link']['efficiency']:g}"))
    for c in d["cuts"]:
        print(f"    cut {c['src']} -> {c['dst']} (board {c['src_board']} -> {c['dst_board']}): "
              f"{c['bits_per_frame']:,} bits/frame{' (skip stream)' if c['skip'] else ''}")
    print()
    print(f"result   {m['fps']:,.1f} fps (II {m['ii_cycles']:,} cycles at {d['clock_mhz']:g} "
          f"MHz, bottleneck {m['bottleneck']}), latency {m['latency_s'] * 1e3:.4g} ms")
    if m.get("host_io"):
        from dse.solver.hostio import describe

        print(describe(m["host_io"]))
    if m.get("batch"):
        from dse.solver.hostio import describe_batch

        print(describe_batch(m["batch"]))
    if m.get("fits_as_built") is False:
        print("warning  with the FIFOs and width converters FINN adds, a board exceeds its "
              "caps (boards[].resources_as_built)")
    if d.get("host_stages"):  # the whole chain, host stage(s) included
        cm = res.plan.chain().metrics
        print(f"chain    {cm.frames_per_s:,.1f} fps with the host stage(s), limited by "
              f"{cm.binding}; latency {cm.latency_s * 1e3:.4g} ms")
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
    if verbose or cut:
        for p in s.get("phases", []) if verbose else cut:
            t = f"{p['wall_s']:.2f} s" if p["wall_s"] is not None else "-"
            print(f"phase    {p['phase']:32s} {t:>9s}  {p['outcome']}")
    if res.plan_path:
        print(f"plan     {res.plan_path}")
