"""The statistics journal in the engine: what `finish_open` leaves for the next job."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.models


def test_an_entry_journaled_after_the_open_changes_were_finished_is_never_rolled_forward(tmp_path, sparse_encoder):
    """A Ray driver lists a block's change, hands the block out and dies; the job taking the
    lease over finishes the open changes (this one has no entry yet); the dead driver's worker,
    past its lease check, then journals the block and stops at its next check. The resumed job
    redoes and counts that block under its own id: the late entry must not be counted again by
    the job after it."""
    from lsrkit.core.config import IndexSpec
    from lsrkit.ingest.statistics import CorpusStatistics, EngineJournal
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    backend = QdrantEdgeBackend(tmp_path)
    try:
        backend.ensure_index(IndexSpec("journal", multivector_dim=None))
        tokenizer = sparse_encoder.model.tokenizer
        taking_over = CorpusStatistics(backend, "journal", tokenizer)
        taking_over.journal.open(["late"])  # listed by the driver that died
        assert taking_over.finish_open() == 0 and taking_over.journal.listed() == []
        orphan = CorpusStatistics(backend, "journal", tokenizer, journal=EngineJournal(backend, "journal", register=False))
        orphan.begin("ray|job", 2, ["d1"], ["d1#0"], change_id="late")
        assert taking_over.journal.get("late") is not None  # it landed, unlisted
        assert taking_over.finish_open() == 0 and taking_over.journal.open_changes() == []
    finally:
        backend.close()
