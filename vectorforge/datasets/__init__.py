"""Readers for standard retrieval data sets (BEIR format)."""

from __future__ import annotations

from vectorforge.datasets.beir import BeirDataset, load_beir

__all__ = ["BeirDataset", "load_beir"]
