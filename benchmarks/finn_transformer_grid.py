"""Reference grid of finn-plus's own estimates for its transformer ops, one node per row.

Runs INSIDE the finn-plus environment that ``dse finn-setup`` makes (it imports finn):

    ~/.cache/dse/finn-plus-1.6.1/bin/python benchmarks/finn_transformer_grid.py \
        tests/data/finn_plus_transformer_grid.csv

For every node it records what finn-plus 1.6.1 returns from ``get_exp_cycles``,
``lut/bram/uram/dsp_estimation`` (part xcu55c), the stream widths and output counts, and
whether the class implements each estimate itself or inherits HWCustomOp's default (0), so
that the test can compare dse exactly where FINN estimates and know where dse's own model
stands in. Same method as ``shared/reference/finn_estimates``.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import sys
import tempfile

PART = "xcu55c-fsvh2892-2L-e"


def grid() -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    # ScaledDotProductAttention: shapes x folds x types x mask modes
    for (qk, ql, vd, kv), heads in itertools.product(
            [(16, 16, 16, 16), (64, 32, 64, 32), (32, 8, 16, 24), (8, 128, 8, 128)], [1, 4]):
        for ef in sorted({1, 2, qk // 2, qk} & {d for d in range(1, qk + 1)
                                               if qk % d == 0 and vd % d == 0}):
            for sf in sorted({1, kv // 4 or 1, kv} & {d for d in range(1, kv + 1) if kv % d == 0}):
                for types, mask in (
                        (("INT8", "INT8", "INT8", "INT8"), "none"),
                        (("INT4", "INT8", "UINT8", "INT8"), "causal"),
                        (("FLOAT32",) * 4, "input")):
                    q, k, v, o = types
                    rows.append(("ScaledDotProductAttention_hls", dict(
                        QKDim=qk, QLen=ql, VDim=vd, KVLen=kv, Heads=heads, EmbFold=ef,
                        SeqFold=sf, QType=q, KType=k, VType=v, OType=o, mask_mode=mask,
                        MType="INT8" if mask == "input" else "INT0")))
    # HWSoftmax and LayerNorm, hls and rtl
    for dims in ([1, 16, 64], [1, 4, 16, 16], [1, 128, 768], [12, 64, 64], [1, 1, 30]):
        for S in sorted({1, 2, dims[-1] // 2, dims[-1]} & {d for d in range(1, dims[-1] + 1)
                                                           if dims[-1] % d == 0}):
            for impl in ("hls", "rtl"):
                for dt in ("FLOAT32", "INT8"):
                    rows.append((f"HWSoftmax_{impl}", dict(
                        ifm_dim=dims, SIMD=S, NumChannels=dims[-1], input_data_type=dt,
                        output_data_type="FLOAT32")))
                rows.append((f"LayerNorm_{impl}", dict(
                    ifm_dim=dims, SIMD=S, epsilon=1e-5, inputDataType="FLOAT32",
                    outputDataType="FLOAT32")))
    # PWPolyF
    for func, C, vecs, K, deg in itertools.product(
            ("gelu", "silu", "sigmoid", "tanh"), (64, 128, 3072), ([1, 16], [4, 128]), (2, 3),
            (1, 2, 3)):
        for P in sorted({1, 4, C}):
            rows.append(("PWPolyF_rtl", dict(func=func, K=K, PE=P, NumChannels=C,
                                             numInputVectors=vecs, degree=deg,
                                             inputDataType="FLOAT32",
                                             outputDataType="FLOAT32")))
    # Shuffle (generic; FINN decomposes it into Inner/OuterShuffle stages for its estimate)
    shuffles = [
        ([1, 16, 64], [1, 16, 4, 16], [0, 2, 1, 3]),
        ([1, 16, 64], [1, 16, 4, 16], [0, 2, 3, 1]),
        ([1, 4, 16, 16], [1, 4, 16, 16], [0, 2, 1, 3]),
        ([1, 128, 768], [1, 128, 12, 64], [0, 2, 1, 3]),
        ([1, 32, 8, 8], [1, 32, 8, 8], [0, 1, 3, 2]),
        ([1, 8, 4, 16], [1, 8, 4, 16], [0, 3, 1, 2]),
    ]
    for in_shape, t_in, perm in shuffles:
        t_out = [t_in[p] for p in perm]
        g = math.gcd(t_in[-1], t_out[-1])
        for S in sorted({1, 2, g} & {d for d in range(1, g + 1) if g % d == 0}):
            for dt in ("INT8", "FLOAT32"):
                rows.append(("Shuffle", dict(
                    data_type=dt, in_shape=in_shape, out_shape=t_out, transpose_in_shape=t_in,
                    transpose_out_shape=t_out, perm=perm, SIMD=S, NumChannels=t_in[-1])))
    # Split/MergeMultiHeads
    for heads, e, n in ((4, 64, [16]), (12, 768, [128]), (2, 8, [1, 3])):
        for op in ("SplitMultiHeads_hls", "MergeMultiHeads_hls"):
            rows.append((op, dict(heads=heads, packed=0, dtype="INT8", num_elems=e,
                                  num_inputs=n)))
    # MVAU with dynamic (activation) weights: the attention MatMuls when both sides are integer
    for (mw, mh, vecs), (P, S), impl, (idt, wdt) in itertools.product(
            ((16, 16, [4, 16]), (64, 128, [1, 12, 128]), (128, 64, [12, 64])),
            ((1, 1), (2, 4), (8, 16)), ("hls", "rtl"), (("INT8", "INT8"), ("UINT4", "INT4"))):
        if mw % S or mh % P:
            continue
        rows.append((f"MVAU_{impl}", dict(
            MW=mw, MH=mh, PE=P, SIMD=S, numInputVectors=vecs, inputDataType=idt,
            weightDataType=wdt, outputDataType="INT32", accDataType="INT32", noActivation=1,
            mem_mode="dynamic", resType="lut" if impl == "hls" else "dsp",
            binaryXnorMode=0, ActVal=0)))
    return rows


def main(out_path: str) -> int:
    os.environ.setdefault("FINN_BUILD_DIR", tempfile.mkdtemp(prefix="dse-grid-"))
    import finn.xsi

    finn.xsi.SimEngine = None  # no Vivado XSI here
    from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    out = []
    for op, attrs in grid():
        base, _, impl = op.rpartition("_") if op.endswith(("_hls", "_rtl")) else (op, "", "")
        domain = "finn.custom_op.fpgadataflow" + (f".{impl}" if impl else "")
        n_in = 3 if base == "ScaledDotProductAttention" else 2 if base == "MVAU" else 1
        if base == "ScaledDotProductAttention" and attrs["mask_mode"] == "input":
            n_in = 4
        node = helper.make_node(op, [f"in{i}" for i in range(n_in)], ["out0"], domain=domain,
                                backend="fpgadataflow", name=f"{op}_0", **attrs)
        inst = getCustomOp(node)
        cls = type(inst)
        row = {"op_type": op, "attrs": json.dumps(attrs, sort_keys=True)}
        try:
            row["exp_cycles"] = int(inst.get_exp_cycles())
            for k in ("lut", "bram", "uram", "dsp"):
                fn = getattr(inst, f"{k}_estimation")
                row["bram18" if k == "bram" else k] = int(fn(PART))
            row["cycles_model"] = int(cls.get_exp_cycles is not HWCustomOp.get_exp_cycles)
            row["resource_model"] = int(cls.lut_estimation is not HWCustomOp.lut_estimation)
            n_out = attrs["heads"] if base == "SplitMultiHeads" else 1
            n_inw = attrs["heads"] if base == "MergeMultiHeads" else n_in
            row["instream_widths"] = json.dumps([int(inst.get_instream_width(i))
                                                 for i in range(n_inw)])
            row["outstream_widths"] = json.dumps([int(inst.get_outstream_width(i))
                                                  for i in range(n_out)])
            nov = inst.get_number_output_values()
            row["number_output_values"] = json.dumps(
                sorted(int(v) for v in nov.values()) if isinstance(nov, dict) else int(nov))
            row["error"] = ""
        except Exception as e:  # FINN refuses the node: the test checks dse refuses it too
            row.update(exp_cycles="", lut="", bram18="", uram="", dsp="", cycles_model="",
                       resource_model="", instream_widths="", outstream_widths="",
                       number_output_values="", error=f"{type(e).__name__}: {e}"[:200])
        out.append(row)
    cols = ["op_type", "attrs", "exp_cycles", "lut", "bram18", "uram", "dsp", "cycles_model",
            "resource_model", "instream_widths", "outstream_widths", "number_output_values",
            "error"]
    tmp = out_path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(out)
    os.replace(tmp, out_path)
    print(f"{len(out)} rows -> {out_path} ({sum(1 for r in out if r['error'])} refused)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "finn_plus_transformer_grid.csv"))
