"""Every row of FINN's own estimates must be reproduced exactly by dse.models.estimate."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from dse.models import estimate
from dse.models._common import COST_DSE, COST_FINN
from tests.conftest import shared_path

PARTS = {
    "dsp_7series": "xc7z020clg400-1",
    "dsp_usplus": "xcu250-figd2104-2L-e",
    "dsp_versal": "xcvc1902-vsva2197-2MP-e-S",
}
FIRST_OUTPUT_COLUMN = "exp_cycles"


def _csv_files() -> list[Path]:
    root = shared_path("reference", "finn_estimates")
    return sorted(root.glob("*.csv")) + sorted((root / "dev").glob("*.csv"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _attrs(row: dict[str, str]) -> dict[str, str]:
    keys = list(row)
    start, stop = keys.index("domain") + 1, keys.index(FIRST_OUTPUT_COLUMN)
    return {k: row[k] for k in keys[start:stop] if row[k] != ""}


def _compare(row: dict[str, str], finn: str) -> list[str]:
    op = row["op_type"]
    attrs = _attrs(row)
    bad = []
    cost = estimate(op, attrs, PARTS["dsp_usplus"], finn=finn)
    # where FINN has no model (its HWCustomOp default 0) dse uses its own: FINN must then
    # really say 0, and only what FINN does estimate is compared
    finn_resources = cost.source == COST_FINN
    finn_cycles = cost.source != COST_DSE
    for col, part in PARTS.items():
        if not finn_resources:
            break
        ours = estimate(op, attrs, part, finn=finn).dsp
        if ours != int(float(row[col])):
            bad.append(f"{col}: {ours} != {row[col]}")
    expect = {"exp_cycles": cost.cycles if finn_cycles else 0}
    if finn_resources:
        expect.update(lut=cost.lut, bram18=cost.bram18, uram=cost.uram)
    for i, w in enumerate(cost.instream_widths):
        sfx = "" if i == 0 else f"_{i}"
        expect[f"instream_width{sfx}"] = w
        expect[f"instream_width_padded{sfx}"] = cost.instream_widths_padded[i]
    for i, w in enumerate(cost.outstream_widths):
        sfx = "" if i == 0 else f"_{i}"
        expect[f"outstream_width{sfx}"] = w
        expect[f"outstream_width_padded{sfx}"] = cost.outstream_widths_padded[i]
    if "weightstream_width" in row:
        expect["weightstream_width"] = cost.weightstream_width
    for col, ours in expect.items():
        if col not in row or row[col] == "":
            bad.append(f"{col}: we give {ours}, FINN has no such column/value")
            continue
        if int(float(row[col])) != ours:
            bad.append(f"{col}: {ours} != {row[col]}")
    # further stream widths FINN lists that we did not produce
    for col in row:
        if col.startswith(("instream_width", "outstream_width")) and row[col] != "":
            if col not in expect:
                bad.append(f"{col}: missing (FINN {row[col]})")
    nov = row["number_output_values"]
    if nov.startswith("{"):
        words = [int(v) for v in json.loads(nov.replace("'", '"')).values()]
        if list(cost.output_words) != words:
            bad.append(f"number_output_values: {cost.output_words} != {words}")
    elif int(nov) != sum(cost.output_words):  # FINN main sums over all outputs
        bad.append(f"number_output_values: {sum(cost.output_words)} != {nov}")
    return bad


@pytest.mark.parametrize("path", _csv_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_reference_rows_exact(path: Path) -> None:
    finn = "dev" if path.parent.name == "dev" else "main"
    rows = _rows(path)
    assert rows, f"{path} has no rows"
    failures = []
    for i, row in enumerate(rows):
        bad = _compare(row, finn)
        if bad:
            failures.append(f"row {i + 2}: {'; '.join(bad)}")
    assert not failures, f"{len(failures)}/{len(rows)} rows differ:\n" + "\n".join(failures[:15])


def test_reference_row_count() -> None:
    """Guard against silently reading fewer rows.

    The README of finn_estimates says 960 dev rows (8,340 in all), but its own per-file counts
    add up to 920, and so do the files: 7,380 main + 920 dev = 8,300 rows.
    """
    counts = Counter(p.parent.name for p in _csv_files() for _ in _rows(p))
    assert counts["finn_estimates"] == 7380
    assert counts["dev"] == 920
