"""The protocol of the scripts here (they run in the finn-plus environment):
``script.py CASES.json OUT.json``; each case's result, or its error, in OUT; dse's runner reads
the last ``DSE_RESULT`` line."""

import json
import sys
import traceback


def run_cases(one) -> None:
    out = []
    for case in json.load(open(sys.argv[1])):
        try:
            out.append(one(case))
        except Exception:
            out.append({"error": traceback.format_exc()[-800:]})
    json.dump(out, open(sys.argv[2], "w"))
    print("DSE_RESULT " + json.dumps({"ok": True}), flush=True)  # (dse's runner protocol)
