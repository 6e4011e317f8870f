"""Hypothesis strategies that mutate real inputs (ONNX models, board files, plans) and the
check every fuzz case makes: dse either accepts the input or raises one of its own errors.
Used by tests/test_fuzz.py (bounded, derandomized) and benchmarks/fuzz_benchmark.py."""

from __future__ import annotations

import copy
import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from dse.exceptions import DseError

NUMBERS = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([0, -1, 1, 2.5, -3, 1e300, 2**40]),
    st.floats(allow_nan=True, allow_infinity=True),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
JSON = st.recursive(JSON_LEAF, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), c,
                                                                   max_size=4)), max_leaves=12)
OPS = ["Quant", "BipolarQuant", "MatMul", "Conv", "Gemm", "Add", "Mul", "Relu", "MaxPool",
       "Reshape", "Transpose", "Softmax", "Trunc", "MultiThreshold", "FloatQuant", "Concat",
       "Unknown", "GlobalAveragePool", "AveragePool", "BatchNormalization", "Gather"]


def _numeric_array(value: Any, like: Any):
    import numpy as np

    try:
        return np.full(like.shape if hasattr(like, "shape") else (), value, dtype=np.float64
                       ).astype(like.dtype if hasattr(like, "dtype") else np.float32)
    except (OverflowError, ValueError, TypeError):
        return np.asarray(0, dtype=np.float32)


@st.composite
def mutated_model(draw: Callable, base: onnx.ModelProto) -> bytes:
    """A few structural or value mutations of ``base``, serialized (or raw garbage bytes)."""
    if draw(st.integers(0, 40)) == 0:
        data = base.SerializeToString()
        cut = draw(st.integers(0, len(data)))
        return data[:cut] + draw(st.binary(max_size=16))
    m = onnx.ModelProto()
    m.CopyFrom(base)
    g = m.graph
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from([
            "op_type", "drop_input", "attr", "init_value", "init_shape", "domain", "value_info",
            "reorder", "dup_name", "input_shape", "drop_node", "swap_inputs", "bitwidth"]))
        nodes = list(g.node)
        if not nodes:
            break
        n = nodes[draw(st.integers(0, len(nodes) - 1))]
        if kind == "op_type":
            n.op_type = draw(st.sampled_from(OPS))
        elif kind == "drop_input" and n.input:
            del n.input[draw(st.integers(0, len(n.input) - 1))]
        elif kind == "attr":
            name = draw(st.sampled_from(["kernel_shape", "strides", "pads", "group", "perm",
                                         "signed", "narrow", "out_dtype", "axis", "transB",
                                         "epsilon", "rounding_mode", "dilations"]))
            val = draw(st.one_of(st.integers(-5, 2**40), st.lists(st.integers(-3, 9),
                                                                   max_size=5),
                                 st.text(max_size=6), st.floats(allow_nan=True)))
            kept = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            n.attribute.extend(kept)
            try:
                n.attribute.append(helper.make_attribute(name, val))
            except (ValueError, TypeError):
                pass
        elif kind in ("init_value", "bitwidth") and g.initializer:
            inits = list(g.initializer)
            init = inits[draw(st.integers(0, len(inits) - 1))]
            try:
                arr = numpy_helper.to_array(init)
            except (ValueError, TypeError):  # an earlier mutation broke its shape
                continue
            v = draw(NUMBERS)
            init.CopyFrom(numpy_helper.from_array(_numeric_array(v, arr), init.name))
        elif kind == "init_shape" and g.initializer:
            inits = list(g.initializer)
            init = inits[draw(st.integers(0, len(inits) - 1))]
            del init.dims[:]
            init.dims.extend(draw(st.lists(st.integers(0, 5), max_size=3)))
        elif kind == "domain":
            n.domain = draw(st.sampled_from(["", "qonnx.custom_op.general",
                                             "finn.custom_op.fpgadataflow", "onnx.brevitas",
                                             "x\u00e9", "ai.onnx"]))
        elif kind == "value_info":
            del g.value_info[:]
        elif kind == "reorder":
            order = draw(st.permutations(range(len(nodes))))
            del g.node[:]
            g.node.extend(nodes[i] for i in order)
        elif kind == "dup_name" and len(nodes) > 1:
            nodes[0].name = n.name
        elif kind == "input_shape" and g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                d = dims[draw(st.integers(0, len(dims) - 1))]
                choice = draw(st.sampled_from([0, -1, 10**6, "N"]))
                if choice == "N":
                    d.dim_param = "N"
                else:
                    d.dim_value = choice if choice >= 0 else 0
        elif kind == "drop_node":
            g.node.remove(n)
        elif kind == "swap_inputs" and len(n.input) > 1:
            a, b = n.input[0], n.input[1]
            n.input[0], n.input[1] = b, a
    return m.SerializeToString()


@st.composite
def mutated_json(draw: Callable, base: Any) -> Any:
    """``base`` with a few values replaced by arbitrary JSON (or keys removed)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths: list[list] = []

        def walk(x: Any, path: list, paths: list[list] = paths) -> None:
            paths.append(path)
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(v, path + [k])
            elif isinstance(x, list):
                for i, v in enumerate(x[:6]):
                    walk(v, path + [i])

        walk(doc, [])
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(JSON)
            continue
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


def dumps(doc: Any) -> str:
    """JSON text, with NaN/Infinity as Python writes them (json.loads reads them back)."""
    return json.dumps(doc, allow_nan=True)


ACCEPTED, REFUSED = "accepted", "refused"  # refused: a dse error
OK = (ACCEPTED, REFUSED)


def outcome(fn: Callable[[], Any]) -> str:
    """ACCEPTED, REFUSED (a dse error), or where a foreign exception came from
    (``Type at file:line: message``)."""
    try:
        fn()
    except DseError:
        return REFUSED
    except RecursionError:
        return "RecursionError at ?:0: recursion"
    except Exception as e:  # noqa: BLE001 - this is what the fuzzer looks for
        tb = traceback.extract_tb(e.__traceback__)
        site = tb[-1] if tb else None
        where = f"{Path(site.filename).name}:{site.lineno}" if site else "?:0"
        ours = [f for f in tb if "/dse/" in f.filename.replace("\\", "/")]
        via = f" via {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
        return f"{type(e).__name__} at {where}{via}: {str(e)[:80]}"
    return ACCEPTED


# -- the LLM-side inputs: architecture configs, device files, calibration measurements --------

#: a tiny Llama-like config (fast to build), the base the config fuzzer mutates
TINY_LLM = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
            "vocab_size": 256, "hidden_act": "silu", "rms_norm_eps": 1e-5,
            "max_position_embeddings": 2048, "tie_word_embeddings": False,
            "rope_theta": 10000.0}
#: values an adversary types into a config or a device entry
ODD = st.one_of(
    NUMBERS, st.sampled_from([0, -1, 10**9, 10**6, 2e18, 1e-9, "abc", "no", None, True, [],
                              {}, "U55C", "", 0.5, 65536, 1 << 21]),
    st.text(max_size=8))
DEVICE_FILE = {"devices": [{"name": "MyGPU", "kind": "gpu", "memory_gib": 48,
                            "memory_gbps": 864, "nic_gbps": 200, "host_gbps": 25,
                            "price_per_hour": 1.2,
                            "peak_tops": {"fp32": 90, "fp16": 180, "int8": 360},
                            "efficiency": {"compute": 0.6, "memory": 0.7}}]}
MEASUREMENT_HEADER = ["params", "weight_bits", "tokens", "attn_gops", "kv_mb", "act_mb",
                      "blocks", "precision", "measured_ms"]
MEASUREMENT_ROW = ["6.5e9", "4", "8", "0.5", "64", "1", "32", "int8", "12.5"]
CELLS = st.one_of(st.sampled_from(["nan", "inf", "-inf", "-1", "0", "", "1e400", "abc", "fp9",
                                   "INT8", "1e-300", "3.5", "10", "1e20", "\u00e9", "2,5"]),
                  st.text(max_size=6), st.integers(-10**6, 10**12).map(str))


@st.composite
def mutated_config(draw: Callable) -> Any:
    """TINY_LLM with a few keys set to odd values, removed, or added."""
    doc = copy.deepcopy(TINY_LLM)
    keys = sorted(doc) + ["n_layer", "head_dim", "layer_norm_eps", "use_cache", "typo_key"]
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            doc.pop(k, None)
        else:
            doc[k] = draw(ODD)
    if draw(st.integers(0, 30)) == 0:
        return draw(JSON)
    return doc


@st.composite
def mutated_device_file(draw: Callable) -> Any:
    """DEVICE_FILE with odd values, or a device copied under another (board) name."""
    doc = draw(mutated_json(DEVICE_FILE))
    if draw(st.integers(0, 5)) == 0 and isinstance(doc, dict):
        dev = copy.deepcopy(DEVICE_FILE["devices"][0])
        dev["name"] = draw(st.sampled_from(["U55C", "MyGPU", "a100-80gb", "x y", "", "GPU2"]))
        devs = doc.get("devices")
        doc["devices"] = (devs if isinstance(devs, list) else []) + [dev]
    return doc


@st.composite
def mutated_measurements(draw: Callable) -> bytes:
    """A measurement CSV with odd cells, short or long rows, a changed header, or bytes."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.binary(max_size=64))
    header = list(MEASUREMENT_HEADER)
    rows = [list(MEASUREMENT_ROW) for _ in range(draw(st.integers(0, 6)))]
    for r in rows:  # distinct steps, so that a fit has something to fit
        r[2] = str(draw(st.integers(1, 64)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cell", "cell", "cell", "drop_col", "short", "long",
                                     "header"]))
        if kind == "cell" and rows:
            r = rows[draw(st.integers(0, len(rows) - 1))]
            if r:
                r[draw(st.integers(0, len(r) - 1))] = draw(CELLS)
        elif kind == "drop_col" and header:
            i = draw(st.integers(0, len(header) - 1))
            del header[i]
            for r in rows:
                if i < len(r):
                    del r[i]
        elif kind == "short" and rows:
            rows[-1] = rows[-1][:draw(st.integers(0, len(rows[-1])))]
        elif kind == "long" and rows:
            rows[0] = rows[0] + ["1"]
        elif kind == "header" and header:
            header[draw(st.integers(0, len(header) - 1))] = draw(st.text(max_size=6))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
