"""Runs in the finn-plus environment (its own interpreter): finn-plus's own estimates of one
Thresholding_hls node per case, built from the case's attributes alone (no thresholds needed:
the estimates read node attributes only).

    python thresholding_hls_estimates.py CASES.json OUT.json

CASES: [{attribute: value}] (FINN attribute names; lists as lists). OUT, per case: the
node's lut_estimation, bram_estimation, uram_estimation, get_exp_cycles and the width of
its threshold stream (get_instream_width(1)), on the part PART.
"""

from cases import run_cases  # (this directory: the scripts' protocol)
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

PART = "xcu55c-fsvh2892-2L-e"


def one(case: dict) -> dict:
    node = helper.make_node("Thresholding_hls", ["inp", "thresh"], ["out"],
                            domain="finn.custom_op.fpgadataflow.hls", **case)
    op = getCustomOp(node)
    return {"lut": int(op.lut_estimation(PART)), "bram18": int(op.bram_estimation(PART)),
            "uram": int(op.uram_estimation(PART)), "cycles": int(op.get_exp_cycles()),
            "weightstream_width": int(op.get_instream_width(1))}


run_cases(one)
