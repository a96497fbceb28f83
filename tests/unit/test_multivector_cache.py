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


def _in_processes(target, directory, starts) -> None:
    """Run target(directory, start) in one spawned process per start, all at once."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=target, args=(directory, start)) for start in starts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0


def test_processes_writing_at_once_lose_nothing(tmp_path):
    _in_processes(_write_many, tmp_path / "c", (0, 40, 80))
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


def _data_files(directory):
    return sorted(p.name for p in directory.glob("vectors*.bin"))


def _live_bytes(cache: MultiVectorCache, ids) -> int:
    return sum((4 * len(r) + r.codes.size + 3) // 4 * 4 for r in cache.get(ids).values())


def test_compaction_reclaims_replaced_records_and_keeps_every_entry(tmp_path):
    cache = MultiVectorCache(tmp_path / "c", compact_after_bytes=1 << 30)  # no compaction on write
    latest = {}
    for version in range(4):
        for i in range(10):
            latest[f"id{i}"] = (f"v{version}", _rows(100 * version + i, 3 + i))
        cache.put(dict(latest))
    wanted = {k: d for k, (d, _) in latest.items()}
    before = (tmp_path / "c" / "vectors.bin").stat().st_size
    live = _live_bytes(cache, wanted)
    assert cache.compact() == before - live > 0
    assert _data_files(tmp_path / "c") == ["vectors.1.bin"]  # the old file is gone
    assert (tmp_path / "c" / "vectors.1.bin").stat().st_size == live
    found = cache.get(wanted)
    assert all(_same(found[k], rows) for k, (_, rows) in latest.items())
    cache.put({"new": ("d", _rows(7, 4))})  # writes go on into the new file
    assert _same(cache.get({"new": "d"})["new"], _rows(7, 4)) and _same(cache.get({"id3": "v3"})["id3"], latest["id3"][1])
    cache.close()
    reopened = MultiVectorCache(tmp_path / "c")
    assert len(reopened.get({**wanted, "new": "d"})) == 11
    reopened.close()


def test_a_reader_that_mapped_the_old_file_reads_the_compacted_one(tmp_path):
    reader, writer = MultiVectorCache(tmp_path / "c"), MultiVectorCache(tmp_path / "c", compact_after_bytes=1 << 30)
    writer.put({f"id{i}": ("old", _rows(i, 6)) for i in range(8)})
    held = reader.get({"id0": "old"})["id0"]  # a view into the map of generation 0
    writer.put({f"id{i}": ("new", _rows(50 + i, 2 + i)) for i in range(0, 8, 2)})
    writer.compact()
    found = reader.get({**{f"id{i}": "new" for i in range(0, 8, 2)}, **{f"id{i}": "old" for i in range(1, 8, 2)}})
    assert len(found) == 8
    assert all(_same(found[f"id{i}"], _rows(50 + i, 2 + i)) for i in range(0, 8, 2))
    assert all(_same(found[f"id{i}"], _rows(i, 6)) for i in range(1, 8, 2))  # moved, same bytes
    assert _same(held, _rows(0, 6))  # what it held before is still readable: the map outlives the delete
    reader.close()
    writer.close()


def test_writes_compact_on_their_own_once_most_bytes_are_dead(tmp_path):
    cache = MultiVectorCache(tmp_path / "c", compact_after_bytes=2_000)
    for version in range(60):
        cache.put({f"id{i}": (f"v{version}", _rows(1000 * version + i, 12)) for i in range(5)})
    wanted = {f"id{i}": "v59" for i in range(5)}
    live = _live_bytes(cache, wanted)
    [data] = _data_files(tmp_path / "c")
    assert data != "vectors.bin"  # it compacted
    assert (tmp_path / "c" / data).stat().st_size <= 2.5 * max(live, 2_000) + live  # 60 versions written, ~3 kept
    found = cache.get(wanted)
    assert all(_same(found[f"id{i}"], _rows(59_000 + i, 12)) for i in range(5))
    cache.close()


def _rewrite_own_ids(directory, start: int) -> None:
    cache = MultiVectorCache(directory, compact_after_bytes=0)  # compacts as soon as half is dead
    for version in range(15):
        cache.put({f"id{start + i}": (f"v{version}", _rows(start * 100 + version * 10 + i, 1 + i)) for i in range(5)})
    cache.close()


def test_processes_compacting_while_others_write_lose_nothing(tmp_path):
    _in_processes(_rewrite_own_ids, tmp_path / "c", (0, 10, 20))
    cache = MultiVectorCache(tmp_path / "c")
    found = cache.get({f"id{s + i}": "v14" for s in (0, 10, 20) for i in range(5)})
    assert len(found) == 15
    assert all(_same(found[f"id{s + i}"], _rows(s * 100 + 140 + i, 1 + i)) for s in (0, 10, 20) for i in range(5))
    assert len(_data_files(tmp_path / "c")) == 1
    cache.close()
