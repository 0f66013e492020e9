"""Drift detection calibration: false alarms on same-distribution windows, power on a real shift.

Every figure is the share of window pairs (reference, current) of 500 embeddings each (`--window`)
on which a test alarms, at the defaults of `DriftConfig` (seeded per pair). Embeddings are MiniLM's
(the package's default encoder, through its embedding cache, bfloat16 as it ships).

Pools:
- scifact queries: SciFact's 1,109 real queries (claims);
- general queries: DBpedia's 50 real queries plus pseudo-queries from DBpedia's corpus (entities drawn
  at random, disjoint): 700 entity titles and the first 8 words of the first sentence of 700 other
  abstracts. The 50 real queries alone cannot fill a window of 500 and are never resampled;
- scifact documents: 1,500 SciFact abstracts (title + text, drawn at random) for corpus drift and as
  the corpus of the one-dimensional signals; general documents: 1,000 DBpedia abstracts (others
  than the pseudo-queries' entities).

Pairs: same distribution = two disjoint windows from one pool (a fresh random split per pair); a mix
of m = the reference from the SciFact pool, the current window (1 - m) * 500 other SciFact rows and
m * 500 general rows. The one-dimensional signals (PSI) on the query pairs: query length in words,
the top-1 cosine score against the 1,500 SciFact documents, and the zero-result indicator of a
search with min_score 0.3 (top-1 below it). The distance to the nearest corpus vector is 1 - the
top-1 cosine here, so its PSI equals the top-1 score's (quantile bins are rank based).

    python bench/drift.py   # 200 SciFact null pairs, 100 per other row, 50 per document mix
    python bench/drift.py --pairs 40 --null-pairs 60
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from common import print_table, shared_path, write_result
from statsmodels.stats.proportion import proportion_confint
from tqdm.auto import tqdm

from vectorforge.embed.registry import DEFAULT_EMBEDDER, get_embedder
from vectorforge.evaluation.online import drift
from vectorforge.evaluation.online.drift import DriftConfig, detect_drift, signal_drift

GENERAL_TITLES = 700
GENERAL_PREFIXES = 700
PREFIX_WORDS = 8
SCIFACT_DOCS = 1500
GENERAL_DOCS = 1000
MIN_SCORE = 0.3
MIXES = (0.1, 0.2, 0.3, 0.5, 1.0)
TESTS = ("classifier_auc", "mmd", "ks", "centroid")
SIGNALS = ("query_length", "top1_score", "zero_result")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def first_words(text: str, n: int) -> str:
    """The first `n` words of the first sentence."""
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return " ".join(sentence.split()[:n])


def pools(seed: int = 0) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The texts of each pool and a description of what they are."""
    data = shared_path() / "data"
    scifact = [q["text"] for q in _jsonl(data / "scifact" / "queries.jsonl")]
    real = [q["text"] for q in _jsonl(data / "dbpedia" / "queries.jsonl")]
    corpus = _jsonl(data / "dbpedia" / "corpus.jsonl")
    order = np.random.default_rng(seed).permutation(len(corpus))
    titled = [corpus[i]["title"] for i in order[:GENERAL_TITLES]]
    rest = order[GENERAL_TITLES : GENERAL_TITLES + GENERAL_PREFIXES]
    prefixes = [first_words(corpus[i]["text"], PREFIX_WORDS) for i in rest]
    general = list(dict.fromkeys(real + titled + prefixes))  # no duplicate text
    docs_at = order[GENERAL_TITLES + GENERAL_PREFIXES :][:GENERAL_DOCS]
    general_docs = [(corpus[i]["title"] + " " + corpus[i]["text"]).strip() for i in docs_at]
    sci_corpus = _jsonl(data / "scifact" / "corpus.jsonl")
    sci_at = np.random.default_rng(seed).permutation(len(sci_corpus))[:SCIFACT_DOCS]
    scifact_docs = [(sci_corpus[i]["title"] + " " + sci_corpus[i]["text"]).strip() for i in sci_at]
    texts = {
        "scifact_queries": scifact,
        "general_queries": general,
        "scifact_docs": scifact_docs,
        "general_docs": general_docs,
    }
    described = {
        "scifact_queries": f"SciFact queries.jsonl: all {len(scifact)} real queries (claims)",
        "general_queries": f"DBpedia: the {len(real)} real queries + the titles of {GENERAL_TITLES} entities "
        f"+ the first {PREFIX_WORDS} words of the first sentence of {GENERAL_PREFIXES} other entities' "
        f"abstracts (entities drawn at random, seed {seed}, disjoint), duplicate texts dropped: "
        f"{len(general)} texts",
        "scifact_docs": f"{len(scifact_docs)} SciFact abstracts (title + text) drawn at random, seed {seed}",
        "general_docs": f"{len(general_docs)} DBpedia abstracts (title + text) of entities other than the "
        "pseudo-queries'",
    }
    return texts, described


def rate(alarms: Sequence[bool]) -> dict[str, Any]:
    """Share of alarms with its 95% Clopper-Pearson interval."""
    k, n = int(sum(alarms)), len(alarms)
    low, high = proportion_confint(k, n, alpha=0.05, method="beta")
    return {"rate": k / n, "alarms": k, "pairs": n, "ci95": [round(float(low), 4), round(float(high), 4)]}


def split(rng: np.random.Generator, same: int, other: int, window: int, mix: float) -> tuple[Any, Any, Any]:
    """Row indices: the reference and the current window's rows from the same pool, and the current
    window's rows from the other pool (disjoint everywhere)."""
    k = round(mix * window)
    perm = rng.permutation(same)
    ref, cur_same = perm[:window], perm[window : 2 * window - k]
    return ref, cur_same, rng.permutation(other)[:k]


def run_pairs(
    label: str,
    same: np.ndarray,
    other: np.ndarray,
    mix: float,
    pairs: int,
    window: int,
    seed: int,
    signals: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Alarms of every test over `pairs` window pairs, and the time of each detection."""
    rng = np.random.default_rng(seed)
    alarms: dict[str, list[bool]] = {name: [] for name in (*TESTS, "overall", *SIGNALS, "signals")}
    stats: dict[str, list[float]] = {name: [] for name in (*TESTS, *SIGNALS)}
    seconds: list[float] = []
    for i in tqdm(range(pairs), desc=label, unit="pair", leave=False):
        ref, cur_same, cur_other = split(rng, len(same), len(other), window, mix)
        current = np.vstack([same[cur_same], other[cur_other]])
        start = time.perf_counter()
        report = detect_drift(same[ref], current, DriftConfig(window=window, seed=seed * 100_000 + i))
        seconds.append(time.perf_counter() - start)
        for name in TESTS:
            alarms[name].append(report.test(name).alarm)
            stats[name].append(report.test(name).statistic)
        alarms["overall"].append(report.alarm)
        if signals is not None:
            mine, theirs = signals
            sig = signal_drift(
                {s: mine[s][ref] for s in SIGNALS},
                {s: np.r_[mine[s][cur_same], theirs[s][cur_other]] for s in SIGNALS},
            )
            for s in SIGNALS:
                alarms[s].append(sig.test(f"psi:{s}").alarm)
                stats[s].append(sig.test(f"psi:{s}").statistic)
            alarms["signals"].append(sig.alarm)
    return {
        "mix": mix,
        "pairs": pairs,
        "alarm_rate": {name: rate(v) for name, v in alarms.items() if v},
        "statistic_median": {name: round(statistics.median(v), 5) for name, v in stats.items() if v},
        "seconds_per_detection_median": round(statistics.median(seconds), 4),
    }


def signals_of(queries: np.ndarray, texts: Sequence[str], corpus: np.ndarray) -> dict[str, np.ndarray]:
    top1 = (queries @ corpus.T).max(axis=1)
    return {
        "query_length": np.array([len(t.split()) for t in texts], dtype=float),
        "top1_score": top1,
        "zero_result": (top1 < MIN_SCORE).astype(float),
    }


def test_calls(ref: np.ndarray, cur: np.ndarray, cfg: DriftConfig) -> dict[str, Callable[[], Any]]:
    """Each test on its own (the module's private parts, called as detect_drift calls them)."""
    from sklearn.decomposition import PCA

    n = len(ref)
    z = PCA(n_components=cfg.pca_components, svd_solver="full").fit_transform(np.vstack([ref, cur]))
    return {
        "classifier_auc": lambda: drift._classifier(ref, cur, cfg),
        "mmd": lambda: drift._mmd(z[:n], z[n:], cfg),
        "ks": lambda: drift._ks(z[:n], z[n:], cfg),
        "centroid": lambda: drift._centroid(ref, cur, cfg),
        "detect_drift": lambda: detect_drift(ref, cur, cfg),
    }


def time_tests(same: np.ndarray, other: np.ndarray, window: int, rounds: int) -> dict[str, float]:
    """Median seconds of each test on its own, on 50%-mix pairs."""
    rng = np.random.default_rng(7)
    cfg = DriftConfig(window=window)
    times: dict[str, list[float]] = {name: [] for name in (*TESTS, "detect_drift")}
    for _ in range(rounds):
        ref_at, cur_same, cur_other = split(rng, len(same), len(other), window, 0.5)
        ref = same[ref_at].astype(np.float64)
        cur = np.vstack([same[cur_same], other[cur_other]]).astype(np.float64)
        for name, call in test_calls(ref, cur, cfg).items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--null-pairs", type=int, default=200, help="pairs per same-distribution row")
    parser.add_argument("--pairs", type=int, default=100, help="pairs per mix level")
    parser.add_argument("--doc-pairs", type=int, default=50, help="pairs per document mix level")
    parser.add_argument("--timing-rounds", type=int, default=10)
    args = parser.parse_args()

    texts, described = pools()
    embedder = get_embedder(DEFAULT_EMBEDDER)
    emb = {}
    for name, pool in texts.items():
        start = time.perf_counter()
        emb[name] = embedder.encode(pool, progress=True)
        took = time.perf_counter() - start
        print(f"{name}: {len(pool)} texts embedded or read from the cache in {took:.1f} s")
    sig_sci = signals_of(emb["scifact_queries"], texts["scifact_queries"], emb["scifact_docs"])
    sig_gen = signals_of(emb["general_queries"], texts["general_queries"], emb["scifact_docs"])
    sigs = (sig_sci, sig_gen)

    w = args.window
    rows: dict[str, dict[str, Any]] = {}
    rows["q: sci / sci"] = run_pairs(
        "scifact null", emb["scifact_queries"], emb["general_queries"], 0.0, args.null_pairs, w, 1, sigs
    )
    rows["q: gen / gen"] = run_pairs(
        "general null", emb["general_queries"], emb["scifact_queries"], 0.0, args.pairs, w, 2
    )
    for j, mix in enumerate(MIXES):
        rows[f"q: sci / {mix:.0%} gen"] = run_pairs(
            f"mix {mix:.0%}", emb["scifact_queries"], emb["general_queries"], mix, args.pairs, w, 10 + j, sigs
        )
    rows["d: sci / sci"] = run_pairs(
        "docs null", emb["scifact_docs"], emb["general_docs"], 0.0, args.pairs, w, 3
    )
    for j, mix in enumerate((0.1, 0.3, 1.0)):
        rows[f"d: sci / {mix:.0%} dbp"] = run_pairs(
            f"docs mix {mix:.0%}", emb["scifact_docs"], emb["general_docs"], mix, args.doc_pairs, w, 20 + j
        )
    timing = time_tests(emb["scifact_queries"], emb["general_queries"], w, args.timing_rounds)

    def pct(row: dict[str, Any], name: str) -> str:
        got = row["alarm_rate"].get(name)
        return "" if got is None else f"{got['rate']:.1%}"

    print_table(
        f"alarm rate over window pairs ({w} rows a window); same-distribution rows are false alarms",
        ["pairs", "n", "AUC", "MMD", "KS", "centroid", "overall", "PSI"],
        [
            [label, row["pairs"], *(pct(row, t) for t in (*TESTS, "overall", "signals"))]
            for label, row in rows.items()
        ],
    )
    print_table(
        "PSI alarm rate (>= 0.25) and median PSI, query pairs",
        ["pairs", "len", "top1", "zero", "len med", "top1 med", "zero med"],
        [
            [label, *(pct(row, s) for s in SIGNALS), *(row["statistic_median"].get(s, "") for s in SIGNALS)]
            for label, row in rows.items()
            if "query_length" in row["statistic_median"]
        ],
    )
    base = timing["classifier_auc"]
    print_table(
        f"seconds per call (median of {args.timing_rounds}, {w} + {w} rows of 384 dims)",
        ["test", "seconds", "ratio to the classifier"],
        [[name, t, t / base] for name, t in timing.items()],
    )
    cfg = DriftConfig(window=w)
    write_result(
        "drift",
        {
            "window": w,
            "embedder": embedder.info.model + " (" + embedder.info.version + ")",
            "config": cfg.to_json(),
            "overall_rule": drift.OVERALL_RULE,
            "pools": described,
            "pool_sizes": {name: len(t) for name, t in texts.items()},
            "pairs": "same distribution: two disjoint windows from one pool, a fresh random split per pair; "
            "mix m: reference from the scifact pool, current = (1 - m) * window other scifact rows + "
            "m * window rows of the general pool; DriftConfig seeded per pair",
            "signals": f"PSI of query length (words), top-1 cosine against the {SCIFACT_DOCS} SciFact "
            f"documents, zero-result indicator (top-1 < {MIN_SCORE}); nearest-vector distance = 1 - top-1",
            "versions": {p: metadata.version(p) for p in ("scikit-learn", "scipy", "statsmodels")},
            "rows": rows,
            "seconds_per_call": {name: round(t, 4) for name, t in timing.items()},
            "seconds_ratio_to_classifier": {name: round(t / base, 3) for name, t in timing.items()},
        },
    )


if __name__ == "__main__":
    main()
