"""Public cost-model API: op-type handling, errors, folding options and pruning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.exceptions import IllegalFoldingError, LayerAttributeError, UnknownOpError
from dse.models import divisors, estimate, known_op_types
from dse.models.candidates import enumerate_options, prune_dominated

MVAU = {"MW": 784, "MH": 64, "PE": 2, "SIMD": 28, "inputDataType": "BINARY",
        "weightDataType": "BINARY", "outputDataType": "BINARY", "binaryXnorMode": 1,
        "accDataType": "INT10", "resType": "lut"}


def test_generic_and_specialized_names() -> None:
    # tfc_w1a1 MVAU_hls_0 as finn-plus reports it: 896 cycles, 687 LUT, 4 BRAM18
    c = estimate("MVAU_hls", MVAU)
    assert (c.cycles, c.lut, c.bram18) == (896, 687, 4)
    assert estimate("MVAU", MVAU).op_type == "MVAU_hls"  # binary MVAU cannot be RTL
    rtl_ok = dict(MVAU, inputDataType="INT8", weightDataType="INT8", binaryXnorMode=0,
                  noActivation=1, outputDataType="INT32")
    assert estimate("MVAU", rtl_ok).op_type == "MVAU_rtl"


def test_lists_and_json_strings_are_equivalent() -> None:
    a = estimate("MVAU_hls", dict(MVAU, numInputVectors=[1, 7, 7]))
    b = estimate("MVAU_hls", dict(MVAU, numInputVectors="[1, 7, 7]"))
    assert a == b and a.cycles == 49 * 896


def test_unknown_op_lists_known_ones() -> None:
    with pytest.raises(UnknownOpError, match="MVAU_hls"):
        estimate("Conv2D_hls", {})
    with pytest.raises(UnknownOpError, match="no RTL variant"):
        estimate("Pool_rtl", {"Channels": 4})


def test_bad_attributes_are_named() -> None:
    with pytest.raises(IllegalFoldingError, match=r"PE=3 must divide MH=64; legal values"):
        estimate("MVAU_hls", dict(MVAU, PE=3))
    with pytest.raises(LayerAttributeError, match="unknown data type 'INT99X'"):
        estimate("MVAU_hls", dict(MVAU, inputDataType="INT99X"))
    with pytest.raises(LayerAttributeError, match="must be an integer"):
        estimate("MVAU_hls", dict(MVAU, PE="two"))


def test_dsp_depends_on_part_family_for_mvau_rtl() -> None:
    a = {"MW": 64, "MH": 64, "PE": 8, "SIMD": 6 * 2, "inputDataType": "INT8",
         "weightDataType": "INT8", "noActivation": 1, "outputDataType": "INT32"}
    a["SIMD"] = 16
    assert estimate("MVAU_rtl", a, "xcvc1902-vsva2197-2MP-e-S").dsp == 8 * 6
    assert estimate("MVAU_rtl", a, "xcu55c-fsvh2892-2L-e").dsp == 2 * 16
    assert estimate("MVAU_rtl", a, "xc7z020clg400-1").dsp == 2 * 16


def test_registry_covers_reference_ops() -> None:
    known = set(known_op_types())
    for op in ("MVAU_hls", "VVAU_rtl", "ConvolutionInputGenerator_hls", "Thresholding_rtl",
               "StreamingFIFO_rtl", "ElementwiseAdd_rtl", "LayerNorm_rtl", "HWSoftmax_hls"):
        assert op in known


@settings(max_examples=15, deadline=None, derandomize=True)
@given(mw=st.sampled_from([9, 27, 64, 288, 576]), mh=st.sampled_from([10, 32, 64, 96]),
       a=st.sampled_from(["UINT4", "INT8", "BINARY"]), w=st.sampled_from(["INT4", "INT2"]))
def test_mvau_options_are_legal_and_pruning_keeps_the_front(mw: int, mh: int, a: str,
                                                            w: str) -> None:
    attrs = {"MW": mw, "MH": mh, "inputDataType": a, "weightDataType": w,
             "outputDataType": "UINT4", "numInputVectors": [1, 8, 8]}
    opts = enumerate_options("MVAU_hls", attrs, weight_bits=mw * mh * 4)
    assert opts
    for o in opts:
        assert mh % o.attrs["PE"] == 0 and mw % o.attrs["SIMD"] == 0
        assert mw // o.attrs["SIMD"] <= 1024
    kept = prune_dominated(opts)
    # the fastest option always survives; nothing kept is dominated by anything
    assert min(o.cost.cycles for o in kept) == min(o.cost.cycles for o in opts)
    for k in kept:
        for o in opts:
            v, u = o.vector(), k.vector()
            assert not (all(x <= y for x, y in zip(v, u)) and v != u), (o, k)
    # every dropped option is dominated by (or equal to) a kept one
    for o in opts:
        assert any(all(x <= y for x, y in zip(k.vector(), o.vector())) for k in kept)


def test_divisors() -> None:
    assert divisors(12) == [1, 2, 3, 4, 6, 12]
    assert divisors(1) == [1]
    assert divisors(49) == [1, 7, 49]


def test_enumerated_options_are_kept_per_process_by_their_arguments() -> None:
    from dse.models import candidates

    attrs = {"MW": 64, "MH": 32, "inputDataType": "INT4", "weightDataType": "INT4",
             "outputDataType": "UINT4", "numInputVectors": [1, 8, 8]}
    first = enumerate_options("MVAU_hls", attrs, weight_bits=64 * 32 * 4)
    first.clear()  # the caller's own list: the kept answer is not touched
    again = enumerate_options("MVAU_hls", dict(attrs), weight_bits=64 * 32 * 4)
    assert again and again == enumerate_options("MVAU_hls", attrs, weight_bits=64 * 32 * 4)
    candidates._OPTIONS.clear()
    assert enumerate_options("MVAU_hls", attrs, weight_bits=64 * 32 * 4) == again
    # any argument that changes the answer is in the key: 32 vs 32.0, lists vs tuples too
    no_ext = enumerate_options("MVAU_hls", attrs, weight_bits=64 * 32 * 4, allow_external=False)
    assert len(no_ext) < len(again)
    assert candidates._frozen(32) != candidates._frozen(32.0)
    assert candidates._frozen([1, 8]) != candidates._frozen((1, 8))
