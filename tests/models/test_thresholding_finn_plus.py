"""Thresholding_hls as finn-plus 1.6.1 estimates it (dse's default FINN line): the threshold
memory is PE x threshold bits x numSteps bits a word. The recorded numbers are finn-plus's own
(tests/data/finn_plus_thresholding_hls.json, written by tests/finn_scripts/
thresholding_hls_estimates.py in the finn-plus environment); the finn test reruns that script
and checks the record still holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.exceptions import LayerAttributeError
from dse.models import estimate
from dse.models.candidates import enumerate_options
from tests.conftest import TESTS

DATA = TESTS / "data" / "finn_plus_thresholding_hls.json"
CASES = json.loads(DATA.read_text())["cases"]
KEYS = ("lut", "bram18", "uram", "cycles", "weightstream_width")


def _dse(attrs: dict, finn: str = "plus") -> dict[str, int]:
    c = estimate("Thresholding_hls", attrs, "xcu55c-fsvh2892-2L-e", finn=finn)
    return {k: getattr(c, k) for k in KEYS}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "{NumChannels}-PE{PE}-{numSteps}steps-"
                         "{weightDataType}-{ram_style}".format(**c["attrs"]))
def test_dse_equals_finn_plus_estimates(case: dict) -> None:
    assert _dse(case["attrs"]) == case["finn_plus"]


def test_the_record_covers_every_ram_style_and_differs_from_finn_main() -> None:
    assert {c["attrs"]["ram_style"] for c in CASES} == {"block", "distributed", "ultra"}
    # a float quantizer of 32 channels, 255 steps, in BRAM: finn-plus books 510 BRAM18
    # (32 x 255 bits a word), FINN main 2 (a word of the 32 input bits)
    (c,) = [c for c in CASES if c["finn_plus"]["bram18"] == 510]
    assert _dse(c["attrs"], "main")["bram18"] == 2


def test_ultra_is_finn_plus_only() -> None:
    c = next(c for c in CASES if c["attrs"]["ram_style"] == "ultra")
    with pytest.raises(LayerAttributeError, match="ultra"):
        _dse(c["attrs"], "main")


def test_urams_are_offered_for_float_quantizers_as_finn_plus_builds_them() -> None:
    """URAM thresholds (runtime-writeable: UltraScale+ cannot initialize URAM from the
    bitstream) for a float input only; an integer input's thresholds finn-plus minimizes,
    which runtime-writeable thresholds would stop."""
    float_q = {"NumChannels": 4096, "numSteps": 255, "inputDataType": "FLOAT32",
               "weightDataType": "FLOAT32", "outputDataType": "INT8"}
    opts = enumerate_options("Thresholding_hls", float_q)
    ultra = [o for o in opts if o.attrs["ram_style"] == "ultra"]
    assert ultra and all(o.attrs["runtime_writeable_weights"] == 1 for o in ultra)
    # PE 1: ceil(32 x 255 / 72) URAMs, 4,096 words deep; in BRAM ceil(8160/16) x 4
    pe1 = {o.attrs["ram_style"]: o.cost for o in opts if o.attrs["PE"] == 1}
    assert (pe1["ultra"].uram, pe1["block"].bram18) == (114, 2040)
    int_q = dict(float_q, inputDataType="INT16", weightDataType="INT16")
    assert {o.attrs["ram_style"] for o in enumerate_options("Thresholding_hls", int_q)} == {
        "block", "distributed"}
    embedded = dict(float_q, mem_mode="internal_embedded")
    assert all(o.attrs["ram_style"] != "ultra"
               for o in enumerate_options("Thresholding_hls", embedded))


@pytest.mark.finn
def test_the_recorded_estimates_are_finn_plus_own(finn_env: Path, tmp_path: Path) -> None:
    from dse.backends.finn.runner import run_driver

    src, out = tmp_path / "cases.json", tmp_path / "out.json"
    src.write_text(json.dumps([c["attrs"] for c in CASES]))
    r = run_driver(finn_env, str(src), str(out),
                   script=TESTS / "finn_scripts" / "thresholding_hls_estimates.py", timeout=600)
    assert r.get("ok") and out.exists(), r
    assert json.loads(out.read_text()) == [c["finn_plus"] for c in CASES]
