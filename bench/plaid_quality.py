"""SciFact test nDCG@10 of the trained ColBERT (colbert-minilm, bench/colbert.py trains it) through
exact MaxSim (`flat`), through PLAID at 2 and 4 bits, with token pooling 1 / 2 / 3, and through the
MUVERA first stage re-ranked by exact MaxSim (index kind `muvera`); beside the
single-vector figures of bench/results/colbert.json and finetune.json (MiniLM 0.645, fine-tuned).

The corpus is encoded once (the token cache makes later runs fast); every PLAID and MUVERA
collection takes the same token matrices and is sealed with `exact_below_tokens: 0`, so the index
(not its exact fallback) answers: PLAID at the reference's defaults for k = 100 (ncells 2,
threshold 0.45, ndocs 1024), MUVERA at its defaults or the candidates a row names.
Writes bench/results/plaid_quality.json.

    python bench/plaid_quality.py
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.embed.tokens import get_token_encoder
from vectorforge.evaluation.evaluator import evaluate_collection
from vectorforge.evaluation.runs import SearchConfig
from vectorforge.finetune import GuardSet
from vectorforge.multivector.colbert import COLBERT_MINILM

METRICS = ("ndcg@10", "recall@100", "mrr@10")
# (label, index kind, index_params, search params or None for the index's defaults at k = 100)
CONFIGS: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
    ("flat (exact MaxSim)", "flat", {}, None),
    ("plaid 2 bits", "plaid", {"nbits": 2}, None),
    ("plaid 4 bits", "plaid", {"nbits": 4}, None),
    ("plaid 2 bits, pool 2", "plaid", {"nbits": 2, "pool_factor": 2}, None),
    ("plaid 2 bits, pool 3", "plaid", {"nbits": 2, "pool_factor": 3}, None),
    # MUVERA + re-rank: 5,120-d FDEs in HNSW, exact MaxSim of the candidates (default 40 k = 4,000
    # of SciFact's 5,183 documents at k = 100, nearly exhaustive; hence the two smaller lists)
    ("MUVERA + re-rank", "muvera", {}, None),
    ("MUVERA + re-rank, 1000 candidates", "muvera", {}, {"candidates": 1000}),
    ("MUVERA + re-rank, 400 candidates", "muvera", {}, {"candidates": 400}),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="run the rows whose label starts with one of these; "
        "the other rows are kept from the last bench/results/plaid_quality.json",
    )
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.only is None or any(c[0].startswith(o) for o in args.only)]
    domain = GuardSet.from_beir(shared_path() / "data" / "scifact", name="scifact")
    ids = list(domain.corpus)
    encoder = get_token_encoder(COLBERT_MINILM)
    start = time.perf_counter()
    matrices = encoder.encode_documents([domain.corpus[d] for d in ids], progress=True)
    encode_s = time.perf_counter() - start
    work = Path(tempfile.mkdtemp(prefix="vf-plaid-quality-"))
    out: dict[str, Any] = {"dataset": "scifact test (300 queries)", "encoder": COLBERT_MINILM, "rows": {}}
    rows = []
    try:
        db = vf.connect(work)
        previous = Path(__file__).parent / "results" / "plaid_quality.json"
        if args.only is not None and previous.exists():
            kept = json.loads(previous.read_text())["rows"]
            out["rows"] = {label: kept[label] for label, *_ in CONFIGS if label in kept}
        for label, kind, params, search in configs:
            index_params = {**params, "exact_below_tokens": 0} if kind != "flat" else {}
            spec = vf.Multi(dim=encoder.dim, index=kind, index_params=index_params, encoder=COLBERT_MINILM)
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")
            col = db.create_collection(name, vectors={"colbert": spec})
            col.upsert(ids, {"colbert": matrices})
            start = time.perf_counter()
            col.flush()
            col.optimize()  # PLAID trains its codec in compaction, off the write lock
            build = time.perf_counter() - start
            segment = next(s for s in col.info()["segments"] if s["sealed"])
            config = SearchConfig(k=100, using="colbert", params=search)
            run = evaluate_collection(col, domain.goldset, METRICS, config)
            scores = {m: run.segments["all"][m].mean for m in METRICS}
            found = segment["multi"]["colbert"]
            out["rows"][label] = {
                "scores": scores,
                "seal_seconds": build,
                "segment": found,
                "params": search,
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            rows.append(
                [
                    label,
                    scores["ndcg@10"],
                    scores["recall@100"],
                    scores["mrr@10"],
                    segment["multi"]["colbert"]["tokens"],
                    build,
                ]
            )
            db.delete_collection(name)
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["encode_seconds"] = encode_s
    out["single_vector_baselines"] = {
        "minilm": 0.6452,
        "minilm fine-tuned on SciFact train (finetune.json)": 0.7057,
    }
    print_table(
        "SciFact test: the trained ColBERT through flat, PLAID and MUVERA (single vector: MiniLM 0.6452, "
        "fine-tuned 0.7057)",
        ["index", "nDCG@10", "R@100", "MRR@10", "tokens", "seal s"],
        rows,
    )
    write_result("plaid_quality", out)


if __name__ == "__main__":
    main()
