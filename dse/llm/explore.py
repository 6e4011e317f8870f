"""Exploring device mixes for an LLM: ``dse explore --model llama2-7b --devices
U55C:0..8,A100-80GB:0..2,EPYC-9654x2:0..1``.

A seeded Optuna search (NSGA-II) samples a count per device type, solves each mix exactly
(``dse.llm.pipeline``, the chain order chosen), and keeps the Pareto front of aggregate
tokens/s (max), cost per million tokens (min, where prices are known) and latency per token
(min). Every trial, feasible or not, is a row of ``trials.csv``; the front is ``pareto.csv``
and ``pareto.png``.

Nothing finished is lost: every trial is appended to ``trials.jsonl`` in ``--out`` as it
ends, Ctrl-C writes the tables of the finished trials before it stops, and ``--resume``
replays the finished trials into the same seeded sampler (no solving) and continues.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

from dse.devices.chain import device_chain
from dse.exceptions import InfeasibleError, SpecError
from dse.interrupts import StopRequest, stop_on_sigint
from dse.llm.run import optimize_llm

SPEC = re.compile(r"^\s*([^:\s]+)\s*:\s*(\d+)\s*(?:\.\.\s*(\d+))?\s*$")
JOURNAL = "trials.jsonl"


def parse_devices(spec: str) -> list[tuple[str, int, int]]:
    """``U55C:0..8,A100-80GB:0..2`` -> [(name, lo, hi), ...]."""
    out: list[tuple[str, int, int]] = []
    for part in str(spec).split(","):
        if not part.strip():
            continue
        m = SPEC.match(part)
        if not m or not part.isascii():
            raise SpecError(f"--devices {part!r}: use NAME:LO..HI or NAME:N, e.g. U55C:0..8")
        lo = int(m.group(2))
        hi = int(m.group(3)) if m.group(3) is not None else lo
        if hi < lo or hi > 64:
            raise SpecError(f"--devices {part!r}: need 0 <= LO <= HI <= 64")
        if any(n.lower() == m.group(1).lower() for n, _, _ in out):
            raise SpecError(f"--devices {spec!r}: {m.group(1)} is given twice; give one "
                            "range per device type")
        out.append((m.group(1), lo, hi))
    if not out or sum(hi for _, _, hi in out) == 0:
        raise SpecError(f"--devices {spec!r}: at least one device must be possible")
    if sum(hi for _, _, hi in out) > 64:
        raise SpecError(f"--devices {spec!r}: at most 64 devices in one chain (the ranges' "
                        f"upper ends add up to {sum(hi for _, _, hi in out)})")
    return out


def explore_llm(model: str, devices: str, *, out: str | Path, trials: int = 30, seed: int = 0,
                mode: str | None = None, seq: int = 128, context: int = 1024,
                sequences: int = 8, weights: str = "int4", acts: str = "int8",
                kv: str | None = None, prices: dict[str, float] | None = None,
                board_files: tuple = (), progress: Any = None, resume: bool = False
                ) -> dict[str, Any]:
    import optuna

    from dse.outdir import check_out_dir
    from dse.schemas import check_options
    from dse.schemas_llm import LLMOptions

    check_options(LLMOptions, dict(seq=seq, context=context, sequences=sequences,
                                   trials=trials))
    ranges = parse_devices(devices)
    device_chain([n for n, _, hi in ranges if hi], board_files, prices=prices)
    outp = check_out_dir(Path(out), files=("trials.csv", "pareto.csv", "pareto.png",
                                            JOURNAL))
    done = _finished(outp, ranges, resume)
    created = not outp.exists()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=seed))
    rows: list[dict[str, Any]] = []
    seen: dict[tuple, dict] = {}

    def solve(names: list[str]) -> dict[str, Any]:
        try:
            d = optimize_llm(model, boards=",".join(names), mode=mode, seq=seq,
                                 context=context, sequences=sequences, weights=weights,
                                 acts=acts, kv=kv, prices=prices, board_files=board_files,
                                 order="auto").data
        except InfeasibleError as e:
            return {"feasible": False, "reason": str(e)}
        m = d["metrics"]
        return {"feasible": True, "tokens_per_s": m["tokens_per_s"],
                "latency_ms": 1e3 * m.get("latency_per_token_s", m["latency_s"]),
                "cost_per_million_tokens": m.get("cost_per_million_tokens"),
                "binding": m["binding"], "devices_used": m["boards_used"],
                "chain": " > ".join(s["board"] for s in d["stages"]), "reason": ""}

    req = StopRequest()
    try:
        with stop_on_sigint(None, progress) as req:
            for t in range(trials):
                if req.requested:
                    break
                row = _trial(study, t, ranges, done, seen, solve, req)
                _tell(study, row["_trial"], row)
                del row["_trial"]
                if t >= len(done):
                    _append(outp, row)  # first the journal: a row in a table is in it too
                rows.append(row)
                if progress:
                    progress(_progress_line(t, row, t < len(done)))
    except KeyboardInterrupt:  # a second Ctrl-C, inside a trial's solve
        req.requested = True
    if req.requested:
        if rows:
            _write_tables(outp, ranges, rows)
        raise KeyboardInterrupt
    if not any(r.get("feasible") for r in rows):
        if not done:  # a fresh run that found nothing leaves --out as it was
            (outp / JOURNAL).unlink(missing_ok=True)
            if created:
                shutil.rmtree(outp, ignore_errors=True)
        reasons = sorted({r["reason"] for r in rows if r.get("reason")})
        raise InfeasibleError(f"--devices {devices}: no sampled mix runs {model} "
                              f"({reasons[0] if reasons else 'no device'})")
    front = _write_tables(outp, ranges, rows)
    return {"out": outp, "trials": rows, "pareto": front}


def _trial(study: Any, t: int, ranges: list[tuple[str, int, int]], done: list[dict],
           seen: dict[tuple, dict], solve: Any, req: StopRequest) -> dict[str, Any]:
    """Trial ``t``: sampled, then replayed (finished before), reused (same mix) or solved."""
    trial = study.ask()
    counts = {n: trial.suggest_int(n, lo, hi) for n, lo, hi in ranges}
    key = tuple(sorted(counts.items()))
    names = [n for n, c in counts.items() for _ in range(c)]
    row: dict[str, Any] = {"trial": t, **{f"n_{n}": c for n, c in counts.items()}}
    if t < len(done):
        _same_counts(done[t], row)
        row = dict(done[t])
    elif key in seen:
        row.update(seen[key])
    elif not names:
        row.update(feasible=False, reason="no device")
    else:
        with req.work(t):
            row.update(solve(names))
    seen[key] = {k: v for k, v in row.items() if k != "trial" and not k.startswith("n_")}
    return {**row, "_trial": trial}


def _progress_line(t: int, row: dict[str, Any], replayed: bool) -> str:
    mix = ", ".join(f"{c}x{k[2:]}" for k, c in row.items() if k.startswith("n_") and c) or "-"
    tag = " (finished before)" if replayed else ""
    if row.get("feasible"):
        return f"trial {t}: {mix} -> {row['tokens_per_s']:,.1f} tokens/s{tag}"
    return f"trial {t}: {mix}: infeasible ({str(row.get('reason', ''))[:80]}){tag}"


def _tell(study: Any, trial: Any, row: dict[str, Any]) -> None:
    import optuna

    if row.get("feasible"):
        cost = row.get("cost_per_million_tokens")
        study.tell(trial, [row["tokens_per_s"], cost if cost is not None else 0.0,
                           row["latency_ms"]])
    else:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def _append(outp: Path, row: dict[str, Any]) -> None:
    """One finished trial, appended and flushed (a crash loses at most the running one)."""
    import os

    outp.mkdir(parents=True, exist_ok=True)
    with open(outp / JOURNAL, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _finished(outp: Path, ranges: list[tuple[str, int, int]], resume: bool
              ) -> list[dict[str, Any]]:
    """The finished trials of an earlier run in ``outp`` (``--resume``), in order."""
    journal = outp / JOURNAL
    if not resume:
        if journal.exists():
            raise SpecError(f"{outp} already holds an LLM exploration ({JOURNAL}); pass "
                            "--resume to continue it, or choose another --out")
        return []
    if not journal.is_file():
        raise SpecError(f"--resume: no exploration to continue in {outp} (no {JOURNAL}); run "
                        "without --resume to start one")
    rows = []
    try:
        for line in journal.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # a line cut by a crash ends the finished trials; anything else is not ours
        if not rows:
            raise SpecError(f"{journal}: not a dse exploration journal") from None
    want = {f"n_{n}" for n, _, _ in ranges}
    if rows and (not all(isinstance(r, dict) for r in rows)
                 or {k for k in rows[0] if k.startswith("n_")} != want):
        raise SpecError(f"--resume: {journal} was explored over other --devices; give the "
                        "same --devices (and --seed) to continue it")
    return rows


def _same_counts(old: dict[str, Any], new: dict[str, Any]) -> None:
    if any(old.get(k) != v for k, v in new.items() if k.startswith("n_")):
        raise SpecError("--resume: the sampler draws other mixes than the finished trials "
                        "(was --seed or --devices changed?); give the same ones")


def _write_tables(outp: Path, ranges: list[tuple[str, int, int]], rows: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    from dse.outdir import staged_dir
    from dse.viz import dominates

    cols = ["trial", *[f"n_{n}" for n, _, _ in ranges], "feasible", "tokens_per_s",
            "latency_ms", "cost_per_million_tokens", "devices_used", "chain", "binding",
            "reason"]
    keys = [("tokens_per_s", 1), ("latency_ms", -1)]
    feas = [r for r in rows if r.get("feasible")]
    if all(r.get("cost_per_million_tokens") is not None for r in feas):
        keys.append(("cost_per_million_tokens", -1))
    uniq = list({r["chain"]: r for r in feas}.values())
    front = [r for r in uniq if not any(dominates(o, r, keys) for o in uniq)]  # viz's filter
    front.sort(key=lambda r: -r["tokens_per_s"])
    with staged_dir(outp) as tmp:  # the tables and the figure together, or none of them
        _write_csv(tmp / "trials.csv", cols, rows)
        _write_csv(tmp / "pareto.csv", cols, front)
        if feas:
            _plot(tmp, feas, front, "cost_per_million_tokens" if len(keys) == 3
                  else "latency_ms")
    return front


def _write_csv(path: Path, cols: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _plot(out: Path, feas: list[dict], front: list[dict], y: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))  # no pyplot state, no GUI backend
    ax = fig.subplots()
    ax.scatter([r["tokens_per_s"] for r in feas], [r[y] for r in feas], s=14, c="#bbbbbb",
               label="trials")
    ax.plot([r["tokens_per_s"] for r in front], [r[y] for r in front], "o-", c="#d1495b",
            label="Pareto front")
    for r in front:
        ax.annotate(r["chain"].replace(" > ", ">"), (r["tokens_per_s"], r[y]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("aggregate tokens/s")
    ax.set_ylabel({"cost_per_million_tokens": "$ per million tokens",
                   "latency_ms": "latency per token (ms)"}[y])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=130)


__all__ = ["explore_llm", "parse_devices"]
