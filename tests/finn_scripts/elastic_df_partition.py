"""Runs in the finn-plus environment (its own interpreter): FINN's own Elastic-DF partitioner
(``finn.analysis.fpgadataflow.partitioning.partition``, python-mip/CBC) on one U55C, for
folded HW-layer graphs and per-resource limits.

    python elastic_df_partition.py CASES.json OUT.json

CASES: [{"model": path, "folding": {node: {attr: value}}, "limits": [lut, ff, bram, uram,
dsp]}]. OUT, per case: FINN's decision (``feasible``), its SLR per node, and the numbers it
decided on: each node's resource estimate, each stream (producer, consumer, padded width),
the per-SLR resources after its shell parts (``guide``) and its SLL counts.
"""

import numpy as np
from cases import run_cases  # (this directory: the scripts' protocol)
from finn.analysis.fpgadataflow.partitioning import partition
from finn.util.platforms import platforms
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

PART = "xcu55c-fsvh2892-2L-e"


def one(case: dict) -> dict:
    m = ModelWrapper(case["model"])
    for n in m.graph.node:
        for k, v in case["folding"].get(n.name, {}).items():
            getCustomOp(n).set_nodeattr(k, v)
    est, edges = {}, []
    for n in m.graph.node:
        est[n.name] = {k: float(v) for k, v in
                       getCustomOp(n).node_res_estimation(PART).items()}
        for p in m.find_direct_predecessors(n) or []:
            edges.append([p.name, n.name, int(getCustomOp(p).get_outstream_width_padded())])
    limits = np.array(case["limits"])
    pf = platforms["U55C"](1, limits=limits)
    fp = partition(m, 5.0, "U55C", ndevices=1, timeout=60, multivariant=False, limits=limits)
    slr = None if fp is None else {k: v["slr"] for k, v in fp[0].items() if k != "Defaults"}
    return {"feasible": fp is not None, "slr": slr, "est": est, "edges": edges,
            "guide": [[int(x) for x in r] for r in pf.guide_resources],
            "sll": [[int(x) for x in r] for r in pf.sll_count]}


if __name__ == "__main__":
    run_cases(one)
