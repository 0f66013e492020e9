"""MiniLM on SciFact and dbpedia, per segment, through vectorforge's own evaluation; and the
regression rules on real data: an unchanged re-run must not alarm, a degraded index must.

- SciFact test (300 claims, 5,183 abstracts): segments by query length (terciles).
- dbpedia test (40 judged queries, 5,000 entities): segments by source collection (the id prefix)
  and by query length.
- Reference: all-MiniLM-L6-v2's published SciFact nDCG@10, 0.6451 (MTEB).
- Regressions: each gold set is evaluated twice on an HNSW collection (the second run must find
  nothing), then SciFact on an IVF-Flat collection of the same vectors with nprobe 64 (of 64 lists:
  exact) against nprobe 1 (a degraded index: must alarm).

Writes bench/results/eval_minilm.json and the Markdown reports docs/reports/minilm-scifact.md and
docs/reports/minilm-dbpedia.md.

    python bench/eval_report.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import REPO, console, print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.evaluation.continuous import evaluate_and_record
from vectorforge.evaluation.goldsets import GoldSet, from_beir, segments_by_length, segments_by_prefix
from vectorforge.evaluation.report import report_markdown
from vectorforge.evaluation.runs import SearchConfig
from vectorforge.evaluation.workspace import Workspace

PUBLISHED_SCIFACT = 0.6451
REPORTS = REPO / "docs" / "reports"


def goldsets(shared: Path) -> dict[str, GoldSet]:
    sci = from_beir(shared / "data" / "scifact", name="scifact")
    sci = sci.with_segments("length", segments_by_length(dict(sci.queries)))
    dbp = from_beir(shared / "data" / "dbpedia", name="dbpedia")
    dbp = dbp.with_segments("source", segments_by_prefix(dbp.judged))
    dbp = dbp.with_segments("length", segments_by_length(dict(dbp.queries)))
    return {"scifact": sci, "dbpedia": dbp}


def summary(outcome: Any) -> dict[str, Any]:
    run = outcome.run
    return {
        "run_id": run.run_id,
        "metrics": run.metrics,
        "segments": {s: {m: v.to_json() for m, v in sc.items()} for s, sc in run.segments.items()},
        "baseline": outcome.baseline.run_id if outcome.baseline else None,
        "regressions": [(c.segment, c.metric, round(c.diff, 4)) for c in outcome.changes if c.regression],
    }


def main() -> None:
    shared = shared_path()
    tmp = Path(tempfile.mkdtemp(prefix="vf-eval-"))
    out: dict[str, Any] = {"published_scifact_ndcg10": PUBLISHED_SCIFACT}
    try:
        ws = Workspace(tmp)
        golds = goldsets(shared)
        with vf.connect(tmp) as db:
            for name, gold in golds.items():
                ws.goldsets.save(gold)
                ds = load_beir(shared / "data" / name, split=None)
                ids = list(ds.corpus)
                col = db.create_collection(name, embedder="minilm", index="hnsw")
                console.print(f"embedding {len(ids)} {name} documents (cached by model and text hash)")
                col.add([ds.doc_text(d) for d in ids], ids=ids, batch_size=256)
                first = evaluate_and_record(col, gold, ws.history, progress=True)
                again = evaluate_and_record(col, gold, ws.history, progress=True)
                out[name] = {
                    "first": summary(first),
                    "rerun": summary(again),
                    "rerun_alarmed": again.regressed,
                }
                REPORTS.mkdir(parents=True, exist_ok=True)
                (REPORTS / f"minilm-{name}.md").write_text(
                    report_markdown(again.run, again.changes, again.baseline)
                )
            # a degraded index on SciFact's vectors: IVF-Flat probed fully, then with one list of 64
            ds = load_beir(shared / "data" / "scifact", split=None)
            ids = list(ds.corpus)
            ivf = db.create_collection(
                "scifact_ivf", embedder="minilm", index="ivfflat", index_params={"nlist": 64, "nprobe": 64}
            )
            ivf.add([ds.doc_text(d) for d in ids], ids=ids, batch_size=256)
            ivf.flush()
            exact = evaluate_and_record(ivf, golds["scifact"], ws.history, progress=True)
            degraded = evaluate_and_record(
                ivf, golds["scifact"], ws.history, config=SearchConfig(params={"nprobe": 1}), progress=True
            )
            out["scifact_ivf"] = {
                "nprobe_64": summary(exact),
                "nprobe_1": summary(degraded),
                "degraded_alarmed": degraded.regressed,
            }
            (REPORTS / "minilm-scifact-ivf-nprobe1.md").write_text(
                report_markdown(degraded.run, degraded.changes, degraded.baseline)
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name in ("scifact", "dbpedia"):
        for seg, scores in out[name]["first"]["segments"].items():
            s = scores["ndcg@10"]
            rows.append([name, seg, s["n"], s["mean"], s["low"], s["high"]])
    print_table(
        "MiniLM nDCG@10 per segment (95% bootstrap interval)",
        ["gold set", "segment", "n", "mean", "low", "high"],
        rows,
    )
    sci = out["scifact"]["first"]["metrics"]["ndcg@10"]
    console.print(
        f"SciFact nDCG@10 {sci:.4f} (published {PUBLISHED_SCIFACT}: {sci - PUBLISHED_SCIFACT:+.4f})"
    )
    ivf = out["scifact_ivf"]
    before, after = ivf["nprobe_64"]["metrics"]["ndcg@10"], ivf["nprobe_1"]["metrics"]["ndcg@10"]
    console.print(
        f"re-runs alarmed: scifact {out['scifact']['rerun_alarmed']}, "
        f"dbpedia {out['dbpedia']['rerun_alarmed']}; "
        f"IVF nprobe 1 alarmed: {ivf['degraded_alarmed']} ({len(ivf['nprobe_1']['regressions'])} "
        f"regressions; nDCG@10 {before:.4f} -> {after:.4f})"
    )
    write_result("eval_minilm", out)


if __name__ == "__main__":
    main()
