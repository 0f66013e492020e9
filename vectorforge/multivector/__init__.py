"""Late interaction: the PLAID index (registered as index kind `plaid` of multi vectors), its
residual codec, token pooling, MUVERA encodings, ColBERT and page-image (ColPali-style) encoders."""

from __future__ import annotations

from vectorforge.multivector.plaid import PLAIDIndex

__all__ = ["PLAIDIndex"]
