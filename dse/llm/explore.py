"""Exploring device mixes for an LLM: ``dse explore --model llama2-7b --devices
U55C:0..8,A100-80GB:0..2,EPYC-9654x2:0..1``.

A seeded Optuna search (NSGA-II) samples a count per device type, solves each mix exactly
(``dse.llm.pipeline``, the chain order chosen), and keeps the Pareto front of aggregate
tokens/s (max), cost per million tokens (min, where prices are known) and latency per token
(min). Every trial, feasible or not, is a row of ``trials.csv``; the front is ``pareto.csv``
and ``pareto.png``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from dse.devices.chain import device_chain
from dse.exceptions import DseError, SpecError
from dse.llm.run import optimize_llm

SPEC = re.compile(r"^\s*([^:\s]+)\s*:\s*(\d+)\s*(?:\.\.\s*(\d+))?\s*$")


def parse_devices(spec: str) -> list[tuple[str, int, int]]:
    """``U55C:0..8,A100-80GB:0..2`` -> [(name, lo, hi), ...]."""
    out = []
    for part in str(spec).split(","):
        if not part.strip():
            continue
        m = SPEC.match(part)
        if not m:
            raise SpecError(f"--devices {part!r}: use NAME:LO..HI or NAME:N, e.g. U55C:0..8")
        lo = int(m.group(2))
        hi = int(m.group(3)) if m.group(3) is not None else lo
        if hi < lo or hi > 64:
            raise SpecError(f"--devices {part!r}: need 0 <= LO <= HI <= 64")
        out.append((m.group(1), lo, hi))
    if not out or sum(hi for _, _, hi in out) == 0:
        raise SpecError(f"--devices {spec!r}: at least one device must be possible")
    return out


def dominates(a: dict, b: dict, keys: list[tuple[str, int]]) -> bool:
    better = False
    for k, sense in keys:
        x, y = a[k] * sense, b[k] * sense
        if x < y:
            return False
        better |= x > y
    return better


def explore_llm(model: str, devices: str, *, out: str | Path, trials: int = 30, seed: int = 0,
                mode: str | None = None, seq: int = 128, context: int = 1024,
                sequences: int = 8, weights: str = "int4", acts: str = "int8",
                kv: str | None = None, prices: dict[str, float] | None = None,
                board_files: tuple = (), progress: Any = None) -> dict[str, Any]:
    import optuna

    from dse.outdir import check_out_dir, write_file_atomic

    ranges = parse_devices(devices)
    device_chain([n for n, _, hi in ranges if hi], board_files)  # names exist
    outp = check_out_dir(Path(out))
    outp.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=seed))
    rows: list[dict[str, Any]] = []
    seen: dict[tuple, dict] = {}
    for t in range(trials):
        trial = study.ask()
        counts = {n: trial.suggest_int(n, lo, hi) for n, lo, hi in ranges}
        key = tuple(sorted(counts.items()))
        names = [n for n, c in counts.items() for _ in range(c)]
        row: dict[str, Any] = {"trial": t, **{f"n_{n}": c for n, c in counts.items()}}
        if key in seen:
            row.update(seen[key])
        elif not names:
            row.update(feasible=False, reason="no device")
        else:
            try:
                d = optimize_llm(model, boards=",".join(names), mode=mode, seq=seq,
                                     context=context, sequences=sequences, weights=weights,
                                     acts=acts, kv=kv, prices=prices, board_files=board_files,
                                     order="auto").data
                m = d["metrics"]
                row.update(feasible=True, tokens_per_s=m["tokens_per_s"],
                           latency_ms=1e3 * m.get("latency_per_token_s", m["latency_s"]),
                           cost_per_million_tokens=m.get("cost_per_million_tokens"),
                           binding=m["binding"], devices_used=m["boards_used"],
                           chain=" > ".join(s["board"] for s in d["stages"]), reason="")
            except DseError as e:
                row.update(feasible=False, reason=str(e))
            seen[key] = {k: v for k, v in row.items() if k != "trial"
                         and not k.startswith("n_")}
        if row.get("feasible"):
            cost = row.get("cost_per_million_tokens")
            study.tell(trial, [row["tokens_per_s"], cost if cost is not None else 0.0,
                               row["latency_ms"]])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        rows.append(row)
        if progress:
            progress(f"trial {t}: {names and ', '.join(f'{c}x{n}' for n, c in counts.items() if c) or '-'}"
                     f" -> {row.get('tokens_per_s', 0):,.1f} tokens/s"
                     if row.get("feasible") else f"trial {t}: infeasible ({row['reason'][:80]})")
    cols = ["trial", *[f"n_{n}" for n, _, _ in ranges], "feasible", "tokens_per_s",
            "latency_ms", "cost_per_million_tokens", "devices_used", "chain", "binding",
            "reason"]
    _write_csv(outp / "trials.csv", cols, rows, write_file_atomic)
    keys = [("tokens_per_s", 1), ("latency_ms", -1)]
    if all(r.get("cost_per_million_tokens") is not None for r in rows if r.get("feasible")):
        keys.append(("cost_per_million_tokens", -1))
    feas = [r for r in rows if r.get("feasible")]
    uniq = list({r["chain"]: r for r in feas}.values())
    front = [r for r in uniq if not any(dominates(o, r, keys) for o in uniq)]
    front.sort(key=lambda r: -r["tokens_per_s"])
    _write_csv(outp / "pareto.csv", cols, front, write_file_atomic)
    _plot(outp, feas, front, "cost_per_million_tokens" if len(keys) == 3 else "latency_ms")
    return {"out": outp, "trials": rows, "pareto": front}


def _write_csv(path: Path, cols: list[str], rows: list[dict], write: Any) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write(path, buf.getvalue())


def _plot(out: Path, feas: list[dict], front: list[dict], y: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
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
    tmp = out / "pareto.tmp.png"
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    tmp.replace(out / "pareto.png")
