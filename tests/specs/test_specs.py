"""Board catalog, shells, caps and user board files."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from dse.exceptions import SpecError
from dse.specs import (
    DEFAULT_CAPS,
    EXTERNAL_NAMES,
    KINDS,
    RESOURCE_NAMES,
    Resources,
    default_catalog,
    load_catalog,
    validate_caps,
)

ISSUE_BOARDS = ["U50", "U55C", "U200", "U250", "U280", "V80", "VCK5000", "Pynq-Z1", "Pynq-Z2",
                "Ultra96", "ZCU102", "ZCU104", "KV260"]


def test_catalog_has_every_board() -> None:
    cat = default_catalog()
    for b in ISSUE_BOARDS:
        assert cat.board(b).name == b
    assert cat.board("u55c").part == "xcu55c-fsvh2892-2L-e"  # case-insensitive


def test_catalog_matches_reference_table(shared: Path) -> None:
    import csv

    cat = default_catalog()
    for row in csv.DictReader((shared / "reference" / "boards.csv").open()):
        b = cat.board(row["board"])
        assert b.part == row["part"]
        assert b.device.as_dict() == {k: int(row[k]) for k in ("lut", "ff", "bram18", "uram",
                                                                  "dsp")}
        assert b.hbm_channels == int(row["hbm_channels"])


def test_u55c_coyote_overheads() -> None:
    cat = default_catalog()
    b = cat.board("U55C")
    single = cat.configure("U55C").capacity(False)
    multi = cat.configure("U55C").capacity(True)
    coyote = cat.shell("coyote")
    # Coyote static + minimal shell (Vivado report) + HBM controller, then x FINN caps
    expect = (b.device - coyote.base - coyote.memory_controller).scaled(DEFAULT_CAPS)
    assert single == expect
    assert multi.lut == int((b.device.lut - 133578 - 10718 - 35219 - 40000) * 0.7)
    assert multi.lut < single.lut
    assert b.hbm_channel_gbps == pytest.approx(460 / 32)


def test_vitis_shell_uses_finn_slr_tables() -> None:
    cat = default_catalog()
    cfg = cat.configure("U250", shell="vitis")
    area = Resources(lut=4 * 375000, ff=4 * 750000, bram18=4 * 1152, uram=4 * 320, dsp=4 * 2880)
    ddr = cat.shell("vitis").ddr_controller
    assert cfg.capacity(False) == (area - ddr - ddr - ddr - ddr).scaled(DEFAULT_CAPS)


def test_caps_validation() -> None:
    assert validate_caps({"lut": 0.9})["lut"] == 0.9
    assert validate_caps(None) == dict(DEFAULT_CAPS)
    with pytest.raises(SpecError, match="unknown resource 'luts'"):
        validate_caps({"luts": 0.5})
    with pytest.raises(SpecError, match=r"fraction in \(0, 1\]"):
        validate_caps({"dsp": 1.5})


def test_unknown_board_and_shell() -> None:
    cat = default_catalog()
    with pytest.raises(SpecError, match="known boards: .*U55C"):
        cat.board("U99")
    with pytest.raises(SpecError, match="does not support shell 'coyote'"):
        cat.configure("ZCU104", shell="coyote")


def test_user_board_toml(tmp_path: Path) -> None:
    f = tmp_path / "boards.toml"
    f.write_text(
        '[[boards]]\nname = "MyCard"\npart = "xcu55c-fsvh2892-2L-e"\nshells = ["vitis"]\n'
        "[boards.device]\nlut = 1000000\nff = 2000000\nbram18 = 4000\nuram = 900\ndsp = 9000\n"
        "[boards.hbm]\ngib = 16\nbandwidth_gbps = 460\nchannels = 32\n"
    )
    cat = load_catalog([f])
    b = cat.board("MyCard")
    assert b.device.lut == 1_000_000 and b.hbm_channels == 32
    assert cat.configure("MyCard").capacity(False).lut == int((1_000_000 - 10718) * 0.7)


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"boards": [{"name": "X", "part": "p"}]}', r"boards\[0\]\.device: missing"),
        ('{"boards": [{"name": "X", "part": "p", "device": {"lut": -5}}]}',
         r"boards\[0\]\.device\.lut = -5: Input should be greater than or equal to 0"),
        ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 5, "luts": 1}}]}',
         r"device\.luts = 1: unknown field"),
        ('{"boards": []}', r"defines no \[\[boards\]\] and no \[\[devices\]\]"),
        ("{not json", "not valid JSON"),
        ('{"boards": [{"name": "X", "part": "p", "device": {"lut": 5}, "shells": ["aws"]}]}',
         "unknown shell 'aws'"),
    ],
)
def test_user_board_errors(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "b.json"
    f.write_text(content)
    with pytest.raises(SpecError, match=match):
        load_catalog([f])


def test_missing_board_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read board file"):
        load_catalog([tmp_path / "nope.toml"])


def test_resources_arithmetic() -> None:
    a = Resources(lut=10, ff=2, bram18=3, uram=0, dsp=1)
    assert (a + a).lut == 20 and (a - a).as_dict() == Resources().as_dict()
    assert a.over(Resources(lut=5, ff=5, bram18=5, uram=5, dsp=5)) == ["lut"]
    json.dumps(a.as_dict())


def test_resources_carry_external_memory_and_keep_the_file_form() -> None:
    """The solver's record: FPGA resources and external memory in one; plan and spec files
    see the five FPGA names only (in their fixed order) unless the external kinds are asked."""
    a = Resources(lut=10, bram18=2, ext_bits=64, ext_bpf=128, ext_channels=1)
    b = Resources(lut=5, dsp=3, ext_channels=2)
    s = a + b
    assert s == Resources(lut=15, bram18=2, dsp=3, ext_bits=64, ext_bpf=128, ext_channels=3)
    assert s - b == a
    assert a.fits(s) and not s.fits(a) and s.over(a) == ["lut", "dsp", "ext_channels"]
    assert not a.fits(b) and a.fits(a.with_counts(lut=11, ext_bpf=0), RESOURCE_NAMES)
    assert list(a.as_dict()) == list(RESOURCE_NAMES)
    assert list(a.as_dict(external=True)) == list(KINDS) and a.as_dict(external=True)[
        "ext_bpf"] == 128
    assert Resources.from_dict(a.as_dict()) == Resources(lut=10, bram18=2)
    assert Resources.least([a, b]) == Resources(lut=5, ext_channels=1)
    assert Resources.most([a, b]) == s.with_counts(lut=10, ext_channels=2)
    assert Resources.total([a, b, b]) == s + b and b.times(2) == b + b
    assert a.plus("bram18", 3).bram18 == 5 and a.bram18 == 2  # a copy: records are frozen
    assert a.get("ext_bits") == 64 and a.get("not_a_kind", 7) == 7
    assert dict(a.items(EXTERNAL_NAMES)) == {"ext_bits": 64, "ext_bpf": 128, "ext_channels": 1}
    assert a.fraction_of(Resources(lut=20), "lut") == 0.5
    assert a.fraction_of(Resources(), "bram18") == 2.0  # against 1 where the capacity is 0
    assert Resources.uniform(9).values() == [9] * len(KINDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.lut = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Resources(1)  # type: ignore[misc]


def test_resources_spelled_out_paths_match_the_loop_over_kinds() -> None:
    """``+``, ``-`` and ``fits`` are spelled out field by field for speed: they agree with
    the same operation walked kind by kind."""
    rng = random.Random(21)
    for _ in range(300):
        x, y = (Resources(**{k: rng.randint(0, 6) for k in KINDS}) for _ in range(2))
        assert (x + y).values() == [u + v for u, v in zip(x.values(), y.values(), strict=True)]
        assert (x - y).values() == [u - v for u, v in zip(x.values(), y.values(), strict=True)]
        assert x.fits(y) == all(u <= v for u, v in zip(x.values(), y.values(), strict=True))
        w = {k: rng.random() for k in KINDS}
        assert x.weighted(w) == sum(w[k] * v for k, v in x.items())  # bit for bit
        assert x.fits(y) == x.fits(y, list(KINDS)) and x.over(y) == [
            k for k in KINDS if x.get(k) > y.get(k)]
