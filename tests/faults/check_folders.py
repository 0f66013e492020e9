"""The fresh process of the fault sweep: open each data folder, report what it holds, write again.

Usage: python check_folders.py cases.json  ->  prints one JSON object per case on stdout:
{"case", "points": {id: version}, "seqs": [...], "error": str|None, "write_again": "ok"|error,
 "snapshot": {id: version}|None}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import vectorforge as vf
from vectorforge.storage import WriteAheadLog

AGAIN_ID = 77


def versions(col: vf.Collection) -> dict[str, int]:
    page = col.scroll(limit=10_000)
    return {str(r.id): int(r.payload["v"]) for r in page.records if r.payload is not None}


def check(case: dict[str, str]) -> dict[str, object]:
    folder = Path(case["folder"])
    out: dict[str, object] = {"case": case["name"], "error": None, "snapshot": None}
    # The sequence numbers in the log, read before opening (opening seals nothing, but be exact).
    wal = WriteAheadLog(folder / "collections" / "c" / "wal")
    out["seqs"] = [r["seq"] for r in wal.replay(after_seq=0)]
    try:
        with vf.connect(str(folder)) as db:
            col = db.get_collection("c")
            out["points"] = versions(col)
            try:
                col.upsert([AGAIN_ID], np.full((1, 8), 0.5, dtype="float32"), [{"v": 9}])
                out["write_again"] = "ok" if col.get([AGAIN_ID])[0].payload == {"v": 9} else "lost"
            except vf.VectorForgeError as exc:
                out["write_again"] = f"{type(exc).__name__}: {exc}"
            snapshot = case.get("snapshot")
            if snapshot and Path(snapshot).exists():
                out["snapshot"] = versions(db.restore(snapshot, name="restored"))
    except vf.VectorForgeError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    for case in json.loads(Path(sys.argv[1]).read_text()):
        print(json.dumps(check(case)), flush=True)
