from __future__ import annotations

from pathlib import Path

import pytest

from vectorforge.datasets import load_beir
from vectorforge.multivector.colbert import ColBERTEncoder


@pytest.fixture(scope="session")
def scifact_docs(shared: Path) -> dict[str, str]:
    """20 SciFact abstracts by id."""
    ds = load_beir(shared / "data" / "scifact", split=None)
    return {d: ds.doc_text(d) for d in list(ds.corpus)[:20]}


@pytest.fixture(scope="session")
def pca_encoder(scifact_docs: dict[str, str]) -> ColBERTEncoder:
    """A ColBERT over the bundled MiniLM, projection by PCA of the 20 abstracts' tokens (no cache)."""
    return ColBERTEncoder.from_base(pca_texts=list(scifact_docs.values()), name="colbert-test", cache=False)
