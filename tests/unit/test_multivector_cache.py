"""MultiVectorCache: the local copy of an index's multivectors, keyed by id and digest."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from lsrkit.plugin.codec import QuantizedRows, quantize_rows
from lsrkit.plugin.multivector_cache import MultiVectorCache


def _rows(seed: int, tokens: int, dim: int = 7) -> QuantizedRows:
    return quantize_rows(np.random.default_rng(seed).standard_normal((tokens, dim)).astype(np.float32))


def _same(a: QuantizedRows, b: QuantizedRows) -> bool:
    return np.array_equal(a.codes, b.codes) and np.array_equal(a.scales, b.scales)


def test_put_get_by_digest_and_replace(tmp_path):
    cache = MultiVectorCache(tmp_path / "c")
    first, second = _rows(1, 5), _rows(2, 3)  # 5×7 + 20 bytes: records are padded to 4 bytes
    cache.put({"a": ("d1", first), "b": ("d2", second)})
    found = cache.get({"a": "d1", "b": "d2", "missing": "x"})
    assert set(found) == {"a", "b"} and _same(found["a"], first) and _same(found["b"], second)
    assert cache.get({"a": "stale"}) == {}  # a digest the engine no longer holds is a miss
    replacement = _rows(3, 9)
    cache.put({"a": ("d3", replacement)})
    assert _same(cache.get({"a": "d3"})["a"], replacement) and cache.get({"a": "d1"}) == {}
    assert len(cache) == 2
    cache.close()
    reopened = MultiVectorCache(tmp_path / "c")
    assert _same(reopened.get({"b": "d2"})["b"], second)  # persisted
    reopened.close()


def test_bytes_without_an_index_row_are_ignored(tmp_path):
    """A crash between the data write and the index commit leaves only unreferenced bytes."""
    cache = MultiVectorCache(tmp_path / "c")
    cache.put({"a": ("d1", _rows(1, 4))})
    with open(tmp_path / "c" / "vectors.bin", "ab") as data:
        data.write(b"\x07" * 13)  # a torn record, not 4-aligned
    cache.put({"b": ("d2", _rows(2, 6))})
    assert _same(cache.get({"b": "d2"})["b"], _rows(2, 6)) and _same(cache.get({"a": "d1"})["a"], _rows(1, 4))
    cache.close()


def test_a_reader_sees_what_another_handle_wrote_later(tmp_path):
    reader, writer = MultiVectorCache(tmp_path / "c"), MultiVectorCache(tmp_path / "c")
    writer.put({"a": ("d1", _rows(1, 4))})
    assert set(reader.get({"a": "d1"})) == {"a"}
    writer.put({f"x{i}": ("d", _rows(i, 50)) for i in range(20)})  # the file grows past the reader's map
    assert len(reader.get({f"x{i}": "d" for i in range(20)})) == 20
    reader.close()
    writer.close()


def _write_many(directory, start: int) -> None:
    cache = MultiVectorCache(directory)
    for i in range(start, start + 40):
        cache.put({f"id{i}": (f"d{i}", _rows(i, 1 + i % 11))})
    cache.close()


def test_processes_writing_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(tmp_path / "c", start)) for start in (0, 40, 80)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = MultiVectorCache(tmp_path / "c")
    found = cache.get({f"id{i}": f"d{i}" for i in range(120)})
    assert len(found) == 120 and all(_same(found[f"id{i}"], _rows(i, 1 + i % 11)) for i in range(120))
    cache.close()


def test_remove(tmp_path):
    cache = MultiVectorCache(tmp_path / "c")
    cache.put({"a": ("d", _rows(1, 2))})
    cache.close()
    MultiVectorCache.remove(tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("tokens", [0, 1, 17])
def test_quantized_scoring_agrees_with_dequantized_within_the_query_rounding(tokens):
    """Codes are scored against the query rounded to 7 bits per token; the float path (mixed
    inputs) is exact. The difference is bounded by Σ over query tokens of half a query step times
    the largest L1 norm of a document row."""
    from lsrkit.plugin.integer_gemm import QUERY_LEVELS
    from lsrkit.plugin.rerank import maxsim_scores

    query = np.random.default_rng(9).standard_normal((6, 7)).astype(np.float32)
    docs = [_rows(4, tokens), _rows(5, 3)]
    fast = maxsim_scores(query, docs)
    slow = maxsim_scores(query, [d.dequantize() for d in docs])
    mixed = maxsim_scores(query, [docs[0], docs[1].dequantize()])
    half_steps = np.abs(query).max(axis=1) / QUERY_LEVELS / 2
    for doc, got, want in zip(docs, fast, slow):
        rows = doc.dequantize()
        bound = half_steps.sum() * (np.abs(rows).sum(axis=1).max() if len(rows) else 0.0)
        assert abs(got - want) <= bound + 1e-5
    np.testing.assert_allclose(mixed, slow, rtol=1e-5, atol=1e-5)
