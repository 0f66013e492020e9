"""The model registry: versions of tuned embedders, kept in a data folder and loaded by name@version.

Layout (under a data folder's `models/`)::

    models/.lock                          flock: one registration at a time, across processes
    models/<name>/<version>/card.json     the ModelCard (written last: a version without it is not one)
    models/<name>/<version>/model/        the weights, in sentence-transformers format
    models/<name>/<version>/report.*      the training report, when there is one

Versions count up from 1 per name and never change; registering weights that a version of the name
already holds returns that version. A database registers its folder's models as embedders when it
opens (`embed.add_embedder_source`), so `embedder="docs-model@2"` (or `"docs-model"`: the latest)
works in any process that opens the folder, and a collection records the exact version it was made by.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vectorforge.embed import Embedder, SentenceTransformerEmbedder
from vectorforge.errors import CorruptionError, InvalidInputError, InvalidParameter, ModelNotFound
from vectorforge.models.card import ModelCard, read_embedding_settings, weights_hash
from vectorforge.storage import fsio
from vectorforge.storage.fsio import fsync_dir, write_json_atomic
from vectorforge.types import check_name

__all__ = ["ModelRegistry", "parse_ref"]

CARD = "card.json"
LATE_INTERACTION = "maxsim"  # the pooling a card of a token encoder (ColBERT) records


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`"name@3"` -> ("name", 3); `"name"` -> ("name", None), meaning the latest version."""
    name, sep, version = ref.partition("@")
    check_name(name, "model")
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidParameter(f"model reference {ref!r}: the version after '@' is a number from 1")
    return name, int(version)


class ModelRegistry:
    """Registered models under `root` (a data folder's `models/`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # name@version never changes once registered: resolved once, not per query (a collection's
        # every query asks for its embedder by that name)
        self._pinned: dict[str, tuple[str, Callable[[], Embedder]]] = {}

    # ------------------------------------------------------------------ reading
    def list(self, name: str | None = None) -> list[ModelCard]:
        """Every version (of `name`, or of every model), by name then version."""
        if not self.root.is_dir():
            return []
        names = [check_name(name, "model")] if name is not None else sorted(self._names())
        cards = []
        for model in names:
            folder = self.root / model
            versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
            cards += [self._read(model, v) for v in sorted(versions) if (folder / str(v) / CARD).exists()]
        return cards

    def get(self, ref: str) -> ModelCard:
        """The version `ref` names (`name@N`, or `name` for the latest)."""
        name, version = parse_ref(ref)
        if version is None:
            cards = self.list(name)
            if not cards:
                raise ModelNotFound(f"no model {name!r} is registered in {self.root}")
            return cards[-1]
        if not (self.root / name / str(version) / CARD).exists():
            known = [c.version for c in self.list(name)]
            raise ModelNotFound(
                f"model {name!r} has no version {version} in {self.root}"
                + (f"; it has {known}" if known else "; it is not registered")
            )
        return self._read(name, version)

    def model_path(self, card: ModelCard) -> Path:
        """The sentence-transformers folder of a version."""
        return self.root / card.name / str(card.version) / "model"

    def version_folder(self, card: ModelCard) -> Path:
        return self.root / card.name / str(card.version)

    def embedder(self, ref: str) -> Embedder:
        """An embedder for the version `ref` names, called `name@version` (what collections record)."""
        card = self.get(ref)
        if card.pooling == LATE_INTERACTION:
            raise InvalidParameter(
                f"model {card.ref!r} is a token encoder (ColBERT): use it as vf.Multi(encoder=...), "
                "registered with multivector.colbert.register_colbert"
            )
        return _embedder(card, self.model_path(card))

    def resolve(self, name: str) -> tuple[str, Callable[[], Embedder]] | None:
        """An embedder source (`embed.add_embedder_source`): a key for the exact weights (folder
        and hash) and a factory, for a registered `name[@version]`; None when there is no such model."""
        if (pinned := self._pinned.get(name)) is not None:
            return pinned
        try:
            card = self.get(name)
        except (InvalidInputError, ModelNotFound):
            return None
        if card.pooling == LATE_INTERACTION:  # a token encoder (ColBERT), not a text embedder
            return None
        path = self.model_path(card)
        found = (f"{path.resolve()}#{card.weights}", lambda: _embedder(card, path))
        if "@" in name:
            self._pinned[name] = found
        return found

    # ------------------------------------------------------------------ writing
    def register(
        self,
        name: str,
        model_dir: str | Path,
        *,
        record: Mapping[str, Any] | None = None,
        files: Callable[[ModelCard], Mapping[str, str]] | None = None,
    ) -> ModelCard:
        """Copy a saved sentence-transformers folder in as the next version of `name`.

        Args:
            record: the training record (base, data_hash, loss, params, metrics, training_seconds,
                description); dimension, pooling, normalize and prompts are read from the folder.
            files: texts kept beside the version (e.g. its report), made from its card, written
                before the version appears.

        Weights that a version of `name` already holds are not copied again: that version is
        returned, unchanged (its files too).
        """
        check_name(name, "model")
        source = Path(model_dir)
        settings = read_embedding_settings(source)
        weights = weights_hash(source)
        given = dict(record or {})
        made_here = {"name", "version", "weights", "registered_at", *settings}  # read from the folder
        refused = set(given) - set(ModelCard.model_fields) | set(given) & made_here
        if refused:
            raise InvalidParameter(f"the model record cannot set {sorted(refused)}")
        fields = {**settings, **given}
        with self._locked():
            for card in self.list(name):
                if card.weights == weights:
                    return card
            version = max((c.version for c in self.list(name)), default=0) + 1
            try:
                card = ModelCard(
                    name=name,
                    version=version,
                    weights=weights,
                    registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    **fields,
                )
            except ValidationError as exc:
                raise InvalidParameter(f"invalid model record: {exc.errors()[0]['msg']}") from exc
            tmp = self.root / name / f".tmp-{uuid.uuid4().hex[:8]}"
            try:
                shutil.copytree(source, tmp / "model")
                for file_name, text in (files(card) if files else {}).items():
                    (tmp / Path(file_name).name).write_text(text)
                fsio.fsync_tree(tmp)  # the weights are on disk before the version can be seen
                write_json_atomic(tmp / CARD, card.model_dump(mode="json"))
                fsio.replace(tmp, self.root / name / str(version))
                fsync_dir(self.root / name)
                fsync_dir(self.root)
            finally:
                if tmp.exists():
                    fsio.remove_tree(tmp)
        return card

    # ------------------------------------------------------------------ internals
    def _names(self) -> Iterator[str]:
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith("."):
                yield p.name

    def _read(self, name: str, version: int) -> ModelCard:
        path = self.root / name / str(version) / CARD
        try:
            return ModelCard.model_validate_json(path.read_text())
        except (OSError, ValidationError) as exc:
            raise CorruptionError(f"model card {path} cannot be read: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fsio.make_dirs(self.root)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                for leftover in self.root.glob("*/.tmp-*"):  # a registration that a crash interrupted
                    fsio.remove_tree(leftover)
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _embedder(card: ModelCard, path: Path) -> Embedder:
    return SentenceTransformerEmbedder(
        card.ref,
        str(path),
        card.ref,
        card.weights,
        card.dim,
        precision=os.environ.get("VECTORFORGE_PRECISION", "bfloat16"),
    )
