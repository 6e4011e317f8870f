"""The LLM entry point: an architecture config over a chain of devices, solved by the block
DP (dse.llm.pipeline), written as ``plan.json`` in the chain format (dse.chain.plan)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.chain.plan import from_llm
from dse.devices.chain import device_chain
from dse.exceptions import SpecError
from dse.llm.config import load_arch, quant_spec
from dse.llm.network import build_network
from dse.llm.pipeline import LLMPlan, plan_dict
from dse.llm.pipeline import optimize_llm as _opt
from dse.outdir import check_out_dir
from dse.specs.parse import parse_boards
from dse.timebound import time_bound


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMResult:
    plan: LLMPlan
    data: dict[str, Any]
    out: Path | None


def optimize_llm(model: str | Path, *, boards: str | int | None = 1, board: str = "U55C",
                 shell: str | None = None, caps: Mapping[str, float] | None = None,
                 clock_mhz: float | None = None, mode: str | None = None, seq: int = 128,
                 context: int = 1024, sequences: int = 1, weights: str = "int4",
                 acts: str = "int8", kv: str | None = None, group: int = 0,
                 rotation: str = "none", expand: float = 0.0, hbm_efficiency: float = 0.9,
                 board_files: Sequence[str | Path] = (), out: str | Path | None = None,
                 prices: Mapping[str, float] | None = None, order: str = "auto",
                 topology: str = "chain", time_limit: float | None = None,
                 progress: Callable[[str], None] | None = None,
                 max_latency_s: float | None = None,
                 max_ttft_s: float | None = None) -> LLMResult:
    """An LLM from its architecture config (a shipped name such as ``llama2-7b`` or a Hugging
    Face ``config.json``) over a chain of boards: split, build style, folding and metrics.
    ``time_limit`` (seconds) bounds the whole run, as ``--time-limit`` does for CNNs: past it
    there is no plan (``InfeasibleError``)."""
    if time_limit is not None and not time_limit > 0:
        raise SpecError(f"--time-limit {time_limit:g}: give a positive number of seconds")
    with time_bound(time_limit or 0.0, f"{model}"):
        return _optimize_llm(model, boards=boards, board=board, shell=shell, caps=caps,
                             clock_mhz=clock_mhz, mode=mode, seq=seq, context=context,
                             sequences=sequences, weights=weights, acts=acts, kv=kv,
                             group=group, rotation=rotation, expand=expand,
                             hbm_efficiency=hbm_efficiency,
                             board_files=board_files, out=out, prices=prices, order=order,
                             topology=topology, progress=progress,
                             max_latency_s=max_latency_s, max_ttft_s=max_ttft_s)


def _optimize_llm(model: str | Path, *, boards: str | int | None, board: str,
                  shell: str | None, caps: Mapping[str, float] | None,
                  clock_mhz: float | None, mode: str | None, seq: int, context: int,
                  sequences: int, weights: str, acts: str, kv: str | None, group: int,
                  rotation: str, expand: float, hbm_efficiency: float,
                  board_files: Sequence[str | Path],
                  out: str | Path | None, prices: Mapping[str, float] | None, order: str,
                  topology: str, progress: Callable[[str], None] | None,
                  max_latency_s: float | None = None,
                  max_ttft_s: float | None = None) -> LLMResult:
    if not 0 < hbm_efficiency <= 1:
        raise SpecError(f"--hbm-efficiency {hbm_efficiency}: give a fraction in (0, 1]")
    arch = load_arch(model)
    q = quant_spec(weights, acts, kv, group, rotation=rotation, expand=expand)
    mode = mode or ("encoder" if not arch.causal else "decode")
    chain = device_chain(parse_boards(boards, board), board_files, shell=shell, caps=caps,
                         clock_mhz=clock_mhz, prices=prices)
    if out is not None:
        check_out_dir(out, files=("plan.json",))
    net = build_network(arch, q, mode, seq=seq, context=context)
    if progress:
        progress(f"[{net.build_s:6.2f}s] {arch.name}: {net.n_blocks} blocks of "
                 f"{len(net.stacks[0].block.layers)} HW layers ({mode}, "
                 f"{arch.params() / 1e9:.2f} B parameters)")
    if topology not in ("chain", "switch"):
        raise SpecError(f"--topology {topology!r}: choose chain or switch")
    for what, v in (("--max-latency", max_latency_s), ("--max-ttft", max_ttft_s)):
        if v is not None and not v > 0:
            raise SpecError(f"{what} {v}: give a positive time in ms")
    plan = _opt(net, chain, sequences=sequences, efficiency=hbm_efficiency, prompt=seq,
                order=order, topology=topology, max_latency_s=max_latency_s,
                max_ttft_s=max_ttft_s)
    data = plan_dict(plan)
    path = None
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        from_llm(data).save(path / "plan.json")  # the chain format (dse.chain.plan)
    return LLMResult(plan=plan, data=data, out=path)
