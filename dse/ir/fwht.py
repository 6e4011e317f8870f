"""Hand-written fast Walsh-Hadamard transforms in an ONNX graph, folded into one MatMul.

``prepare`` runs :func:`fold_fwht`: it finds every single-input, single-output subgraph of
linear layout/add/sub nodes (butterfly stages of Reshape/Gather/Slice/Split, Add and Sub, then
Concat/stack and Reshape; brevitas ``RotatedModule``'s ScatterND form too), evaluates the
linear map it computes on the n unit vectors (onnx's reference evaluator; a random vector
checks it is linear), and where that map is a Hadamard matrix replaces the subgraph by one
MatMul with it, which ``dse.ir.lowering.hadamard`` lowers to a Hadamard layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def hadamard_scale(w: np.ndarray) -> float | None:
    """c where ``w`` is c times a Hadamard matrix (square, |w_ij| = c, w w^T = n c^2 I)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 2:
        return None
    c = float(np.abs(w).flat[0])
    n = w.shape[0]
    if c <= 0 or not np.allclose(np.abs(w), c, rtol=1e-5, atol=0):
        return None
    if not np.allclose(w @ w.T, n * c * c * np.eye(n), rtol=0, atol=1e-4 * n * c * c):
        return None
    return c


LINEAR_OPS = ("Reshape", "Gather", "Slice", "Split", "Squeeze", "Unsqueeze", "Concat", "Add",
              "Sub", "Transpose", "Flatten", "Identity",
              # brevitas RotatedModule's in-place FWHT (TorchScript export): scatters, selects
              # and expands by constants, the 1/sqrt(n) as a Mul/Div by a constant
              "ScatterND", "Where", "Expand", "Mul", "Div")
MAX_FOLD = 4096  # largest transform evaluated on its unit vectors


def _region(g: Any, x: str, consts: set[str], users: dict[str, list[Any]]) -> list[Any]:
    """Nodes reachable from ``x`` through linear layout/add/sub ops whose every non-constant
    input is ``x`` or produced inside the region (in graph order)."""
    inside, seen, queue = {x}, set(), [x]
    nodes: list[Any] = []
    while queue:
        for n in users.get(queue.pop(), []):
            if id(n) in seen or n.op_type not in LINEAR_OPS:
                continue
            dyn = [t for t in n.input if t and t not in consts]
            if not all(t in inside for t in dyn):
                continue  # revisited once its other input is inside
            if n.op_type in ("Add", "Sub") and len(dyn) != 2:
                continue  # an offset is not part of a rotation
            if n.op_type in ("Mul", "Div") and len(dyn) != 1:
                continue  # a product of activations is not linear
            seen.add(id(n))
            nodes.append(n)
            inside.update(n.output)
            queue.extend(n.output)
    order = {id(n): i for i, n in enumerate(g.node)}
    return sorted(nodes, key=lambda n: order[id(n)])


def _evaluate(g: Any, region: list[Any], x: str, y: str, shape: tuple[int, ...],
              inits: list[Any]) -> np.ndarray:
    """The matrix M with y = x @ M of the region (x, y of last dimension n)."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    used = {t for n in region for t in n.input}
    graph = helper.make_graph(
        region, "fwht", [helper.make_tensor_value_info(x, TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)],
        [i for i in inits if i.name in used])
    ref: Any = ReferenceEvaluator(helper.make_model(graph))
    n = shape[-1]
    rows = []
    for i in range(n):
        e = np.zeros(shape, dtype=np.float32)
        e.reshape(-1, n)[0, i] = 1.0
        rows.append(np.asarray(ref.run(None, {x: e})[0]).reshape(-1, n)[0])
    m = np.stack(rows)
    # linear and applied per vector: a random input gives x @ M on every row
    r = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = np.asarray(ref.run(None, {x: r})[0]).reshape(-1, n)
    if not np.allclose(got, r.reshape(-1, n) @ m, rtol=1e-4, atol=1e-4):
        raise ValueError("not a per-vector linear map")
    return m


def fold_fwht(model: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    """Replace each hand-written FWHT subgraph by a MatMul with its Hadamard matrix; returns
    how many were folded."""
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {i.name for i in g.initializer}
    if not any(n.op_type == "Sub" and all(t not in consts for t in n.input) for n in g.node):
        return 0  # no difference of two activations: no butterfly anywhere
    users: dict[str, list[Any]] = {}
    for n in g.node:
        for t in n.input:
            users.setdefault(t, []).append(n)
    outputs = {o.name for o in g.output}
    folded = 0
    for x in [t for t in list(users) if t not in consts]:
        shape = shapes.get(x)
        if not shape or not 2 <= shape[-1] <= MAX_FOLD or not any(
                u.op_type in ("Reshape", "Gather", "Slice", "Split") for u in users.get(x, [])):
            continue
        region = _region(g, x, consts, users)
        if not {"Add", "Sub"} <= {n.op_type for n in region}:
            continue
        made = {t for n in region for t in n.output}
        leaving = [t for t in made if t in outputs or any(u not in region
                                                          for u in users.get(t, []))]
        if len(leaving) != 1 or any(u not in region for u in users.get(x, [])):
            continue
        y = leaving[0]
        if shapes.get(y) != shape:
            continue
        try:
            m = _evaluate(g, region, x, y, shape, list(g.initializer))
        except Exception:  # noqa: BLE001 - not evaluable: not a rotation we fold
            continue
        if hadamard_scale(m) is None:
            continue
        pos = max(list(g.node).index(n) for n in region)
        name = f"FWHT_{region[0].name or folded}"
        w = numpy_helper.from_array(m.astype(np.float32), f"{name}_matrix")
        g.initializer.append(w)
        mm = helper.make_node("MatMul", [x, w.name], [y], name=name)
        g.node.insert(pos + 1, mm)
        for n in region:
            g.node.remove(n)
        folded += 1
        users = {}
        for n in g.node:
            for t in n.input:
                users.setdefault(t, []).append(n)
        consts.add(w.name)
    return folded
