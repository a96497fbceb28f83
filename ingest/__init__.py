"""lsrkit.ingest: sources, validation, chunking, batching, checkpoints, dead letters, the job."""

from lsrkit.ingest.checkpoint import Checkpoint
from lsrkit.ingest.chunking import Chunker, Passage
from lsrkit.ingest.deadletter import DeadLetter, read_dead_letters
from lsrkit.ingest.job import BatchResult, IngestJob, IngestSummary, RetryPolicy
from lsrkit.ingest.sources import FieldMapping, SourceRecord, read_records
from lsrkit.ingest.validate import Validator

__all__ = [
    "BatchResult",
    "Checkpoint",
    "Chunker",
    "DeadLetter",
    "FieldMapping",
    "IngestJob",
    "IngestSummary",
    "Passage",
    "RetryPolicy",
    "SourceRecord",
    "Validator",
    "read_dead_letters",
    "read_records",
]
