"""lsrkit.core: shared types, the error tree and config. Imports nothing else of lsrkit."""

from lsrkit.core.config import BatchPolicy, IndexSpec, OnnxOptions, RerankSettings
from lsrkit.core.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    EncoderError,
    ExportError,
    IndexBusyError,
    IndexExistsError,
    IndexMissingError,
    IngestError,
    InputError,
    LsrError,
    ModelNotFoundError,
    RecordError,
    UnavailableError,
)
from lsrkit.core.types import Document, Hit, MultiVector, SparseVector

__all__ = [
    "BackendError",
    "BatchPolicy",
    "CheckpointError",
    "ConfigError",
    "Document",
    "EncoderError",
    "ExportError",
    "Hit",
    "IndexExistsError",
    "IndexBusyError",
    "IndexMissingError",
    "IndexSpec",
    "IngestError",
    "InputError",
    "LsrError",
    "ModelNotFoundError",
    "MultiVector",
    "OnnxOptions",
    "RecordError",
    "RerankSettings",
    "SparseVector",
    "UnavailableError",
]
