"""On the real OpenSearch node: a bulk refused for the engine's state (a write block) is an
UnavailableError for the whole bulk, retried by the one retry layer, never a refused record; a
record refused for what it is (a mapping conflict) is the result's `failed`."""

from __future__ import annotations

import threading
import time

import pytest

from lsrkit.core import UnavailableError
from lsrkit.ingest.retry import RetryPolicy, retrying

from ..conftest import unique_index

pytestmark = pytest.mark.models


@pytest.fixture()
def blocked(opensearch_url, sparse_encoder, scenario):
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    spec = unique_index("blocked")
    backend.ensure_index(spec)
    yield backend, spec.name, scenario["records"][:8]
    backend.client.indices.put_settings(index=spec.name, body={"index.blocks.write": False})
    backend.drop_index(spec.name)
    backend.close()


def _block(backend, index: str, on: bool) -> None:
    backend.client.indices.put_settings(index=index, body={"index.blocks.write": on})


def test_a_write_block_fails_the_bulk_as_unavailable_not_its_records(blocked):
    backend, index, records = blocked
    _block(backend, index, True)
    with pytest.raises(UnavailableError, match="HTTP 403 cluster_block_exception"):
        backend.write(index, records)


def test_a_write_block_lifted_within_the_policy_is_ridden_out(blocked):
    backend, index, records = blocked
    _block(backend, index, True)
    threading.Timer(2.0, _block, args=(backend, index, False)).start()
    started = time.time()
    result = retrying(lambda: backend.write(index, records), RetryPolicy(seconds=30, first_delay=0.2, max_delay=1.0))
    assert sorted(result.written) == sorted(r.id for r in records) and not result.failed
    assert time.time() - started >= 1.5


def test_a_block_outlasting_the_policy_raises_and_a_stop_cuts_the_backoff_short(blocked):
    backend, index, records = blocked
    _block(backend, index, True)
    started = time.time()
    with pytest.raises(UnavailableError):
        retrying(lambda: backend.write(index, records), RetryPolicy(seconds=1.5, first_delay=0.2, max_delay=0.5))
    assert 1.4 <= time.time() - started < 5
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.time()
    with pytest.raises(UnavailableError):
        retrying(lambda: backend.write(index, records), RetryPolicy(seconds=60, first_delay=5, max_delay=5), stop)
    assert time.time() - started < 3


def test_a_record_the_mapping_refuses_is_failed_alone(blocked):
    from dataclasses import replace

    backend, index, records = blocked
    backend.write(index, records[:1])  # maps metadata.parity as text
    bad = replace(records[0], id="bad-metadata", metadata={"parity": {"nested": "an object where text is mapped"}})
    result = backend.write(index, [bad, *records[1:]])
    assert list(result.failed) == ["bad-metadata"] and "HTTP 400" in result.failed["bad-metadata"]
    assert sorted(result.written) == sorted(r.id for r in records[1:])
