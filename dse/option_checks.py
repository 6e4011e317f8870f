"""Command-line options of a run, before any work: the LLM options' defaults and their
numbers validated by the schemas (:mod:`dse.schemas`, :mod:`dse.schemas_llm`), each blamed on
its own option (which flags apply to which network is ``dse.cli.flags``); the default replica
layout; ``--emit``'s finn-plus checked before anything is written.

The LLM-only options have no argparse default (None = not given); :data:`LLM_DEFAULTS` fills
them in for an LLM run.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: option (argparse dest) -> default for LLM configs (``dse optimize`` / ``dse explore``)
LLM_DEFAULTS: dict[str, Any] = {"mode": None, "seq": 128, "context": 1024, "weights": "int4",
                                "acts": "int8", "kv": None, "group": 0, "price": None,
                                "hbm_efficiency": 0.9}
def llm_args(args: argparse.Namespace, *, sequences_default: int) -> argparse.Namespace:
    """``dse optimize``/``explore`` on an LLM config: the LLM defaults filled in, every number
    validated (one line naming the option)."""
    from dse.schemas import OptimizeOptions, check_options
    from dse.schemas_llm import LLMOptions

    filled = argparse.Namespace(**vars(args))
    for k, v in LLM_DEFAULTS.items():
        if getattr(filled, k, None) is None:
            setattr(filled, k, v)
    if getattr(filled, "sequences", None) is None:
        filled.sequences = sequences_default
    check_options(LLMOptions, {k: getattr(filled, k, None) for k in
                               ("seq", "context", "sequences", "group", "hbm_efficiency")})
    check_options(OptimizeOptions, {k: getattr(filled, k) for k in
                                    ("time_limit", "clock_mhz", "link_gbps", "seed")
                                    if not isinstance(getattr(filled, k, ""), str)})
    return filled


def default_replicas(replicas: str | None, boards: list[str]) -> str:
    """``--replicas`` not given: ``auto`` (the best layout for the boards offered: whole
    pipelines, SLR groups or copied segments, chosen by the solver) when several identical
    boards are offered, else ``1``."""
    if replicas is not None:
        return replicas
    names = {b.partition("@")[0].lower() for b in boards}
    return "auto" if len(boards) > 1 and len(names) == 1 else "1"


def check_emit_ready(model: str | Path | None, finn_env: str | None) -> None:
    """``--emit`` needs finn-plus unless the model is already FINN's HW-layer graph: say so
    before optimizing, so nothing is written."""
    from dse.backends.finn.env import require
    from dse.examples import resolve_model
    from dse.ir.lower import is_hw_graph, read_model

    if not is_hw_graph(read_model(resolve_model(model))):
        require(Path(finn_env) if finn_env else None)


@contextlib.contextmanager
def restore_on_failure(files: list[Path]) -> Iterator[None]:
    """On failure, put ``files`` back as they were (removed if they did not exist): a step
    after the plan was written (``--emit``) that fails leaves nothing behind."""
    saved = {p: (p.read_bytes() if p.is_file() else None) for p in files}
    try:
        yield
    except BaseException:
        for p, data in saved.items():
            with contextlib.suppress(OSError):
                if data is None:
                    p.unlink(missing_ok=True)
                else:
                    p.write_bytes(data)
        raise
