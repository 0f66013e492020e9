"""Late interaction: the PLAID index (registered as index kind `plaid` of multi vectors), its
residual codec, token pooling, MUVERA encodings and the MUVERA first stage (index kind `muvera`),
ColBERT (registers the "colbert-minilm" token encoder) and page-image (ColPali-style) encoders."""

from __future__ import annotations

from vectorforge.multivector import colbert as colbert
from vectorforge.multivector.muvera_index import MUVERAIndex
from vectorforge.multivector.plaid import PLAIDIndex

__all__ = ["MUVERAIndex", "PLAIDIndex"]
