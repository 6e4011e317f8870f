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


@pytest.mark.finn
def test_the_recorded_estimates_are_finn_plus_own(finn_env: Path, tmp_path: Path) -> None:
    from dse.backends.finn.runner import run_driver

    src, out = tmp_path / "cases.json", tmp_path / "out.json"
    src.write_text(json.dumps([c["attrs"] for c in CASES]))
    r = run_driver(finn_env, str(src), str(out),
                   script=TESTS / "finn_scripts" / "thresholding_hls_estimates.py", timeout=600)
    assert r.get("ok") and out.exists(), r
    assert json.loads(out.read_text()) == [c["finn_plus"] for c in CASES]
