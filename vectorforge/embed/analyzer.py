"""Text analyzers for lexical (BM25) vectors: named and versioned like embedders.

An analyzer turns a text into terms: lowercase, Unicode word tokens of two or more characters
(scikit-learn's and bm25s's pattern), English stopwords removed (scikit-learn's list), Snowball
stems (PyStemmer). A term becomes a sparse index by a stable 63-bit hash, so no vocabulary has to be
stored or shared between segments and shards (Qdrant's and FastEmbed's BM25 hash tokens the same
way); at 63 bits two terms of a million-term corpus collide with a probability of about 1e-7.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import Stemmer

from vectorforge.errors import InvalidParameter
from vectorforge.types import SparseVector

__all__ = ["Analyzer", "get_analyzer", "register_analyzer", "term_id"]

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _english_stop_words() -> frozenset[str]:
    # Imported when an analyzer is made, not with vectorforge: scikit-learn takes over a second to
    # import, which every process (a CLI command, a server worker) would pay.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def term_id(term: str) -> int:
    """The sparse index of a term: the same in every process, run and release."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "little") >> 1


@dataclass(frozen=True)
class Analyzer:
    """Text -> terms -> a sparse vector of term counts (what BM25 needs of a document or query)."""

    name: str
    version: str
    language: str = "english"
    stopwords: frozenset[str] = field(default_factory=_english_stop_words)
    lowercase: bool = True

    def terms(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise InvalidParameter(f"an analyzer takes text, not {type(text).__name__}")
        words = re.findall(TOKEN_PATTERN, text.lower() if self.lowercase else text)
        kept = [w for w in words if w not in self.stopwords]
        return _stemmer(self.language)(kept) if kept else []

    def counts(self, text: str) -> SparseVector:
        """The text's term counts as a sparse vector (indices by `term_id`, sorted)."""
        counted = Counter(term_id(t) for t in self.terms(text))
        indices = np.fromiter(sorted(counted), dtype=np.int64, count=len(counted))
        values = np.asarray([counted[i] for i in indices.tolist()], dtype=np.float32)
        return SparseVector(indices, values)

    def encode(self, texts: Iterable[str]) -> list[SparseVector]:
        return [self.counts(t) for t in texts]


_STEMMERS: dict[str, Callable[[list[str]], list[str]]] = {}


def _stemmer(language: str) -> Callable[[list[str]], list[str]]:
    found = _STEMMERS.get(language)
    if found is None:
        try:
            found = Stemmer.Stemmer(language).stemWords
        except KeyError as exc:
            raise InvalidParameter(
                f"no stemmer for {language!r}; PyStemmer knows {sorted(Stemmer.algorithms())}"
            ) from exc
        _STEMMERS[language] = found
    return found


_ANALYZERS: dict[str, Analyzer] = {}
# Built-in analyzers are made on first use (see _english_stop_words).
_BUILTIN: dict[str, Callable[[], Analyzer]] = {"english": lambda: Analyzer("english", "1")}


def register_analyzer(analyzer: Analyzer) -> None:
    """Make `analyzer` available by its name (a collection records name and version)."""
    _ANALYZERS[analyzer.name] = analyzer


def get_analyzer(name: str) -> Analyzer:
    found = _ANALYZERS.get(name)
    if found is None and name in _BUILTIN:
        found = _ANALYZERS[name] = _BUILTIN[name]()
    if found is None:
        raise InvalidParameter(f"analyzer {name!r} is unknown; known: {sorted({*_BUILTIN, *_ANALYZERS})}")
    return found
