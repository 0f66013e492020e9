"""Late-interaction building blocks: MUVERA encoding speed and recall, token pooling's MaxSim
agreement and speed, PDF page rendering speed.

- FDE: encode `--docs` documents of 100 tokens of 128 dims (random, generated in batches that are
  not timed) with the defaults (k_sim 4, 20 repetitions, d_proj 16: 5,120 numbers), docs/s; and on
  a clustered set (documents of 32 tokens around 8 of many topics), the share of each query's exact
  MaxSim top 10 that the FDE's top 100 holds.
- Pooling: on the same kind of set (64 tokens, 8 topics), MaxSim's mean relative change and the
  top-10 overlap at factors 2 and 4; pooling speed on 100-token documents.
- Pages: pypdfium2 rendering of a 20-page PDF (matplotlib-made) at 96 dpi, pages/s.

    python bench/multivector.py [--docs 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import console, print_table, write_result

from vectorforge.multivector.muvera import FDE
from vectorforge.multivector.pages import render_pages
from vectorforge.multivector.pooling import pool_documents


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def clustered(rng: np.random.Generator, n_docs: int, dim: int, tokens: int, topics: int, noise: float):
    centres = unit(rng.standard_normal((n_docs // 2, dim)))
    docs, chosen = [], []
    for _ in range(n_docs):
        mine = rng.choice(len(centres), size=topics, replace=False)
        picks = rng.choice(mine, size=tokens)
        docs.append(unit(centres[picks] + noise * rng.standard_normal((tokens, dim))).astype(np.float32))
        chosen.append(mine)
    return centres, docs, chosen


def queries_for(rng: np.random.Generator, centres, chosen, n: int, tokens: int, noise: float, dim: int):
    out = []
    for i in rng.choice(len(chosen), size=n, replace=False):
        picks = rng.choice(chosen[i], size=tokens)
        out.append(unit(centres[picks] + noise * rng.standard_normal((tokens, dim))).astype(np.float32))
    return out


def maxsim_all(q: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([(q @ d.T).max(axis=1).sum() for d in docs])


def fde_speed(n_docs: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    fde = FDE(128)
    spent, done, batch = 0.0, 0, 5000
    while done < n_docs:
        m = min(batch, n_docs - done)
        docs = list(rng.standard_normal((m, 100, 128), dtype=np.float32))
        start = time.perf_counter()
        fde.encode_documents(docs)
        spent += time.perf_counter() - start
        done += m
    queries = list(rng.standard_normal((1000, 32, 128), dtype=np.float32))
    start = time.perf_counter()
    fde.encode_queries(queries)
    q_spent = time.perf_counter() - start
    return {"docs": n_docs, "seconds": spent, "docs_per_s": n_docs / spent, "queries_per_s": 1000 / q_spent}


def fde_recall(n_docs: int = 10_000) -> dict[str, float]:
    rng = np.random.default_rng(11)
    dim = 64
    centres, docs, chosen = clustered(rng, n_docs, dim, tokens=32, topics=8, noise=0.05)
    fde = FDE(dim, seed=1)
    encoded = fde.encode_documents(docs)
    recalls, corr = [], []
    for q in queries_for(rng, centres, chosen, 100, 8, 0.05, dim):
        exact = maxsim_all(q, docs)
        approx = encoded @ fde.encode_query(q)
        top = set(np.argsort(-exact, kind="stable")[:10].tolist())
        recalls.append(len(top & set(np.argsort(-approx, kind="stable")[:100].tolist())) / 10)
        corr.append(np.corrcoef(exact, approx)[0, 1])
    return {
        "docs": n_docs,
        "recall_at_100_of_top10": float(np.mean(recalls)),
        "correlation": float(np.mean(corr)),
    }


def pooling(n_docs: int = 1000) -> dict[str, float]:
    rng = np.random.default_rng(7)
    dim = 32
    centres, docs, chosen = clustered(rng, n_docs, dim, tokens=64, topics=8, noise=0.05)
    queries = queries_for(rng, centres, chosen, 50, 4, 0.05, dim)
    out: dict[str, float] = {"docs": n_docs}
    for factor in (2, 4):
        pooled = pool_documents(docs, factor)
        errors, overlaps = [], []
        for q in queries:
            exact, approx = maxsim_all(q, docs), maxsim_all(q, pooled)
            errors.append(float(np.mean(np.abs(approx - exact) / np.abs(exact))))
            top = set(np.argsort(-exact, kind="stable")[:10].tolist())
            overlaps.append(len(top & set(np.argsort(-approx, kind="stable")[:10].tolist())) / 10)
        out[f"factor{factor}_relative_error"] = float(np.mean(errors))
        out[f"factor{factor}_top10_overlap"] = float(np.mean(overlaps))
    hundred = list(np.random.default_rng(1).standard_normal((2000, 100, 128), dtype=np.float32))
    start = time.perf_counter()
    pool_documents(hundred, 2)
    out["pool_docs_per_s_100_tokens"] = 2000 / (time.perf_counter() - start)
    return out


def rendering(pages: int = 20) -> dict[str, Any]:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.pdf"
        with PdfPages(path) as pdf:
            for i in range(pages):
                fig = Figure(figsize=(8.27, 11.69))  # A4
                fig.text(0.1, 0.9, f"Page {i + 1}", fontsize=24)
                fig.add_axes((0.1, 0.3, 0.8, 0.5)).plot(np.sin(np.linspace(0, 10 + i, 200)))
                pdf.savefig(fig)
        start = time.perf_counter()
        images = render_pages(path, dpi=96)
        spent = time.perf_counter() - start
    return {"pages": pages, "size": list(images[0].size), "pages_per_s": pages / spent}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    args = ap.parse_args()
    console.print(f"FDE encoding of {args.docs:,} documents of 100 x 128 ...")
    speed = fde_speed(args.docs)
    recall = fde_recall()
    pool = pooling()
    render = rendering()
    print_table(
        "late interaction",
        ["measure", "value"],
        [
            ["FDE docs/s (100 tokens x 128, 5,120 dims)", f"{speed['docs_per_s']:,.0f}"],
            ["FDE queries/s (32 tokens)", f"{speed['queries_per_s']:,.0f}"],
            ["FDE recall@100 of MaxSim top 10 (10k docs)", f"{recall['recall_at_100_of_top10']:.3f}"],
            ["FDE / MaxSim correlation", f"{recall['correlation']:.3f}"],
            [
                "pool x2: MaxSim rel. change, top-10 overlap",
                f"{pool['factor2_relative_error']:.4f}, {pool['factor2_top10_overlap']:.3f}",
            ],
            [
                "pool x4: MaxSim rel. change, top-10 overlap",
                f"{pool['factor4_relative_error']:.4f}, {pool['factor4_top10_overlap']:.3f}",
            ],
            ["pooling docs/s (100 tokens, x2)", f"{pool['pool_docs_per_s_100_tokens']:,.0f}"],
            ["PDF pages/s rendered (A4, 96 dpi)", f"{render['pages_per_s']:.1f}"],
        ],
    )
    write_result(
        "multivector", {"fde_speed": speed, "fde_recall": recall, "pooling": pool, "rendering": render}
    )


if __name__ == "__main__":
    main()
