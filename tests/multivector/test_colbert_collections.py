"""The text path of multi vectors with a token encoder: add(texts) fills them, query(text, using=...)
searches them by MaxSim, creation checks the encoder; and train_colbert on a few examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.embed.tokens import register_token_encoder
from vectorforge.errors import DimensionMismatch, InvalidParameter
from vectorforge.finetune import TrainConfig, TrainingExample, train_colbert
from vectorforge.models import ModelRegistry
from vectorforge.multivector.colbert import ColBERTEncoder, checkpoint_layout


@pytest.fixture(scope="module")
def encoder_name(pca_encoder: ColBERTEncoder) -> str:
    register_token_encoder("colbert-test", lambda: pca_encoder)
    return "colbert-test"


def _first_sentence(text: str) -> str:
    return text.split(". ")[0][:200]


def test_a_collection_of_colbert_vectors_alone_takes_texts(
    tmp_path: Path, encoder_name: str, scifact_docs: dict[str, str]
) -> None:
    db = vf.connect(tmp_path / "data")
    col = db.create_collection("sci", vectors={"colbert": vf.Multi(dim=128, encoder=encoder_name)})
    ids = list(scifact_docs)
    col.add([scifact_docs[d] for d in ids], ids=ids)
    rec = col.get([ids[0]], with_vectors=True)[0]
    assert rec.payload is not None and rec.payload["text"] == scifact_docs[ids[0]]
    found = 0
    for d in ids[:5]:  # a document's first sentence finds it
        hits = col.query(_first_sentence(scifact_docs[d]), k=3, using="colbert")
        found += hits[0].id == d
        assert len(hits) == 3 and hits[0].score > hits[-1].score
    assert found >= 4
    db.close()
    db2 = vf.connect(tmp_path / "data")
    again = db2.get_collection("sci")  # reopened: the encoder by its name
    assert again.query(_first_sentence(scifact_docs[ids[1]]), k=1, using="colbert")[0].id == ids[1]
    with pytest.raises(InvalidParameter, match="no dense vector"):
        again.query("anything")
    db2.close()


def test_add_fills_the_dense_and_the_colbert_vectors(encoder_name: str, scifact_docs: dict[str, str]) -> None:
    col = vf.connect().create_collection(
        "both",
        embedder="minilm",
        vectors={
            "dense": vf.Dense(dim=384, index="flat"),
            "colbert": vf.Multi(dim=128, encoder=encoder_name),
            "tokens": vf.Multi(dim=4),  # no encoder: left out of add(texts)
        },
    )
    ids = list(scifact_docs)[:8]
    col.add([scifact_docs[d] for d in ids], ids=ids)
    text = _first_sentence(scifact_docs[ids[2]])
    assert col.query(text, k=1)[0].id == ids[2]  # the dense vector
    assert col.query(text, k=1, using="colbert")[0].id == ids[2]  # MaxSim
    tokens = ColBERTEncoder.encode_queries(col_encoder := _encoder(encoder_name), [text])[0]
    assert col.search(tokens, k=1, using="colbert")[0].id == ids[2]
    assert col_encoder.dim == 128
    with pytest.raises(InvalidParameter, match="has no encoder"):
        col.query(text, using="tokens")
    assert col.search(np.ones((2, 4)), k=1, using="tokens") == []  # no point has that vector


def _encoder(name: str) -> ColBERTEncoder:
    from vectorforge.embed.tokens import get_token_encoder

    enc = get_token_encoder(name)
    assert isinstance(enc, ColBERTEncoder)
    return enc


def test_creation_checks_the_encoder_name_and_its_dim(encoder_name: str) -> None:
    db = vf.connect()
    with pytest.raises(InvalidParameter, match=r"unknown token encoder 'nope'.*colbert-minilm"):
        db.create_collection("a", vectors={"c": vf.Multi(dim=128, encoder="nope")})
    with pytest.raises(DimensionMismatch, match="makes 128-dimensional tokens"):
        db.create_collection("b", vectors={"c": vf.Multi(dim=96, encoder=encoder_name)})
    assert not db.list_collections()


def test_train_colbert_saves_registers_and_loads(tmp_path: Path, pca_encoder: ColBERTEncoder) -> None:
    docs = [f"topic {i} concerns the subject numbered {i} in detail" for i in range(8)]
    examples = [
        TrainingExample(f"what about topic {i}", docs[i], negatives=(docs[(i + 1) % 8],)) for i in range(8)
    ]
    fresh = ColBERTEncoder.from_base(pca_texts=docs * 4, cache=False)
    registry = ModelRegistry(tmp_path / "models")
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=5e-5, scale=1.0, max_seq_length=64, save_steps=50)
    result = train_colbert(
        examples, tmp_path / "work", cfg, encoder=fresh, registry=registry, name="tiny-colbert"
    )
    assert result.steps == 2 and not result.interrupted and all(loss > 0 for _, loss in result.losses)
    assert result.card is not None and result.card.ref == "tiny-colbert@1"
    assert (result.card.dim, result.card.pooling, result.card.normalize) == (128, "maxsim", True)
    assert result.encoder_folder == registry.model_path(result.card)
    assert checkpoint_layout(result.encoder_folder) == "pylate"
    assert registry.resolve("tiny-colbert") is None  # a token encoder, not a text embedder
    loaded = ColBERTEncoder.from_pretrained(result.encoder_folder, cache=False)
    assert loaded.weights() != pca_encoder.weights()
    assert loaded.encode_queries(["what about topic 3"])[0].shape == (32, 128)
    with pytest.raises(InvalidParameter, match="pca_texts"):
        train_colbert(examples, tmp_path / "w2", cfg, registry=registry)


def test_ctrl_c_stops_colbert_training_with_a_checkpoint_and_resume_ends_at_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from sentence_transformers.multi_vector_encoder import losses

    docs = [f"topic {i} concerns the subject numbered {i} in detail" for i in range(8)]
    examples = [
        TrainingExample(f"what about topic {i}", docs[i], negatives=(docs[(i + 1) % 8],)) for i in range(8)
    ]
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=5e-5, scale=1.0, max_seq_length=64, save_steps=50)

    def run(work: Path, *, resume: bool = False) -> Any:
        fresh = ColBERTEncoder.from_base(pca_texts=docs * 4, cache=False, seed=12)
        return train_colbert(examples, work, cfg, encoder=fresh, register=False, resume=resume)

    whole = run(tmp_path / "whole")
    calls = []
    plain = losses.MultiVectorMultipleNegativesRankingLoss

    class Interrupting(plain):  # type: ignore[misc, valid-type]
        def forward(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the first step
            return super().forward(*args, **kwargs)

    monkeypatch.setattr(losses, "MultiVectorMultipleNegativesRankingLoss", Interrupting)
    cut = run(tmp_path / "cut")
    assert cut.interrupted and cut.steps == 1 and not (tmp_path / "cut" / "model").exists()
    monkeypatch.setattr(losses, "MultiVectorMultipleNegativesRankingLoss", plain)
    resumed = run(tmp_path / "cut", resume=True)
    assert not resumed.interrupted and resumed.steps == 2
    a = ColBERTEncoder.from_pretrained(whole.model_path, cache=False, precision="float32")
    b = ColBERTEncoder.from_pretrained(resumed.model_path, cache=False, precision="float32")
    np.testing.assert_allclose(a.encode_queries(["topic 3"])[0], b.encode_queries(["topic 3"])[0], atol=1e-5)
