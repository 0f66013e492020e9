"""Interleaving against A/B testing on the same simulated traffic: how many queries each needs to
detect a real quality gap, and how often each cries wolf when the two arms are identical.

The arms, both through one vectorforge collection of SciFact (5,183 abstracts) with a MiniLM dense
vector and a BM25 sparse vector: arm a is MiniLM dense retrieval, arm b BM25; each arm's top 10 for
the 300 test queries (the test split only; train is not used). Users come from the position-biased
cascade click model of `vectorforge.evaluation.online.simulator` over the test judgments; each user
issues one query drawn with replacement from the 300.

- A/B: half the users see arm a, half arm b. Metrics: success@10 (a click dwelt >= 30 s) by the
  two-proportion z-test, and clicks per query by Welch's t.
- Interleaving: every user sees the team-draft merge of both arms' top 10 (a fresh coin per user);
  clicks are credited to the arm that placed the result; the sign test of the preference.

Queries needed at 95% power, alpha 0.05 (two-sided): by simulation, `--reps` (400) replications at each
N on a doubling grid from `--start`, then bisection between the last two doublings down to 5%.
The false positive rate: arm b replaced by arm a (MiniLM against MiniLM), `--null-reps`
(1,000) replications at each method's N95, with the Clopper-Pearson interval.

    python bench/interleaving.py
    python bench/interleaving.py --reps 100 --null-reps 500   # quicker
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from common import print_table, shared_path, write_result
from scipy import stats
from tqdm import tqdm

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.evaluation import evaluate
from vectorforge.evaluation.online.experiment_stats import (
    sample_size_proportions,
    two_proportion_ztest,
    welch_test,
)
from vectorforge.evaluation.online.interleaving import credit, preference_test, team_draft
from vectorforge.evaluation.online.simulator import ClickModel, simulate_clicks, simulate_grades

K = 10
ALPHA, POWER = 0.05, 0.95
BIG = 4_000_000  # users of the simulations that measure the arms' rates themselves
MODEL = ClickModel()  # the defaults: SciFact judges relevant documents grade 1 (click 0.5)


def top_k() -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, dict[str, int]]]:
    """Each arm's top 10 per test query, and the test judgments."""
    ds = load_beir(shared_path() / "data" / "scifact", split="test")
    ids = list(ds.corpus)
    db = vf.connect()
    col = db.create_collection("c", index="flat", embedder="minilm", sparse={"bm25": vf.Sparse()})
    col.add([ds.doc_text(i) for i in ids], ids=ids, progress=True)  # embeddings cached after one run
    dense, bm25 = {}, {}
    for qid, text in tqdm(ds.queries.items(), desc="queries", total=len(ds.queries)):
        dense[qid] = [str(h.id) for h in col.query(text, k=K, with_payload=False)]
        bm25[qid] = [str(h.id) for h in col.query(text, k=K, using="bm25", with_payload=False)]
    db.close()
    return dense, bm25, {q: dict(j) for q, j in ds.qrels.items()}


class _Coins:
    """Stands in for the generator `team_draft` tosses its coins with: replays the given tosses,
    then answers heads and counts how many more were asked for."""

    def __init__(self, tosses: tuple[float, ...]):
        self.tosses, self.used = tosses, 0

    def random(self) -> float:
        self.used += 1
        return self.tosses[self.used - 1] if self.used <= len(self.tosses) else 0.0


def merges(a: list[str], b: list[str]) -> list[tuple[float, Any]]:
    """Every team-draft merge of a and b with its probability: the coin sequences enumerated (one
    toss per round of two picks, so at most 2^5 merges of two top-10 lists)."""
    out, todo = [], [()]
    while todo:
        tosses = todo.pop()
        coins = _Coins(tosses)
        m = team_draft(a, b, K, coins)  # type: ignore[arg-type]
        if coins.used > len(tosses):  # it tossed more: branch on the next toss
            todo += [(*tosses, 0.0), (*tosses, 0.9)]
        else:
            out.append((0.5 ** len(tosses), m))
    return out


class Traffic:
    """Simulated users for two arms over the same queries (arrays indexed by query position)."""

    def __init__(self, a: dict[str, list[str]], b: dict[str, list[str]], qrels: dict[str, dict[str, int]]):
        self.qids = sorted(qrels)
        self.a, self.b, self.qrels = a, b, qrels
        self.grades_a = self._grades(a)
        self.grades_b = self._grades(b)
        # the exact distribution of each query's merge, so that users draw merges in one step
        per_query = [merges(a[q], b[q]) for q in self.qids]
        width = max(len(m) for m in per_query)
        self.cum = np.ones((len(self.qids), width))
        self.merged_grades = np.zeros((len(self.qids), width, K), dtype=np.int64)
        self.merged_b = np.zeros((len(self.qids), width, K), dtype=bool)
        for i, (q, ms) in enumerate(zip(self.qids, per_query, strict=True)):
            self.cum[i, : len(ms)] = np.cumsum([p for p, _ in ms])
            for j, (_, m) in enumerate(ms):
                assert len(m.ids) == K
                self.merged_grades[i, j] = [self.qrels[q].get(d, 0) for d in m.ids]
                self.merged_b[i, j] = [t == "b" for t in m.teams]
        assert np.allclose(self.cum[:, -1], 1.0)

    def _grades(self, run: dict[str, list[str]]) -> np.ndarray:
        return np.array([[self.qrels[q].get(d, 0) for d in run[q]] for q in self.qids])

    def ab(self, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
        """One A/B experiment of n users: (success z-test, clicks-per-query Welch)."""
        half = n // 2
        out = []
        for grades in (self.grades_a, self.grades_b):
            users = rng.integers(0, len(self.qids), half)
            clicked, dwell = simulate_grades(grades[users], MODEL, rng)
            out.append(((dwell >= MODEL.success_dwell_s).any(axis=1), clicked.sum(axis=1)))
        (sa, ca), (sb, cb) = out
        z = two_proportion_ztest(int(sa.sum()), half, int(sb.sum()), half, metric="success@10", alpha=ALPHA)
        w = welch_test(ca, cb, metric="clicks/query", alpha=ALPHA)
        return z, w

    def interleave(self, n: int, rng: np.random.Generator) -> Any:
        """One interleaving experiment of n users, each on a merge drawn from its query's: the
        preference test."""
        users = rng.integers(0, len(self.qids), n)
        which = (self.cum[users] < rng.random(n)[:, None]).sum(axis=1)
        clicked, _ = simulate_grades(self.merged_grades[users, which], MODEL, rng)
        on_b = self.merged_b[users, which]
        wins_b, wins_a = (clicked & on_b).sum(axis=1), (clicked & ~on_b).sum(axis=1)
        outcomes = np.where(wins_b > wins_a, "b", np.where(wins_a > wins_b, "a", "tie")).tolist()
        return preference_test(outcomes, alpha=ALPHA, interval=False)

    def check(self, rng: np.random.Generator, users: int = 500) -> None:
        """The shortcuts are the public functions: the enumerated merges are `team_draft`'s with a
        real generator, and the vectorized credit is `credit`'s."""
        for _ in range(users):
            i = int(rng.integers(0, len(self.qids)))
            q = self.qids[i]
            m = team_draft(self.a[q], self.b[q], K, rng)
            assert any(m == x for _, x in merges(self.a[q], self.b[q]))
            clicks = simulate_clicks(m.ids, self.qrels[q], MODEL, rng)
            assert all(c.rank <= K for c in clicks)
            on_b = np.array([t == "b" for t in m.teams])
            ranks = np.array([c.rank - 1 for c in clicks], dtype=int)
            wins_b, wins_a = int(on_b[ranks].sum()), int((~on_b[ranks]).sum())
            expected = "b" if wins_b > wins_a else "a" if wins_a > wins_b else "tie"
            assert credit(m, [c.rank for c in clicks]) == expected


def rates(t: Traffic, rng: np.random.Generator, chunk: int = 400_000) -> tuple[Any, Any]:
    """Each arm's success@10 and the interleaving preference over BIG users, in chunks (memory)."""
    succ, wins, n = np.zeros(2, dtype=np.int64), {"a": 0, "b": 0, "tie": 0}, 0
    for _ in tqdm(range(BIG // chunk), desc="rates", leave=False):
        z = t.ab(chunk, rng)[0]
        succ += [round(z.mean_a * z.n_a), round(z.mean_b * z.n_b)]
        p = t.interleave(chunk, rng)
        wins["a"], wins["b"], wins["tie"] = wins["a"] + p.wins_a, wins["b"] + p.wins_b, wins["tie"] + p.ties
        n += chunk // 2
    ab = two_proportion_ztest(int(succ[0]), n, int(succ[1]), n, metric="success@10")
    return ab, preference_test([o for o, c in wins.items() for _ in range(c)], interval=False)


def power_at(run: Callable[[np.random.Generator], bool], reps: int, seed: list[int], desc: str) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([run(rng) for _ in tqdm(range(reps), desc=desc, leave=False)]))


def n_for_power(
    run: Callable[[int, np.random.Generator], bool], start: int, reps: int, key: int, name: str
) -> tuple[int, dict[int, float]]:
    """The smallest N (multiple of 2) found with power >= 95%: doubling, then bisection to 5%."""
    curve: dict[int, float] = {}

    def power(n: int) -> float:
        if n not in curve:
            curve[n] = power_at(lambda rng: run(n, rng), reps, [key, n], f"{name} N={n}")
            tqdm.write(f"{name:>26} N={n:>7,}: power {curve[n]:.3f}")
        return curve[n]

    n = start
    while power(n) < POWER:
        n *= 2
    lo, hi = n // 2, n
    if n == start:
        return n, curve
    while hi - lo > max(0.05 * hi, 2):
        mid = (lo + hi) // 4 * 2
        lo, hi = (lo, mid) if power(mid) >= POWER else (mid, hi)
    return hi, curve


def false_positives(
    run: Callable[[np.random.Generator], bool], reps: int, key: list[int], name: str
) -> dict[str, Any]:
    rng = np.random.default_rng(key)
    hits = sum(run(rng) for _ in tqdm(range(reps), desc=f"null {name}", leave=False))
    ci = stats.binomtest(hits, reps).proportion_ci(0.95, method="exact")
    return {"rate": hits / reps, "ci95": [ci.low, ci.high], "reps": reps, "rejections": hits}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=400, help="replications per N of the power search")
    parser.add_argument("--null-reps", type=int, default=1000, help="replications of the identical-arms runs")
    parser.add_argument("--start", type=int, default=64, help="first N of the doubling grid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()

    dense, bm25, qrels = top_k()
    run_a = {q: dict(zip(dense[q], range(K, 0, -1), strict=False)) for q in qrels}
    run_b = {q: dict(zip(bm25[q], range(K, 0, -1), strict=False)) for q in qrels}
    ndcg = {
        "a": evaluate(qrels, run_a, ["ndcg@10"])["ndcg@10"],
        "b": evaluate(qrels, run_b, ["ndcg@10"])["ndcg@10"],
    }
    gap, null = Traffic(dense, bm25, qrels), Traffic(dense, dense, qrels)

    # the rates themselves, from a large simulation, for the analytic sample size beside the simulated
    gap.check(np.random.default_rng([args.seed, 98]))
    big, big_pref = rates(gap, np.random.default_rng([args.seed, 99]))
    analytic = 2 * sample_size_proportions(big.mean_a, big.diff, alpha=ALPHA, power=POWER)

    methods: dict[str, tuple[Callable[[Traffic, int, np.random.Generator], bool], int]] = {
        "A/B success@10 (z-test)": (lambda t, n, rng: t.ab(n, rng)[0].significant, 1),
        "A/B clicks/query (Welch)": (lambda t, n, rng: t.ab(n, rng)[1].significant, 2),
        "interleaving (team-draft)": (lambda t, n, rng: t.interleave(n, rng).significant, 3),
    }
    results: dict[str, Any] = {}
    for name, (sig, key) in methods.items():
        n95, curve = n_for_power(lambda n, rng, sig=sig: sig(gap, n, rng), args.start, args.reps, key, name)
        fp = false_positives(
            lambda rng, sig=sig, n=n95: sig(null, n, rng), args.null_reps, [args.seed, key, 7], name
        )
        results[name] = {
            "queries_for_95_power": n95,
            "power_curve": {str(k): v for k, v in sorted(curve.items())},
            "false_positive_rate_at_n95": fp,
        }

    inter = results["interleaving (team-draft)"]["queries_for_95_power"]
    rows = []
    for name, r in results.items():
        fp = r["false_positive_rate_at_n95"]
        ratio = r["queries_for_95_power"] / inter
        rows.append([name, f"{r['queries_for_95_power']:,}", f"{ratio:.1f}x",
                     f"{fp['rate']:.3f} [{fp['ci95'][0]:.3f}, {fp['ci95'][1]:.3f}]"])  # fmt: skip
    print_table(
        f"SciFact test, {len(qrels)} queries: a = MiniLM (nDCG@10 {ndcg['a']:.4f}), b = BM25 "
        f"(nDCG@10 {ndcg['b']:.4f}); success@10 a {big.mean_a:.4f}, b {big.mean_b:.4f}",
        ["method", "queries for 95% power", "vs interleaving", "false positives (a vs a), 95% CI"],
        rows,
    )
    print(f"analytic A/B size for success@10 (statsmodels, both arms): {analytic:,}")
    ties = big_pref.ties / big_pref.n
    print(f"interleaving: delta {big_pref.delta:.4f}, ties {ties:.3f} of {big_pref.n:,} users")
    write_result(
        "interleaving",
        {
            "data": "SciFact test split (300 judged queries, 5,183 docs); train not used",
            "arms": {"a": "MiniLM dense (flat)", "b": "BM25 sparse (vf.Sparse)"},
            "offline_ndcg@10": {"a": round(ndcg["a"], 4), "b": round(ndcg["b"], 4)},
            "simulated_success@10": {"a": big.mean_a, "b": big.mean_b, "users_per_arm": BIG // 2},
            "analytic_ab_queries_success@10": analytic,
            "simulated_interleaving": {
                "users": BIG,
                "delta": big_pref.delta,
                "ties": big_pref.ties / big_pref.n,
                "wins_a": big_pref.wins_a / big_pref.n,
                "wins_b": big_pref.wins_b / big_pref.n,
            },
            "click_model": MODEL.to_json(),
            "parameters": {
                "k": K,
                "alpha": ALPHA,
                "power": POWER,
                "reps": args.reps,
                "null_reps": args.null_reps,
                "start": args.start,
                "seed": args.seed,
                "grid": "doubling then bisection to 5%",
            },
            "methods": results,
            "interleaving_advantage": {n: r["queries_for_95_power"] / inter for n, r in results.items()},
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
