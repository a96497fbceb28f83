"""The one error tree of lsrkit. Every adapter translates its SDK's exceptions into these."""

from __future__ import annotations


class LsrError(Exception):
    """Root of every error lsrkit raises on purpose."""


class ConfigError(LsrError, ValueError):
    """A setting or spec is invalid (raised when the object is built, not later)."""


class InputError(LsrError, ValueError):
    """A query or value given at call time is unusable (empty, too long, NaN, wrong type)."""


class ModelNotFoundError(LsrError):
    """No source of a model could be resolved; the message lists every source tried."""


class ExportError(LsrError):
    """Exporting or quantizing a model to ONNX failed, or the export extra is missing."""


class EncoderError(LsrError):
    """An encoder got input it cannot encode, or its runtime failed on it."""


class BackendError(LsrError):
    """An engine call failed (the message names the backend and the index)."""


class UnavailableError(BackendError):
    """The engine could not be reached or did not answer in time."""


class IndexExistsError(BackendError):
    """An index already exists and the caller did not ask to replace it."""


class IndexMissingError(BackendError):
    """The index named does not exist."""


class IndexBusyError(LsrError):
    """Another job holds the index's write lease (the message names the holder)."""


class IngestError(LsrError):
    """An ingestion job cannot go on (bad source, unreadable file, mismatched checkpoint)."""


class RecordError(IngestError):
    """One source record is invalid; carries its position, id and the reason."""

    def __init__(self, reason: str, *, position: str, record_id: str | None = None) -> None:
        self.reason = reason
        self.position = position
        self.record_id = record_id
        where = f"record {record_id!r} at {position}" if record_id else f"record at {position}"
        super().__init__(f"{where}: {reason}")


class CheckpointError(IngestError):
    """A checkpoint file is unreadable or belongs to another job."""
