"""LLM configs with online Hadamard rotations (--rotation), model expansion (--expand) and
minifloat formats (--weights fp4 --acts fp8 --kv fp8)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dse.exceptions import SpecError
from dse.llm.config import load_arch, quant_spec
from dse.llm.network import build_network
from dse.llm.rotation import expanded, hadamard_size


def _block(rotation: str = "none", expand: float = 0.0, fmt=("int4", "int8", "int8")):
    q = quant_spec(*fmt, rotation=rotation, expand=expand)
    net = build_network(load_arch("llama2-7b"), q, "prefill", seq=16)
    return net, net.stacks[0].block


def _hadamards(g):
    return sorted((ly.attrs["NumChannels"], ly.attrs["Size"]) for ly in g.layers
                  if ly.op_type == "Hadamard")


def test_rotations_sit_where_spinquant_and_quarot_put_them() -> None:
    _, plain = _block()
    _, spin = _block("spinquant")
    _, quarot = _block("quarot")
    assert _hadamards(plain) == []
    # R3: queries and keys over head_dim 128; R4: the down projection's input, 11008 = 64 x 172
    assert _hadamards(spin) == [(128, 0), (128, 0), (11008, 0)]
    # QuaRot adds the rotation across the 32 heads before W_o
    assert _hadamards(quarot) == [(128, 0), (128, 0), (4096, 32), (11008, 0)]
    lut = [sum(ly.cost().lut for ly in g.layers) for g in (plain, spin, quarot)]
    assert lut[0] < lut[1] < lut[2]  # the rotations' hardware cost shows
    assert all(ly.cost().source == "dse model" for ly in spin.layers if ly.op_type == "Hadamard")


def test_expand_pads_the_rotated_dimension_to_a_hadamard_length() -> None:
    arch = load_arch("llama2-7b")
    assert hadamard_size(11008) == 11008 and hadamard_size(11559) == 12288  # 2^10 x 12
    assert expanded(arch, 0.05, "spinquant").intermediate == 12288
    assert expanded(arch, 0.05, "none").intermediate == 11559  # no rotation: padded only
    net, g = _block("spinquant", 0.05)
    assert net.arch.params() > load_arch("llama2-7b").params()
    assert (12288, 0) in _hadamards(g)
    down = [ly for ly in g.layers if ly.op_type == "MVAU" and ly.attrs["MW"] == 12288]
    assert len(down) == 1


def test_minifloat_llm_formats() -> None:
    q = quant_spec("fp4", "fp8", "fp8")
    assert (q.weights, q.acts, q.kv) == ("FP<2,1,1>", "FP<4,3,7,fn>", "FP<4,3,7,fn>")
    assert q.weight_bits == 4 and q.kv_bits == 8
    _, g = _block(fmt=("fp4", "fp8", "fp8"))
    mv = [ly for ly in g.layers if ly.op_type == "MVAU" and ly.attrs.get("mem_mode") != "dynamic"]
    assert mv and all(ly.attrs["weightDataType"] == "FP<2,1,1>" for ly in mv)
    assert all(ly.cost().source == "dse model" for ly in mv)
    with pytest.raises(SpecError, match="minifloat"):
        quant_spec("fp5", "int8")
    with pytest.raises(SpecError, match="--rotation"):
        quant_spec(rotation="hadamard")
    with pytest.raises(SpecError, match="--expand"):
        quant_spec(expand=-0.1)


def test_rotation_and_expand_change_the_llm_plan() -> None:
    def run(*opts: str) -> dict:
        # GPT-2 medium decoding on 2 V80 (Llama-2-7B, whose blocks do not roll on a V80,
        # needs 32 of them rotated; a U55C holds none of its blocks: the quantizers'
        # thresholds, as finn-plus books them, exceed an SLR)
        r = subprocess.run([sys.executable, "-m", "dse", "optimize", "--model", "gpt2-medium",
                            "--boards", "2", "--board", "V80", "--json", *opts],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    base, rot, exp = run(), run("--rotation", "quarot"), run("--rotation", "quarot",
                                                              "--expand", "0.05")
    assert rot["model"]["block_layers"] > base["model"]["block_layers"]
    assert exp["model"]["params"] > rot["model"]["params"]
    assert exp["metrics"]["tokens_per_s"] < rot["metrics"]["tokens_per_s"]
