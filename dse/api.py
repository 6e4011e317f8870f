"""Library entry points; the CLI is a thin layer over these.

Each concern lives in its own module; this facade gathers the entry points a user (or the
CLI) calls, all typed and keyword-only past the model:

- ``inspect``: the layer table of a network (dse.layer_table);
- ``cost``: FINN's estimate of one layer (dse.models);
- ``boards``: the board catalog (dse.specs);
- ``optimize``: a network file over a chain of boards (dse.optimize; replicas:
  dse.solver.replicas);
- ``optimize_llm``: an LLM architecture over a chain of devices (dse.llm.run);
- ``explore``: Optuna exploration (dse.explore);
- ``emit_plan``, ``build_plan``, ``verify_build``, ``finn_setup``: the FINN steps
  (dse.backends.finn.steps).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.devices.chain import device_chain
from dse.examples import example_model_path
from dse.layer_table import DEFAULT_PART, LayerSummary, inspect_model
from dse.models import estimate
from dse.models.registry import DEFAULT_FINN
from dse.specs import default_catalog, load_catalog

if TYPE_CHECKING:  # (loaded on first use, below)
    from dse.backends.finn.steps import build_plan, emit_plan, finn_setup, verify_build
    from dse.explore import ExploreResult, explore, open_storage
    from dse.llm.run import LLMResult, optimize_llm
    from dse.optimize import OptimizeResult, optimize

#: entry points loaded on first use: the solvers load OR-Tools (and with it pandas), exploring
#: Optuna and matplotlib, the LLM and FINN steps their own modules, which the other commands
#: would otherwise pay for at start-up
_LAZY = {
    **dict.fromkeys(("ExploreResult", "explore", "open_storage"), "dse.explore"),
    **dict.fromkeys(("OptimizeResult", "optimize"), "dse.optimize"),
    **dict.fromkeys(("LLMResult", "optimize_llm"), "dse.llm.run"),
    **dict.fromkeys(("build_plan", "emit_plan", "finn_setup", "verify_build"),
                    "dse.backends.finn.steps"),
}

__all__ = [
    "DEFAULT_PART",
    "ExploreResult",
    "LLMResult",
    "LayerSummary",
    "OptimizeResult",
    "boards",
    "build_plan",
    "cost",
    "device_chain",
    "emit_plan",
    "example_model_path",
    "explore",
    "finn_setup",
    "inspect",
    "open_storage",
    "optimize",
    "optimize_llm",
    "verify_build",
]


def inspect(model: str | Path | None = None, *, part: str | None = DEFAULT_PART,
            input_dtype: str | None = None, minimize_bit_width: bool = True) -> dict[str, Any]:
    """The layer table of a network: per layer, costs at its smallest and fastest folding.
    For an architecture config (``llama2-7b``, ``config.json``): one block, in decode (or
    encoder) mode, with the LM head's layers after it."""
    return inspect_model(model, part=part, input_dtype=input_dtype,
                         minimize_bit_width=minimize_bit_width)


def cost(op_type: str, attrs: Mapping[str, Any], part: str | None = None,
         finn: str = DEFAULT_FINN) -> dict[str, Any]:
    """FINN's estimate of one layer (``op_type`` with FINN's attributes) on ``part``, as the
    FINN line ``finn`` (plus, main or dev) gives it."""
    return estimate(op_type, attrs, part, finn=finn).as_dict()


def boards(board_files: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The board catalog (the packaged one, or the user's board files): per board its device,
    shells, usable capacity on one board and in a chain, memory, network and clock."""
    cat = load_catalog(board_files or ()) if board_files else default_catalog()
    out = []
    for b in cat.boards.values():
        cfg = cat.configure(b.name)
        out.append({
            "name": b.name, "part": b.part, "slrs": b.slrs, "device": b.device.as_dict(),
            "shells": list(b.shells), "default_shell": b.default_shell,
            "capacity_single": cfg.capacity(False).as_dict(),
            "capacity_multi": cfg.capacity(True).as_dict(),
            "memory": f"{b.external_memory_gib:g} GiB {b.external_memory_kind}"
                      + (f" ({b.hbm_channels} PCs)" if b.hbm_channels else ""),
            "memory_gbps": b.external_memory_gbps,
            "network_gbps": b.net_line_rate_gbps,
            "default_clock_mhz": b.default_clock_mhz,
        })
    return out


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dse.api' has no attribute {name!r}")
