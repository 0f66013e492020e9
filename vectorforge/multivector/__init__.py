"""Late interaction: MaxSim, PLAID, ColPali (a later issue); ColBERT on MiniLM (colbert.py)."""

from __future__ import annotations

from vectorforge.multivector import colbert as colbert  # registers the "colbert-minilm" token encoder
