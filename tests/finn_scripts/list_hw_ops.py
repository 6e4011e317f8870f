"""Runs in the finn-plus environment: every HLS/RTL op class finn-plus registers (the op types
its SpecializeLayers can turn a layer into).

    python list_hw_ops.py
"""

import json

import finn.custom_op.fpgadataflow.hls as hls
import finn.custom_op.fpgadataflow.rtl as rtl

names = sorted(n for m in (hls, rtl) for n, v in vars(m).get("custom_op", {}).items()
               if n.endswith(("_hls", "_rtl")))
print("DSE_RESULT " + json.dumps({"ok": True, "ops": names}))
