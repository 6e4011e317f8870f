"""Integer vs minifloat MVAUs at equal bit width (3..8 bits), on networks exported here.

The seed question (Aggarwal, Damsgaard, Pappalardo, Franco, Preusser, Blott, Mitra, "Shedding the
Bits", FPL 2024, arXiv:2311.12359; first version "Post-training quantization with low-precision
minifloats and integers on FPGAs"): under an FPGA cost model, are integers "often
Pareto-optimal" against minifloats of the same bits?

For each network (the small CNN and the tiny BERT block of ``tests/minifloat_networks.py``,
brevitas, seeded random weights) and each format of 3..8 bits (``int<b>`` with brevitas' Int
quantizers; ``e<E>m<M>`` with brevitas' FpOCP quantizers, every E >= 2 split of the bits), the
network is exported through ``export_qonnx`` (TorchScript), lowered by dse, and

* ``mac_lut``: LUTs of one PE x SIMD lane of its compute layers' MAC datapath (FINN's integer
  multiplier + adder terms for integers; dse's minifloat datapath, dse.models.minifloat), the
  first MVAU's formats;
* ``lut_at_ref`` / ``dsp_at_ref``: the compute layers' LUT/DSP at one folding for all formats
  (every MVAU/VVAU at SIMD = its fan-in, PE = 1; LUT multipliers);
* ``fps`` / ``lut`` / ``dsp``: ``dse optimize`` on one board (default ZCU104, 100 MHz caps of
  FINN) with everything else as dse chooses.

Accuracy needs trained weights, which this benchmark does not have; so the Pareto question is
answered on the hardware axis: at equal bits, does the integer MVAU cost less (then a minifloat
is only Pareto-optimal where its accuracy beats the integer's), and which integer width costs
what the minifloat costs (``int_bits_at_same_lut``).

Usage: python benchmarks/minifloat_benchmark.py [--board ZCU104]
                                                [--out results/minifloat_benchmark.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = {b: [f"int{b}"] + [f"e{e}m{b - 1 - e}" for e in range(2, b) if b - 1 - e >= 0
                             and e <= 5]
           for b in range(3, 9)}
NETWORKS = ("cnn", "bert")


def mac_lut(layer) -> int:
    from dse.models import normalize_attrs
    from dse.models.minifloat import applies, layer_datapath

    a = normalize_attrs(layer.op_type, layer.finn_attrs())
    if applies(layer.op_type, a):
        return layer_datapath(layer.op_type, a).lut_lane
    from dse.models._common import bits, ceil_div

    n = bits(a["weightDataType"]) + bits(a["inputDataType"])
    return (2 * ceil_div(n, 6) - 1) * n + n  # FINN's multiplier + one adder per lane


def reference_cost(graph) -> tuple[int, int]:
    """LUT/DSP of the compute layers at one folding for every format: SIMD = fan-in, PE = 1,
    HLS with LUT multipliers (the RTL MVAU FINN picks for >= 4-bit integers books DSPs and
    0 LUT, which would not compare); dse's minifloat model is HLS-style by construction."""
    from dse.models import estimate

    lut = dsp = 0
    for ly in graph.layers:
        if ly.op_type not in ("MVAU", "VVAU"):
            continue
        a = ly.finn_attrs()
        simd = a["MW"] if ly.op_type == "MVAU" else a["Kernel"][0] * a["Kernel"][1]
        c = estimate(f"{ly.op_type}_hls", {**a, "SIMD": simd, "PE": 1, "resType": "lut"})
        lut, dsp = lut + c.lut, dsp + c.dsp
    return lut, dsp


def run(board: str, out: Path, time_limit: float) -> list[dict]:
    from dse import api
    from dse.exceptions import DseError
    from dse.ir.lower import load_network
    from tests.minifloat_networks import export

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in NETWORKS:
            for bits, fmts in FORMATS.items():
                for fmt in fmts:
                    t0 = time.perf_counter()
                    path = export(net, fmt, Path(tmp))
                    g = load_network(path)
                    first = next(ly for ly in g.layers if ly.op_type in ("MVAU", "VVAU"))
                    ref_lut, ref_dsp = reference_cost(g)
                    row = {"network": net, "bits": bits, "format": fmt,
                           "kind": "int" if fmt.startswith("int") else "minifloat",
                           "weight_type": first.attrs["weightDataType"],
                           "mac_lut": mac_lut(first), "lut_at_ref": ref_lut,
                           "dsp_at_ref": ref_dsp}
                    try:
                        r = api.optimize(path, boards=1, board=board, time_limit=time_limit,
                                         record_time=False)
                        ev = r.result.evaluation
                        row.update(fps=round(float(ev.fps), 1),
                                   lut=sum(u["lut"] for u in ev.usage),
                                   dsp=sum(u["dsp"] for u in ev.usage))
                    except DseError as e:
                        row.update(fps=0.0, reason=str(e)[:120])
                    row["wall_s"] = round(time.perf_counter() - t0, 1)
                    rows.append(row)
                    print(row, flush=True)
    add_equivalent_int_bits(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = ["network", "bits", "format", "kind", "weight_type", "mac_lut", "lut_at_ref",
            "dsp_at_ref", "fps", "lut", "dsp", "int_bits_at_same_lut", "wall_s", "reason"]
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return rows


def add_equivalent_int_bits(rows: list[dict]) -> None:
    """For each minifloat: the widest integer of the same network whose reference LUT is no
    more than the minifloat's (the integer a designer gets for the same logic)."""
    for r in rows:
        if r["kind"] != "minifloat":
            continue
        ints = [x for x in rows if x["network"] == r["network"] and x["kind"] == "int"
                and x["lut_at_ref"] <= r["lut_at_ref"]]
        r["int_bits_at_same_lut"] = max((x["bits"] for x in ints), default="")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "results" / "minifloat_benchmark.csv"))
    a = ap.parse_args()
    run(a.board, Path(a.out), a.time_limit)


if __name__ == "__main__":
    main()
