"""Run the storage sweep's cases and die without closing anything, as a crash would.

Usage: python sweep_worker.py <root> <listing.json>. Failed in-process checks are printed on stderr
and the exit code is 1; otherwise the listing is written and the process ends with os._exit(0)
while its collections are open (and background compactions may be running).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from storage_cases import listing, sweep

if __name__ == "__main__":
    try:
        cases = sweep(Path(sys.argv[1]), close=False)
    except AssertionError:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    Path(sys.argv[2]).write_text(json.dumps(listing(cases)))
    os._exit(0)
