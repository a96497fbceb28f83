"""Qdrant's BM25 term weights, configured per index: the corpus's own mean length and language.

Both Qdrant adapters compute BM25 client-side with qdrant-edge's `Bm25` and store the weights as a
sparse vector (the engine applies the IDF): the mean passage length is baked into what is written,
so ingest measures it before the first write (IndexSpec.bm25_avg_len).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import qdrant_edge as qe

from lsrkit.core.config import IndexSpec

# With b=0 and a huge k the BM25 saturation tf·(k+1)/(tf+k) is tf itself: the same tokenizer,
# stemmer and stopwords then count terms instead of weighing them.
_COUNTING_K, _COUNTING_B = 1e9, 0.0
QDRANT_DEFAULT_AVG_LEN = 256.0  # what qdrant-edge assumes when not told


class QdrantBm25:
    """Document weights, query term counts and text lengths under one index's analyzer."""

    def __init__(self, spec: IndexSpec) -> None:
        analysis: dict[str, Any] = (
            {"stemmer": qe.DisabledStemmer(), "stopwords": qe.StopwordsSet(languages=set())}
            if spec.text_language == "none"
            else {"language": spec.text_language}
        )
        avg_len = spec.bm25_avg_len or QDRANT_DEFAULT_AVG_LEN
        try:
            self._weights = qe.Bm25(qe.Bm25Config(avg_len=avg_len, **analysis))
            self._counts = qe.Bm25(qe.Bm25Config(k=_COUNTING_K, b=_COUNTING_B, **analysis))
        except ValueError as exc:
            from lsrkit.core.errors import ConfigError

            raise ConfigError(f"index {spec.name!r}: Qdrant's BM25 cannot analyze text_language={spec.text_language!r}: {exc}") from exc

    def document(self, text: str) -> tuple[list[int], list[float]]:
        vector = self._weights.embed_document(text)
        return list(vector.indices), list(vector.values)

    def query(self, text: str) -> tuple[list[int], list[float]]:
        """Each query term weighted by how often the query says it (Bm25.embed_query gives every
        distinct term 1.0, so a long query would lose its term frequencies)."""
        vector = self._counts.embed_document(text)
        return list(vector.indices), [float(round(v)) for v in vector.values]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """How many BM25 terms each text has (what Qdrant's length normalization counts)."""
        return [round(sum(self._counts.embed_document(text).values)) for text in texts]


@lru_cache(maxsize=64)
def bm25_for(spec: IndexSpec) -> QdrantBm25:
    return QdrantBm25(spec)
