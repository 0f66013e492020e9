"""A data folder's evaluation data: its gold sets and its history, found in one place."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import History
from vectorforge.evaluation.online.drift_watch import DriftStore
from vectorforge.evaluation.online.events import EventStore
from vectorforge.evaluation.online.experiments import ExperimentStore
from vectorforge.evaluation.online.shadow import ShadowStore
from vectorforge.evaluation.store import GoldSetStore, evaluation_root

__all__ = ["Workspace"]


class Workspace:
    """`data/evaluation/goldsets/`, `data/evaluation/history.sqlite` and the online events,
    experiments, drift watches and shadows in `data/evaluation/events.sqlite`. Neither takes the data
    folder's lock, so the CLI can import gold sets and record runs while a server holds the folder."""

    def __init__(self, data: str | Path) -> None:
        self.root = evaluation_root(data)

    @cached_property
    def goldsets(self) -> GoldSetStore:
        return GoldSetStore(self.root / "goldsets")

    @cached_property
    def history(self) -> History:
        return History(self.root / "history.sqlite")

    @cached_property
    def events(self) -> EventStore:
        return EventStore(self.root / "events.sqlite")

    @cached_property
    def experiments(self) -> ExperimentStore:
        return ExperimentStore(self.root / "events.sqlite")

    @cached_property
    def drift(self) -> DriftStore:
        return DriftStore(self.root / "events.sqlite")

    @cached_property
    def shadows(self) -> ShadowStore:
        return ShadowStore(self.root / "events.sqlite")

    def goldset(self, ref: str) -> GoldSet:
        """`NAME` (the current version) or `NAME@VERSION` (a version or a prefix of one)."""
        name, _, version = ref.partition("@")
        return self.goldsets.get(name, version or None)
