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
    rows += newer_ops() + memories() + mvau_plus() + stages()
    return rows


def _divs(n: int, pick: tuple[int, ...] = ()) -> list[int]:
    ds = [d for d in range(1, n + 1) if n % d == 0]
    return ds if not pick else sorted({d for d in ds if d in pick or d == n})


def newer_ops() -> list[tuple[str, dict]]:
    """The ops finn-plus's transformer flow emits beyond the attention core: Where, the two
    shuffle stages, stream replication, token selection, (un)squeeze."""
    rows: list[tuple[str, dict]] = []
    wheres = [  # (Shape, CondShape, XShape, YShape)
        ([1, 16, 64], [1, 16, 64], [1, 16, 64], [1, 16, 64]),
        ([1, 16, 64], [1, 1, 64], [1, 16, 64], []),
        ([1, 4, 16, 16], [1, 1, 16, 16], [1, 4, 16, 16], [1]),
        ([1, 4, 16, 16], [16, 16], [1, 4, 16, 16], [1, 4, 16, 1]),
        ([12, 64, 64], [1, 64, 64], [12, 64, 64], [12, 64, 1]),
        ([1, 128, 32], [1, 128, 1], [1, 128, 32], [1, 1, 32]),
        ([2, 8, 8, 24], [1, 1, 8, 24], [2, 8, 8, 24], [2, 1, 1, 24]),
        ([1, 32, 32, 32], [1, 1, 32, 32], [1, 32, 32, 32], [1, 32, 32, 32]),
    ]
    for (shp, cs, xs, ys), style, (cdt, idt) in itertools.product(
            wheres, ("auto", "block", "distributed", "ultra"),
            (("BINARY", "INT8"), ("BINARY", "FLOAT32"), ("BINARY", "UINT4"))):
        for pe in _divs(shp[-1], (1, 2, 4, 8)):
            rows.append(("HWWhere_rtl", dict(Shape=shp, CondShape=cs, XShape=xs, YShape=ys,
                                             PE=pe, conditionDataType=cdt, inputDataType=idt,
                                             outputDataType=idt, ram_style=style)))
    for shp, dt in itertools.product(
            ([1, 16, 64], [1, 4, 16, 16], [2, 8, 32], [1, 12, 64, 64], [1, 1, 24, 8],
             [1, 3, 10, 12]), ("INT8", "FLOAT32", "UINT4", "BIPOLAR")):
        t_in = list(shp)
        for simd in (1, 2, 3, 4, 8, 16):
            rows.append(("InnerShuffle_rtl", dict(data_type=dt, in_shape=shp,
                                                  transpose_in_shape=t_in, SIMD=simd)))
    outers = [([1, 16, 4, 16], [0, 2, 1, 3]), ([1, 8, 4, 16], [2, 1, 0, 3]),
              ([4, 8, 2, 8], [1, 0, 2, 3]), ([1, 6, 10, 12], [0, 2, 1, 3]),
              ([2, 3, 4, 8], [2, 0, 1, 3]), ([1, 32, 8, 8], [0, 2, 1, 3]),
              ([16, 32, 4], [1, 0, 2])]
    for (t_in, perm), dt in itertools.product(outers, ("INT8", "FLOAT32", "UINT2")):
        t_out = [t_in[p] for p in perm]
        for simd in (1, 2, 3, 4, 8):
            rows.append(("OuterShuffle_hls", dict(
                data_type=dt, transpose_in_shape=t_in, in_shape=t_in, transpose_out_shape=t_out,
                out_shape=t_out, loop_coeffs=[1] * len(t_in), perm=perm, SIMD=simd)))
    for num, e, n, dt in itertools.product((1, 2, 3, 4), (8, 64, 96), ([1], [16], [2, 32]),
                                           ("INT8", "FLOAT32", "BIPOLAR")):
        for pe in _divs(e, (1, 2, 8)):
            rows.append(("ReplicateStream_hls", dict(num=num, dtype=dt, num_elems=e, PE=pe,
                                                     num_inputs=n)))
    for (tok, ch), idx, dt in itertools.product(((16, 64), (197, 192), (8, 24), (1, 32)),
                                                (0, 1, -1), ("INT8", "FLOAT32", "UINT3")):
        for simd in _divs(ch, (1, 2, 4, 8)):
            if idx >= tok:
                continue
            rows.append(("SelectToken_rtl", dict(NumTokens=tok, NumChannels=ch, TokenIndex=idx,
                                                 SIMD=simd, inputDataType=dt,
                                                 outputDataType=dt)))
    squeezes = [([1, 16, 64], [16, 64], [0]), ([1, 1, 32], [32], [0, 1]),
                ([4, 1, 24], [4, 24], [1]), ([2, 8, 1, 16], [2, 8, 16], [2]),
                ([1, 1, 1, 8], [1, 8], [0, 1])]
    for (big, small, axes), dt in itertools.product(squeezes, ("INT8", "FLOAT32", "UINT2")):
        for pe in _divs(small[-1], (1, 2, 4, 8)):
            rows.append(("Squeeze_hls", dict(axes=axes, inp_dtype=dt, out_dtype=dt,
                                             inp_shape=big, out_shape=small, PE=pe)))
            rows.append(("Unsqueeze_hls", dict(axes=axes, inp_dtype=dt, out_dtype=dt,
                                               inp_shape=small, out_shape=big, PE=pe)))
    return rows


EW_OPS = ("Add", "Sub", "Mul", "Div", "Max", "AbsDiff", "And", "Or", "Xor", "BitwiseAnd",
          "BitwiseOr", "BitwiseXor", "BitShift", "Equal", "Less", "LessOrEqual", "Greater",
          "GreaterOrEqual")


def memories() -> list[tuple[str, dict]]:
    """Lookup and the Elementwise* family with every memory option, FLOAT32 and mixed types."""
    rows: list[tuple[str, dict]] = []
    for (ne, ed), (et, it), mm, rs, shp in itertools.product(
            ((50257, 768), (1000, 64), (32, 16), (4096, 128), (128, 1024)),
            (("INT8", "UINT16"), ("FLOAT32", "UINT10"), ("INT4", "INT32")),
            ("internal_embedded", "external"), ("auto", "block", "distributed", "ultra"),
            ([1, 16], [1, 128], [4])):
        for emw in ((32, 64, 512) if mm == "external" else (32,)):
            rows.append(("Lookup_hls", dict(NumEmbeddings=ne, EmbeddingDim=ed, EmbeddingType=et,
                                            InputType=it, InputShape=shp, mem_mode=mm,
                                            ram_style=rs, ext_mem_width=emw)))
    shapes = [  # (lhs, rhs, out)
        ([1, 16, 64], [1, 16, 64], [1, 16, 64]),
        ([1, 16, 64], [64], [1, 16, 64]),
        ([1, 16, 64], [1], [1, 16, 64]),
        ([1, 16, 64], [1, 16, 1], [1, 16, 64]),
        ([1, 4, 16, 16], [1, 1, 16, 16], [1, 4, 16, 16]),
        ([1, 128, 768], [768], [1, 128, 768]),
        ([1, 8, 8, 32], [1, 1, 1, 32], [1, 8, 8, 32]),
        ([1, 32, 1], [1, 32, 1], [1, 32, 1]),
    ]
    types = (("INT8", "INT8", "INT16"), ("FLOAT32", "FLOAT32", "FLOAT32"),
             ("INT8", "FLOAT32", "FLOAT32"), ("UINT4", "INT6", "INT12"),
             ("FLOAT32", "INT8", "FLOAT32"))
    for op in EW_OPS:
        impls = ("hls", "rtl") if op in ("Add", "Sub", "Mul") else ("hls",)
        for impl, (ls, rs_, out), (lt, rt, ot) in itertools.product(impls, shapes, types):
            for lhs_style, rhs_style in (("input", "input"), ("input", "const")):
                for mm, ram in itertools.product(("internal_embedded", "internal_decoupled"),
                                                 ("auto", "block", "distributed", "ultra")):
                    if rhs_style == "input" and (mm, ram) != ("internal_embedded", "auto"):
                        continue
                    if op not in ("Add", "Mul") and (ls, rt) != ([1, 16, 64], "INT8") \
                            and ram not in ("auto", "distributed"):
                        continue
                    for pe in _divs(out[-1], (1, 4)):
                        rows.append((f"Elementwise{op}_{impl}", dict(
                            lhs_dtype=lt, rhs_dtype=rt, out_dtype=ot, lhs_shape=ls,
                            rhs_shape=rs_, out_shape=out, lhs_style=lhs_style,
                            rhs_style=rhs_style, PE=pe, mem_mode=mm, ram_style=ram)))
    return rows


def stages() -> list[tuple[str, dict]]:
    """Token padding/cropping and the infrastructure stages finn-plus inserts (data-path
    removal, TLAST marker, checksum). StreamingFIFO is not here: finn-plus 1.6.1 costs it with
    a model fitted to fifo.sv (finn/util/resource_models.py) that dse does not restate."""
    rows: list[tuple[str, dict]] = []
    for (tok, ch), (pl, pr), dt in itertools.product(
            ((16, 64), (196, 192), (1, 8)), ((0, 0), (1, 0), (0, 3), (2, 2)),
            ("INT8", "FLOAT32", "UINT2")):
        for simd in _divs(ch, (1, 2, 8)):
            rows.append(("Pad1D_rtl", dict(NumTokens=tok, NumChannels=ch, PadLeft=pl,
                                           PadRight=pr, SIMD=simd, inputDataType=dt,
                                           outputDataType=dt)))
    for impl, (h, w), (n, s_, we, e), simd, dt in itertools.product(
            ("hls", "rtl"), ((8, 8), (14, 20)), ((1, 1, 0, 2), (0, 0, 1, 1), (2, 3, 0, 0)),
            (1, 4), ("INT8", "UINT4")):
        rows.append((f"Crop_{impl}", dict(DataType=dt, ImgDim=[h, w], NumChannels=16,
                                          CropNorth=n, CropSouth=s_, CropWest=we, CropEast=e,
                                          SIMD=simd, numInputVectors=[1])))
    for (fs, ns), dt in itertools.product((([1, 16, 4], [1, 64]), ([2, 128, 8], [2, 1024])),
                                          ("INT8", "FLOAT32", "BIPOLAR")):
        rows.append(("RemoveDataPath_rtl", dict(folded_shape=fs, normal_shape=ns, dataType=dt)))
    for it, sw, ew in itertools.product((16, 1024), (32, 64, 512), (8, 32)):
        rows.append(("TLastMarker_hls", dict(NumIters=it, StreamWidth=sw, ElemWidth=ew,
                                             dataType="INT8", normal_shape=[1, it],
                                             folded_shape=[1, it, 1])))
    for wpf, ipw, dt in itertools.product((16, 1000), (1, 4, 16), ("INT8", "UINT2")):
        rows.append(("CheckSum_hls", dict(words_per_frame=wpf, items_per_word=ipw,
                                          inputDataType=dt, folded_shape=[1, wpf, ipw])))
    return rows


def mvau_plus() -> list[tuple[str, dict]]:
    """MVAU with every memory mode and style, tiling (TH) on the RTL core."""
    rows: list[tuple[str, dict]] = []
    for (mw, mh), (P, S), (idt, wdt), mm, rs in itertools.product(
            ((64, 64), (768, 768), (512, 3072), (16, 256), (1024, 96)),
            ((1, 1), (2, 4), (16, 16), (8, 64), (64, 32)),
            (("INT8", "INT8"), ("UINT4", "INT4"), ("INT8", "INT2")),
            ("internal_embedded", "internal_decoupled", "external", "dynamic"),
            ("auto", "block", "distributed", "ultra")):
        if mw % S or mh % P:
            continue
        for impl, th in (("hls", 1), ("rtl", 1), ("rtl", 2), ("rtl", 4)):
            if th > 1 and P % th:
                continue
            rows.append((f"MVAU_{impl}", dict(
                MW=mw, MH=mh, PE=P, SIMD=S, numInputVectors=[1, 128], inputDataType=idt,
                weightDataType=wdt, outputDataType="INT32", accDataType="INT32",
                noActivation=1, mem_mode=mm, ram_style=rs, TH=th,
                resType="lut" if impl == "hls" else "dsp", binaryXnorMode=0, ActVal=0)))
    return rows


def n_inputs(base: str, attrs: dict) -> int:
    if base == "ScaledDotProductAttention":
        return 4 if attrs["mask_mode"] == "input" else 3
    if base == "HWWhere":
        return 3
    if base == "MVAU" or base.startswith("Elementwise"):
        return 2
    return 1


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
        n_in = n_inputs(base, attrs)
        node = helper.make_node(op, [f"in{i}" for i in range(n_in)], ["out0"], domain=domain,
                                backend="fpgadataflow", name=f"{op}_0",
                                **{k: v for k, v in attrs.items() if v != []})
        row = {"op_type": op, "attrs": json.dumps(attrs, sort_keys=True)}
        try:
            inst = getCustomOp(node)
            cls = type(inst)
            row["exp_cycles"] = int(inst.get_exp_cycles())
            for k in ("lut", "bram", "uram", "dsp"):
                fn = getattr(inst, f"{k}_estimation")
                row["bram18" if k == "bram" else k] = int(fn(PART))
            row["cycles_model"] = int(cls.get_exp_cycles is not HWCustomOp.get_exp_cycles)
            row["resource_model"] = int(any(
                getattr(cls, f"{k}_estimation") is not getattr(HWCustomOp, f"{k}_estimation")
                for k in ("lut", "bram", "uram", "dsp")))
            n_out = attrs["heads"] if base == "SplitMultiHeads" else \
                attrs["num"] if base == "ReplicateStream" else 1
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
