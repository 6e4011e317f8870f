"""Runs in the finn-plus environment (its own interpreter): FINN's own InsertDWC and
InsertFIFO(create_shallow_fifos=True) and SpecializeLayers on a folded HW-layer graph, as
step_set_fifo_depths does before it sizes anything (sizing itself needs Vivado's simulator).

    python insert_fifos_dwcs.py CASES.json OUT.json

CASES: [{"model": path, "part": fpga part, "fifos": {consumer node: {"depth": d}}}]. OUT,
per case: every DWC (the HW layers it joins, its widths, FINN's estimate) and every FIFO in
front of a layer (the HW layers it joins, its width, and finn-plus's estimate once the case's
depth is set on it).
"""

from cases import run_cases  # (this directory: the scripts' protocol)
from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

INFRA = ("StreamingFIFO", "StreamingDataWidthConverter")


def _is_infra(n) -> bool:
    return n is not None and n.op_type.startswith(INFRA)


def _ends(m, n):
    """The HW layers a chain of FIFOs/DWCs through ``n`` joins (None: the graph boundary)."""
    p = m.find_producer(n.input[0])
    while _is_infra(p):
        p = m.find_producer(p.input[0])
    c = m.find_consumer(n.output[0])
    while _is_infra(c):
        c = m.find_consumer(c.output[0])
    return (p.name if p is not None else None), (c.name if c is not None else None)


def one(case: dict) -> dict:
    m = ModelWrapper(case["model"])
    m = m.transform(InsertDWC())
    m = m.transform(InsertFIFO(create_shallow_fifos=True))
    m = m.transform(SpecializeLayers(case["part"]))
    dwcs, fifos = [], []
    for n in m.graph.node:
        if not _is_infra(n):
            continue
        src, dst = _ends(m, n)
        inst = getCustomOp(n)
        if n.op_type.startswith("StreamingDataWidthConverter"):
            est = inst.node_res_estimation(case["part"])
            dwcs.append({"src": src, "dst": dst, "op_type": n.op_type,
                         "in_width": int(inst.get_nodeattr("inWidth")),
                         "out_width": int(inst.get_nodeattr("outWidth")),
                         "lut": int(est.get("LUT", 0))})
            continue
        # the FIFO right before the consumer (after any DWC) carries the consumer's width
        nxt = m.find_consumer(n.output[0])
        if _is_infra(nxt):
            continue
        want = case["fifos"].get(dst or "", None)
        if want:  # finn-plus 1.6.1 builds every FIFO as fifo.sv (impl_style rtl)
            inst.set_nodeattr("depth", int(want["depth"]))
        est = inst.node_res_estimation(case["part"])
        fifos.append({"src": src, "dst": dst, "width": int(inst.get_instream_width()),
                      "depth": int(inst.get_nodeattr("depth")),
                      **{k.lower(): int(est.get(k, 0)) for k in ("LUT", "BRAM_18K", "URAM")}})
    return {"dwcs": dwcs, "fifos": fifos}


if __name__ == "__main__":
    run_cases(one)
