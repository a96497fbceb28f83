"""CodeCache: codes served only under the engine's digest, bounded by bytes, per index."""

from __future__ import annotations

from lsrkit.plugin.code_cache import ENTRY_OVERHEAD, CodeCache, code_digest


def _with_digests(codes: dict[str, bytes]) -> dict[str, str]:
    return {p: code_digest(c) for p, c in codes.items()}


def test_a_copy_is_served_only_under_the_engines_digest():
    cache = CodeCache(1 << 20)
    old, new = {"p1": b"old codes"}, {"p1": b"new codes"}
    cache.store("papers", old, _with_digests(old))
    assert cache.lookup("papers", _with_digests(old)) == old
    assert cache.lookup("papers", _with_digests(new)) == {}  # written again since
    assert cache.lookup("other", _with_digests(old)) == {}  # another index
    cache.store("papers", new, _with_digests(new))
    assert cache.lookup("papers", _with_digests(new)) == new
    assert (cache.looked_up, cache.found) == (4, 2)


def test_codes_without_the_engines_digest_are_not_kept():
    cache = CodeCache(1 << 20)
    cache.store("papers", {"p1": b"codes", "p2": b"codes"}, {"p2": code_digest(b"other bytes")})  # p1: no digest stored
    assert cache.bytes_held == 0


def test_least_recently_used_codes_leave_past_the_byte_budget():
    cache = CodeCache(3 * (100 + ENTRY_OVERHEAD))
    codes = {f"p{i}": bytes([i]) * 100 for i in range(4)}
    first = {k: codes[k] for k in ("p0", "p1", "p2")}
    cache.store("papers", first, _with_digests(first))
    cache.lookup("papers", {"p0": code_digest(codes["p0"])})  # p0 used: p1 is now the oldest
    cache.store("papers", {"p3": codes["p3"]}, _with_digests(codes))
    held = cache.lookup("papers", _with_digests(codes))
    assert set(held) == {"p0", "p2", "p3"} and cache.bytes_held <= cache.max_bytes


def test_codes_are_read_inline_until_most_rerank_reads_find_every_candidate():
    cache = CodeCache(1 << 20)
    codes = {"p1": b"x", "p2": b"y"}
    digests = _with_digests(codes)
    assert cache.reads_inline("papers")
    cache.store("papers", {"p1": b"x"}, digests)
    for _ in range(30):
        cache.lookup("papers", digests, rerank_read=True)  # p2 always misses: never worth a second read
    assert cache.reads_inline("papers")
    cache.store("papers", codes, digests)
    for _ in range(30):
        cache.lookup("papers", digests)  # reads that do not rerank do not steer
    assert cache.reads_inline("papers")
    for _ in range(30):
        cache.lookup("papers", digests, rerank_read=True)
    assert not cache.reads_inline("papers")
    cache.forget("papers")
    assert cache.reads_inline("papers") and cache.lookup("papers", digests) == {}
    assert CodeCache(0).reads_inline("papers") and not CodeCache(0).enabled
