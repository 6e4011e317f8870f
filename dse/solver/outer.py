"""Design-space exploration: Optuna samples what the exact solver should not decide.

Each trial picks a board count and mix, a clock, utilization caps, a weight-placement policy,
an ACCL buffer size and a solver knob, then runs the joint CP-SAT optimizer. Objectives:
FPS (max), boards (min), latency (min), LUT (min). Infeasible trials are kept, with their
reason, as constraint violations (NSGA-II's constrained domination), and never stop the study.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from dse.exceptions import DseError, InfeasibleError, SpecError
from dse.ir import LayerGraph
from dse.schemas import MAX_BOARDS
from dse.solver.planning import PlanRecord, plan_problem, problem_for
from dse.solver.problem import PartitionProblem
from dse.solver.search import SolveResult, solve_joint
from dse.specs import Catalog

OBJECTIVES = ("fps", "boards", "latency_s", "lut")
DIRECTIONS: tuple[Literal["maximize", "minimize"], ...] = (
    "maximize", "minimize", "minimize", "minimize")
WORST = (0.0, 1e9, 1e9, 1e12)  # objective values recorded for an infeasible trial
#: the clocks explored unless told, widened to take in each board type's catalog clock
CLOCK_MHZ = (150.0, 300.0)
CLOCK_STEP = 25.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreSpace:
    """The knobs Optuna samples (everything else is the CP-SAT model's job)."""

    board_counts: tuple[int, ...] = (1, 2, 4, 8)
    board_types: tuple[str, ...] = ("U55C",)
    clock_mhz: tuple[float, float] = CLOCK_MHZ
    clock_step: float = CLOCK_STEP
    lut_cap: tuple[float, float] = (0.5, 0.85)
    mem_cap: tuple[float, float] = (0.6, 0.9)
    rx_buffer_bytes: tuple[int, ...] = (1 << 20, 4 << 20, 8 << 20)
    trial_time_limit: float = 20.0

    def __post_init__(self) -> None:
        if not self.board_counts or min(self.board_counts) < 1:
            raise SpecError("board counts must be positive, e.g. --boards 1..8")
        if not self.board_types:
            raise SpecError("give at least one board type")
        lo, hi = self.clock_mhz
        if not 10 <= lo <= hi <= 1000:
            raise SpecError(f"clock range {lo}..{hi} MHz is invalid")


def default_clock_range(catalog: Catalog, board_types: Sequence[str]) -> tuple[float, float]:
    """The clocks a study explores unless told: 150..300 MHz, widened to take in each board
    type's catalog clock (the one ``dse optimize`` runs it at), e.g. 100..300 with Pynq-Z1.
    The low end is the lowest of them, so it is on the sampled grid; the high end is moved up
    to the grid."""
    clocks = [catalog.board(t).default_clock_mhz for t in board_types]
    lo, hi = min(CLOCK_MHZ[0], *clocks), max(CLOCK_MHZ[1], *clocks)
    hi = lo + math.ceil((hi - lo) / CLOCK_STEP - 1e-9) * CLOCK_STEP
    return lo, hi if hi <= 1000 else hi - CLOCK_STEP


def parse_board_counts(text: str) -> tuple[int, ...]:
    """``"1..8"``, ``"1,2,4,8"`` or ``"4"``."""
    t = str(text).strip()
    try:
        if ".." in t:
            a, b = (int(x) for x in t.split("..", 1))
            if a > b:
                raise ValueError
            counts: tuple[int, ...] = (a, b)
        else:
            counts = tuple(int(x) for x in t.split(",") if x.strip())
        if not counts:
            raise ValueError
    except ValueError:
        raise SpecError(f"--boards {text!r}: use a range 1..8, a list 1,2,4 or a count") from None
    if min(counts) < 1 or max(counts) > MAX_BOARDS:
        raise SpecError(f"--boards {text!r}: board counts must be 1 to {MAX_BOARDS}")
    if ".." in t:
        return tuple(range(counts[0], counts[1] + 1))
    return tuple(sorted(set(counts)))


def sample(trial: optuna.Trial, space: ExploreSpace) -> dict[str, Any]:
    n = trial.suggest_categorical("n_boards", list(space.board_counts))
    if len(space.board_types) == 1:
        types = [space.board_types[0]] * n
    else:
        first = trial.suggest_categorical("board_type", list(space.board_types))
        second = trial.suggest_categorical("board_type_tail", list(space.board_types))
        split = trial.suggest_int("board_type_split", 0, max(space.board_counts))
        types = [first if i < split else second for i in range(n)]
    lo, hi = space.clock_mhz
    clock = trial.suggest_float("clock_mhz", lo, hi, step=space.clock_step) if hi > lo else lo
    lut = trial.suggest_float("cap_lut", *space.lut_cap, step=0.05)
    mem = trial.suggest_float("cap_mem", *space.mem_cap, step=0.05)
    external = trial.suggest_categorical("external_weights", [False, True])
    rx = trial.suggest_categorical("rx_buffer_bytes", list(space.rx_buffer_bytes))
    secondary = trial.suggest_categorical("minimize_resources", [True, False])
    return {"boards": types, "clock_mhz": clock,
            "caps": {"lut": lut, "bram18": mem, "uram": mem},
            "external_weights": external, "rx_buffer_bytes": rx, "minimize_resources": secondary}


def default_configs(space: ExploreSpace) -> list[dict[str, Any]]:
    """What a user would run by hand: each board count at 200 MHz and FINN's default caps."""
    clock = min(max(200.0, space.clock_mhz[0]), space.clock_mhz[1])
    out = []
    for n in space.board_counts:
        p: dict[str, Any] = {"n_boards": n, "clock_mhz": clock, "cap_lut": 0.7, "cap_mem": 0.8,
             "external_weights": True, "rx_buffer_bytes": 4 << 20, "minimize_resources": True}
        if len(space.board_types) > 1:
            p.update(board_type=space.board_types[0], board_type_tail=space.board_types[0],
                     board_type_split=0)
        out.append(p)
    return out


@dataclass
class TrialOutcome:
    values: tuple[float, ...]
    feasible: bool
    reason: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)


def evaluate_config(graph: LayerGraph, catalog: Catalog, cfg: dict[str, Any],
                    space: ExploreSpace, seed: int, *, input_dtype: str | None = None
                    ) -> TrialOutcome:
    """One trial: the plan ``dse optimize`` makes of these boards in this order (``--board-order
    given``: the trial samples the order) at this clock, caps and options, through the same
    path (dse.solver.planning), within the trial's time limit."""
    t0 = time.monotonic()
    boards = [catalog.configure(t, caps=cfg["caps"], clock_mhz=cfg["clock_mhz"])
              for t in cfg["boards"]]
    secondary = bool(cfg["minimize_resources"])

    def solve(problem: PartitionProblem, limit: float) -> SolveResult:
        return solve_joint(problem, time_limit=limit, workers=1, seed=seed, secondary=secondary)

    record = PlanRecord(model_path=graph.source_path, model_sha256=graph.source_sha256,
                        seed=seed, record_time=False, input_dtype=input_dtype,
                        minimize_bit_width=graph.minimized_bit_width)
    try:
        problem = problem_for(graph, boards, rx_buffer_bytes=cfg["rx_buffer_bytes"],
                              allow_external=cfg["external_weights"])
        planned = plan_problem(problem, solve, time_limit=space.trial_time_limit, started=t0,
                               record=record, board_order="given")
    except InfeasibleError as e:
        return TrialOutcome(values=WORST, feasible=False, reason=str(e))
    res, plan = planned.result, planned.plan
    ev = res.evaluation
    # the LUT objective is the plan's own, as dse optimize reports it: the layers' LUT, with
    # the FIFOs and converters as FINN builds them
    lut = sum(b["resources"]["lut"] for b in plan["boards"])
    attrs = {"status": res.status, "gap": res.gap, "ii_cycles": res.ii_cycles,
             "wall_s": round(time.monotonic() - t0, 3), "board_names": ",".join(cfg["boards"]),
             "bottleneck": ev.bottleneck, "plan": plan.to_json()}
    values = (ev.fps, float(ev.boards_used), ev.latency_s, float(lut))
    return TrialOutcome(values=values, feasible=True, attrs=attrs)


def constraints(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
    return trial.user_attrs.get("constraint", [0.0])


def make_objective(graph: LayerGraph, catalog: Catalog, space: ExploreSpace, seed: int,
                   progress: Callable[[str], None] | None = None, *,
                   input_dtype: str | None = None
                   ) -> Callable[[optuna.Trial], tuple[float, ...]]:
    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        t0 = time.monotonic()
        cfg = sample(trial, space)
        try:
            out = evaluate_config(graph, catalog, cfg, space, seed, input_dtype=input_dtype)
        except DseError as e:  # a bad combination of knobs: recorded, never fatal
            out = TrialOutcome(values=WORST, feasible=False, reason=str(e))
        trial.set_user_attr("constraint", [0.0 if out.feasible else 1.0])
        if _HAS_SET_CONSTRAINT:  # optuna >= 5: constraints live on the trial
            trial.set_constraint("infeasible", 0.0 if out.feasible else 1.0)
        trial.set_user_attr("feasible", out.feasible)
        trial.set_user_attr("reason", out.reason)
        trial.set_user_attr("config", json.dumps(cfg, sort_keys=True))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        for k, v in out.attrs.items():
            trial.set_user_attr(k, v)
        if progress:
            msg = (f"{out.values[0]:,.0f} fps on {int(out.values[1])} board(s)" if out.feasible
                   else f"infeasible: {out.reason[:90]}")
            progress(f"trial {trial.number}: {len(cfg['boards'])} x "
                     f"{'/'.join(sorted(set(cfg['boards'])))} @ {cfg['clock_mhz']:g} MHz -> "
                     f"{msg} ({time.monotonic() - t0:.1f} s)")
        return out.values

    return objective


_HAS_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    """Seeded multi-objective sampler with constrained domination (infeasible trials lose)."""
    kw: dict[str, Any] = {} if _HAS_SET_CONSTRAINT else {"constraints_func": constraints}
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16, **kw)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, **kw)
    raise SpecError(f"sampler {kind!r}: choose nsga2 or tpe")
