"""eval, tune and the benches reuse an index only while it holds what a finished job of the same
corpus wrote: a delete or another job ends that, and an index the user named is never dropped to
make room (lsrkit.jobs, on Qdrant Edge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsrkit.core.errors import ConfigError
from lsrkit.factory import BackendOptions
from lsrkit.index import Index
from lsrkit.jobs import ensure_ingested, is_ingested

pytestmark = pytest.mark.models


def _jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_reuse_ends_with_a_delete_or_another_job(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    first, second = _jsonl(tmp_path / "first.jsonl", mini_docs[:8]), _jsonl(tmp_path / "second.jsonl", mini_docs[8:14])
    with Index("t", backend=BackendOptions("edge", data_dir=tmp_path / "data"), encoders=(sparse_encoder, mv_encoder)) as index:
        assert ensure_ingested(index, first, progress=False) is not None  # built
        assert ensure_ingested(index, first, progress=False) is None  # reused
        index.delete([mini_docs[0]["_id"]])
        assert not is_ingested(index, first)  # the index no longer holds all of `first`
        assert ensure_ingested(index, first, progress=False) is not None
        assert index.count() > 0 and is_ingested(index, first)

        # a Ray job's finished checkpoint beside the local one: a new job of another corpus ends both
        ray = index.state_dir / "ray-checkpoint.json"
        ray.write_text(json.dumps({"job": "ray|earlier", "finished": True}))
        with pytest.raises(ConfigError, match="unknown ingest runner"):  # refused before it holds the index: changes nothing
            index.ingest(second, runner="spark", progress=False)
        assert ray.exists() and is_ingested(index, first)
        index.ingest(second, progress=False)
        assert not ray.exists()
        assert not is_ingested(index, first)


def test_an_index_the_user_named_is_refused_not_dropped(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    theirs, dataset = _jsonl(tmp_path / "theirs.jsonl", mini_docs[:6]), _jsonl(tmp_path / "dataset.jsonl", mini_docs[6:12])
    with Index("mine", backend=BackendOptions("edge", data_dir=tmp_path / "data"), encoders=(sparse_encoder, mv_encoder)) as index:
        index.ingest(theirs, progress=False)
        held = index.count()
        with pytest.raises(ConfigError, match="'mine' exists but no finished lsrkit ingest of this dataset"):
            ensure_ingested(index, dataset, progress=False, named_by_user=True)
        assert index.count() == held and is_ingested(index, theirs)
        assert ensure_ingested(index, dataset, progress=False, named_by_user=True, reingest=True) is not None
        assert is_ingested(index, dataset) and not is_ingested(index, theirs)
