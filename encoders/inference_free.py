"""The inference-free query encoder: tokenizer + IDF table, no model at query time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lsrkit.core.errors import ConfigError
from lsrkit.core.types import SparseVector
from lsrkit.encoders.idf import IdfTable
from lsrkit.encoders.registry import ModelSpec, resolve
from lsrkit.encoders.text import TextTokenizer, clean_texts


class IdfQueryEncoder:
    """Query → unique token ids (special tokens dropped), each weighted by its IDF.

    The IDF table is loaded eagerly: `idf_path` if given, else the model's own file (OpenSearch
    doc-v* models ship `idf.json`). A model without one needs a table built from the corpus
    (ingest builds and saves it with the index). The ONNX model is never loaded.
    """

    def __init__(
        self,
        model: str | ModelSpec = "splade-tiny",
        *,
        idf_path: Path | None = None,
        idf: IdfTable | None = None,
        tokenizer: TextTokenizer | None = None,
    ) -> None:
        """tokenizer: the model's, when the caller has loaded it already."""
        resolved = resolve(model, "sparse")
        self.spec = resolved.spec
        self.tokenizer = tokenizer or TextTokenizer(resolved.directory, resolved.spec.max_length)
        self.own_table = idf is None  # the model's (or a file's) table, not one measured on a corpus
        if idf is not None:
            table = idf
        elif idf_path is not None:
            table = IdfTable.load(Path(idf_path), self.tokenizer.vocab)
        elif resolved.spec.idf_file and (resolved.directory / resolved.spec.idf_file).is_file():
            table = IdfTable.load(resolved.directory / resolved.spec.idf_file, self.tokenizer.vocab)
        else:
            raise ConfigError(f"model {resolved.spec.name!r} ships no IDF table: pass idf_path= (ingest saves one as idf.json beside the index)")
        if len(table.vocab) != len(self.tokenizer.vocab):
            raise ConfigError(f"IDF table has {len(table.vocab)} entries, the tokenizer {len(self.tokenizer.vocab)}")
        self.idf = table
        self._special = np.array(sorted(self.tokenizer.special_ids), dtype=np.int64)

    @property
    def vocab(self) -> list[str]:
        return self.tokenizer.vocab

    def encode_queries(self, texts: Sequence[object]) -> list[SparseVector]:
        cleaned = clean_texts(texts, max_tokens=self.tokenizer.max_length)
        out: list[SparseVector] = []
        for ids in self.tokenizer.token_ids(cleaned, add_special_tokens=False):
            unique = np.unique(np.asarray(ids, dtype=np.int64))
            unique = unique[~np.isin(unique, self._special)]
            weights = self.idf.weights[unique]
            keep = weights > 0.0
            out.append(SparseVector(unique[keep].astype(np.int32), weights[keep]))
        return out
