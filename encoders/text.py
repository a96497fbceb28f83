"""Input checks and tokenization shared by every encoder.

Documented results for awkward input: None or a non-string raises EncoderError naming the
position; an empty or whitespace-only text encodes to an empty vector; control characters are
replaced by spaces; very long texts are cut before tokenization (the model truncates at its
max length anyway, so nothing it would have seen is lost).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from lsrkit.core.errors import EncoderError
from lsrkit.core.types import unencodable_at

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CHARS_PER_TOKEN_BOUND = 32  # no BERT word piece is longer: cutting at max_length*32 chars is lossless


def clean_texts(texts: Sequence[object], *, max_tokens: int) -> list[str]:
    """Validate and normalize a batch of texts; raise EncoderError naming the first bad one."""
    if isinstance(texts, (str, bytes)):
        raise EncoderError("expected a sequence of texts, got a single string: wrap it in a list")
    cleaned: list[str] = []
    limit = max_tokens * CHARS_PER_TOKEN_BOUND
    for position, text in enumerate(texts):
        if text is None:
            raise EncoderError(f"text at position {position} is None")
        if not isinstance(text, str):
            raise EncoderError(f"text at position {position} is a {type(text).__name__}, not a str")
        if (offset := unencodable_at(text)) is not None:
            raise EncoderError(f"text at position {position} has a character UTF-8 cannot carry at offset {offset} (a lone surrogate)")
        cleaned.append(_CONTROL.sub(" ", text[:limit]).strip())
    return cleaned


@dataclass(frozen=True)
class TokenBatch:
    """Right-padded int64 arrays, ready for onnxruntime."""

    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]
    token_type_ids: npt.NDArray[np.int64]

    def feeds(self, names: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        return {name: getattr(self, name) for name in names}


class TextTokenizer:
    """A `tokenizers` tokenizer with truncation, its special-token ids and its vocabulary."""

    def __init__(self, directory: Path, max_length: int) -> None:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise EncoderError(f"no tokenizer.json in {directory}")
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        self.special_ids = self._special_ids(path)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        self.vocab: list[str] = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            self.vocab[index] = token

    def _special_ids(self, path: Path) -> frozenset[int]:
        config = json.loads(path.read_text())
        ids = {t["id"] for t in config.get("added_tokens", []) if t.get("special")}
        for token in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"):
            index = self.tokenizer.token_to_id(token)
            if index is not None:
                ids.add(index)
        return frozenset(ids)

    def token_ids(self, texts: Sequence[str], *, add_special_tokens: bool = True) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)]

    def pad(self, sequences: Sequence[Sequence[int]]) -> TokenBatch:
        width = max(len(s) for s in sequences)
        ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return TokenBatch(ids, mask, np.zeros_like(ids))


def is_punctuation(token: str) -> bool:
    """A word piece made only of punctuation (skipped in ColBERT-style MaxSim).

    >>> is_punctuation(","), is_punctuation("##."), is_punctuation("cat")
    (True, True, False)
    """
    core = token[2:] if token.startswith("##") else token
    return bool(core) and all(unicodedata.category(ch).startswith("P") for ch in core)
