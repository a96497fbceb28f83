"""Streaming readers for corpora: JSONL, a BEIR folder, CSV and Parquet.

Each yields SourceRecord(position, data, error) in source order; a line that cannot be parsed
comes back with `error` set instead of stopping the run. Nothing is read into memory whole.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lsrkit.core.errors import IngestError

SourceFormat = Literal["auto", "jsonl", "beir", "csv", "parquet"]


@dataclass(frozen=True)
class FieldMapping:
    """Which source fields hold the id, title, text and metadata (None: all other fields)."""

    id: str = "_id"
    title: str = "title"
    text: str = "text"
    metadata: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SourceRecord:
    """One record as read: its ordinal (0-based), a human position, the parsed fields or an error."""

    ordinal: int
    position: str
    data: dict[str, Any] | None = None
    error: str | None = None
    raw: str | None = field(default=None, repr=False)


def detect_format(path: Path) -> SourceFormat:
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return "beir"
        raise IngestError(f"{path} is a folder without corpus.jsonl (not a BEIR dataset)")
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if suffix.endswith((".csv", ".tsv")):
        return "csv"
    if suffix.endswith(".parquet"):
        return "parquet"
    raise IngestError(f"cannot tell the format of {path}: name it .jsonl, .csv, .tsv or .parquet, or pass --format")


Source = str | Path | Iterable[Mapping[str, Any]]  # a file or folder, or records in memory


def read_records(source: Source, fmt: SourceFormat = "auto") -> Iterator[SourceRecord]:
    if not isinstance(source, (str, Path)):
        return _in_memory(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise IngestError(f"source {path} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "beir":
        path = path / "corpus.jsonl" if path.is_dir() else path
        return _jsonl(path)
    if fmt == "jsonl":
        return _jsonl(path)
    if fmt == "csv":
        return _csv(path)
    if fmt == "parquet":
        return _parquet(path)
    raise IngestError(f"unknown source format {fmt!r}")


def _in_memory(records: Iterable[Mapping[str, Any]]) -> Iterator[SourceRecord]:
    for ordinal, record in enumerate(records):
        position = f"record {ordinal + 1}"
        if not isinstance(record, Mapping):
            yield SourceRecord(ordinal, position, error=f"a {type(record).__name__}, not a mapping", raw=repr(record)[:200])
            continue
        yield SourceRecord(ordinal, position, data=dict(record))


def _jsonl(path: Path) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        for ordinal, line in enumerate(handle):
            position = f"{path.name}:{ordinal + 1}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield SourceRecord(ordinal, position, error=f"not UTF-8: {exc.reason}", raw=line[:200].decode("utf-8", "replace"))
                continue
            if not text.strip():
                yield SourceRecord(ordinal, position, error="empty line", raw="")
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield SourceRecord(ordinal, position, error=f"invalid JSON: {exc.msg} at column {exc.colno}", raw=text[:200])
                continue
            if not isinstance(data, dict):
                yield SourceRecord(ordinal, position, error=f"a JSON {type(data).__name__}, not an object", raw=text[:200])
                continue
            yield SourceRecord(ordinal, position, data=data)


def _csv(path: Path) -> Iterator[SourceRecord]:
    csv.field_size_limit(sys.maxsize)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # undecodable bytes become lone surrogates (surrogateescape), found per row below: one bad
    # row is dead-lettered, never silently replaced, and never stops the file
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for ordinal, row in enumerate(reader):
            position = f"{path.name}:row {ordinal + 2}"  # +1 header, +1 one-based
            if None in row:
                yield SourceRecord(ordinal, position, error="more fields than the header names", raw=_printable(str(row)))
                continue
            undecodable = [k for k, v in row.items() if _has_surrogate(k) or _has_surrogate(v)]
            if undecodable:
                yield SourceRecord(
                    ordinal, position, error=f"not UTF-8 (field {_printable(undecodable[0])!r})", raw=_printable(",".join(v or "" for v in row.values()))
                )
                continue
            yield SourceRecord(ordinal, position, data=dict(row))


def _has_surrogate(value: str | None) -> bool:
    return value is not None and any("\ud800" <= c <= "\udfff" for c in value)


def _printable(value: str) -> str:
    """An excerpt for the dead-letter file: undecodable bytes shown as \\xNN."""
    return value[:200].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _parquet(path: Path) -> Iterator[SourceRecord]:
    import pyarrow.parquet as pq

    ordinal = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield SourceRecord(ordinal, f"{path.name}:row {ordinal + 1}", data=row)
            ordinal += 1
