"""The FINN commands: ``dse emit``, ``dse build``, ``dse verify``, ``dse finn-setup``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dse import api
from dse.cli.render import progress_to_stderr, table

EXIT_FINN_DISAGREES = 4  # dse build: FINN failed or its reports differ from the plan


def cmd_emit(args: argparse.Namespace) -> int:
    em = api.emit_plan(args.plan, args.model, args.out, finn_env=args.finn_env,
                       bitfile=not args.estimate_only, board_files=args.board_file or ())
    m = em.manifest
    print(f"emitted {len(em.boards)} FINN build directories to {em.out} "
          f"(manifest.json, README.md)")
    for b in m["boards"]:
        what = (f"blocks {b['blocks']}{' + head' if 'head' in b['parts'] else ''}, "
                f"{b['style']}" if m.get("network") == "llm" else f"{len(b['layers'])} layers")
        print(f"  {b['dir']}: rank {b['rank']} {b['name']}, {what}, "
              f"{len(b['inputs'])} ACCL input(s), {len(b['outputs'])} ACCL output(s)")
    for s in m.get("not_finn", ()):
        print(f"  stage {s['stage']} ({s['kind']} {s['device']}, blocks {s['blocks']}): not a "
              "FINN build")
    for note in m.get("notes", ()):
        print(f"  note: {note}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    results = api.build_plan(args.dir, jobs=args.jobs, finn_env=args.finn_env,
                             progress=progress_to_stderr)
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
    res = api.verify_build(args.dir, model=args.model, inputs=args.inputs, seed=args.seed,
                           finn_env=args.finn_env,
                           progress=progress_to_stderr)
    verdict = "equal" if res.equal else "DIFFERENT"
    print(f"{args.dir}: {res.stages} stage(s) in sequence vs the whole network on "
          f"{res.inputs} random input(s): outputs {verdict} (max |difference| "
          f"{res.max_abs_diff:g})")
    return 0 if res.equal else EXIT_FINN_DISAGREES


def cmd_finn_setup(args: argparse.Namespace) -> int:
    path = api.finn_setup(args.path, force=args.force,
                          progress=progress_to_stderr)
    print(path)
    return 0
