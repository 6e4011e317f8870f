"""``dse verify``: the emitted per-board partitions, run one after another, compute what the
whole network computes.

FINN's Python execution (finn-plus's ``execute_onnx``, in its own environment) runs the whole
HW-layer graph and, on the same random inputs, the host part before the pipeline, every
board's ``model.onnx`` in rank order (streams that skip boards travel in the context like any
other tensor) and the host part after it; the outputs must be equal.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from dse.backends.finn.env import require
from dse.backends.finn.partition import sub_model
from dse.backends.finn.runner import run_driver
from dse.exceptions import BackendError


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    inputs: int
    max_abs_diff: float
    equal: bool
    stages: int


def _random_input(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    w = ModelWrapper(model)
    feeds = {}
    for inp in model.graph.input:
        shape = w.get_tensor_shape(inp.name)
        dt = w.get_tensor_datatype(inp.name)
        if dt is not None and dt.is_integer() and dt != DataType["FLOAT32"]:
            x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)
        else:
            x = rng.uniform(-1, 1, size=shape)
        feeds[inp.name] = x.astype(np.float32)
    return feeds


def stages(build: Path, whole: onnx.ModelProto) -> list[onnx.ModelProto]:
    """Host part before the pipeline, each board's partition in rank order, host part after."""
    try:
        man = json.loads((build / "manifest.json").read_text())
        boards = sorted(man["boards"], key=lambda b: b["rank"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"{build}: no readable manifest.json ({type(e).__name__}); create "
                           "the build with 'dse emit'") from None
    parts, board_nodes = [], set()
    for b in boards:
        p = build / b["dir"] / "model.onnx"
        if not p.is_file():
            raise BackendError(f"{build}: {b['dir']}/model.onnx is missing; re-run 'dse emit'")
        pm = onnx.load(str(p))
        board_nodes |= {n.name for n in pm.graph.node}
        parts.append(pm)
    host = [n for n in whole.graph.node if n.name not in board_nodes]
    produced = {o for n in whole.graph.node if n.name in board_nodes for o in n.output}
    head = [n.name for n in host if not any(t in produced for t in n.input)]
    tail = [n.name for n in host if n.name not in head]
    return (([sub_model(whole, head, "host_head")[0]] if head else []) + parts
            + ([sub_model(whole, tail, "host_tail")[0]] if tail else []))


def verify_build(build_dir: str | Path, *, model: str | Path | None = None,
                 inputs: int = 2, seed: int = 0, env: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> VerifyResult:
    build = Path(build_dir).resolve()
    whole_path = Path(model).resolve() if model else build / "finn_hw_graph.onnx"
    if not whole_path.is_file():
        raise BackendError(
            f"{build}: no finn_hw_graph.onnx (the build was emitted from a HW-layer graph); "
            "give that graph with --model")
    if not 1 <= inputs <= 100:
        raise BackendError(f"--inputs {inputs}: give 1 to 100 random inputs")
    env = require(env)
    say = progress or (lambda m: None)
    whole = onnx.load(str(whole_path))
    seq = stages(build, whole)
    out_names = [o.name for o in whole.graph.output]
    rng = np.random.default_rng(seed)
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="dse-verify-") as t:
        tmp = Path(t)
        for k, pm in enumerate(seq):
            onnx.save(pm, str(tmp / f"stage{k}.onnx"))

        def run(model_path: Path, feeds: dict[str, np.ndarray], tag: str) -> dict:
            np.savez(tmp / f"{tag}_in.npz", **feeds)  # type: ignore[arg-type]  # numpy stubs
            r = run_driver(env, "exec", str(model_path), str(tmp / f"{tag}_in.npz"),
                           str(tmp / f"{tag}_out.npz"))
            if not r.get("ok"):
                raise BackendError(f"FINN could not execute {model_path.name}: {r.get('error')}")
            with np.load(tmp / f"{tag}_out.npz") as d:
                return {n: d[n] for n in d.files}

        for i in range(inputs):
            feeds = _random_input(whole, rng)
            ref = run(whole_path, feeds, f"whole{i}")
            ctx = dict(feeds)
            for k, pm in enumerate(seq):
                need = [x.name for x in pm.graph.input]
                missing = [x for x in need if x not in ctx]
                if missing:
                    raise BackendError(f"stage {k} needs {missing[0]!r}, which no earlier "
                                       "stage produced; re-run 'dse emit'")
                ctx.update(run(tmp / f"stage{k}.onnx", {x: ctx[x] for x in need},
                               f"s{i}_{k}"))
            for name in out_names:
                diff = float(np.max(np.abs(ctx[name].astype(np.float64) -
                                           ref[name].astype(np.float64))))
                worst = max(worst, diff)
            say(f"input {i + 1}/{inputs}: {len(seq)} stage(s), max |difference| {worst:g}")
    return VerifyResult(inputs=inputs, max_abs_diff=worst, equal=worst == 0.0,
                        stages=len(seq))
