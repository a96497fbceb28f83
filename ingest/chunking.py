"""Splitting long documents into overlapping token windows (passages)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

from lsrkit.core.errors import ConfigError
from lsrkit.core.types import Document


@dataclass(frozen=True)
class Passage:
    id: str
    doc_id: str
    title: str
    text: str


PASSAGE_SEPARATOR = "#"


def passage_id(doc_id: str, index: int) -> str:
    """`<doc_id>#<n>` for every passage, a document of one passage too: what follows the last `#`
    is a number, so no two (document, n) pairs give one id, whatever the document ids hold.

    >>> passage_id("x#1", 0), passage_id("x", 1)
    ('x#1#0', 'x#1')
    """
    return f"{doc_id}{PASSAGE_SEPARATOR}{index}"


class Chunker:
    """Windows of `window` word pieces overlapping by `overlap`, cut at token boundaries."""

    def __init__(self, tokenizer: Tokenizer, window: int = 254, overlap: int = 32) -> None:
        if window < 16 or not 0 <= overlap < window // 2:
            raise ConfigError(f"chunk window must be >= 16 and overlap in [0, window/2), got {window}, {overlap}")
        self.tokenizer = tokenizer
        self.window = window
        self.overlap = overlap

    def split(self, document: Document) -> list[Passage]:
        title_budget = len(self.tokenizer.encode(document.title, add_special_tokens=False).ids) if document.title else 0
        budget = max(self.window - title_budget, self.window // 2)  # the title is repeated in every passage
        encoding = self.tokenizer.encode(document.text, add_special_tokens=False)
        offsets = encoding.offsets
        if len(offsets) <= budget:
            return [Passage(passage_id(document.id, 0), document.id, document.title, document.text)]
        starts = list(range(0, len(offsets) - self.overlap, budget - self.overlap))
        passages = []
        for n, start in enumerate(starts):
            end = min(start + budget, len(offsets))
            text = document.text[offsets[start][0] : offsets[end - 1][1]]
            passages.append(Passage(passage_id(document.id, n), document.id, document.title, text))
        return passages
