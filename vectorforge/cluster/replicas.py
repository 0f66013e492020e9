"""A replica's settings and folder: an unsharded, unreplicated engine collection of its own."""

from __future__ import annotations

import json
from pathlib import Path

from vectorforge.engine.collection import CONFIG_FILE
from vectorforge.storage import fsio
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig

__all__ = ["prepare_replica_folder", "replica_config"]


def replica_config(config: CollectionConfig) -> CollectionConfig:
    """A replica is an unsharded, unreplicated engine collection with the collection's settings."""
    return config.model_copy(update={"shards": 1, "replicas": 1})


def prepare_replica_folder(config: CollectionConfig, folder: Path) -> None:
    if not (folder / CONFIG_FILE).exists():
        fsio.make_dirs(folder)  # each new folder durable in its parent
        write_json_atomic(folder / CONFIG_FILE, json.loads(replica_config(config).model_dump_json()))
