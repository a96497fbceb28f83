"""CodeCache: codes served only under the engine's digest, bounded by bytes, per index."""

from __future__ import annotations

from lsrkit.plugin.code_cache import ENTRY_OVERHEAD, CodeCache, code_digest


def test_a_copy_is_served_only_under_the_engines_digest():
    cache = CodeCache(1 << 20)
    cache.store("papers", {"p1": b"old codes"})
    assert cache.lookup("papers", {"p1": code_digest(b"old codes")}) == {"p1": b"old codes"}
    assert cache.lookup("papers", {"p1": code_digest(b"new codes")}) == {}  # written again since
    assert cache.lookup("other", {"p1": code_digest(b"old codes")}) == {}  # another index
    cache.store("papers", {"p1": b"new codes"})
    assert cache.lookup("papers", {"p1": code_digest(b"new codes")}) == {"p1": b"new codes"}
    assert (cache.looked_up, cache.found) == (4, 2)


def test_least_recently_used_codes_leave_past_the_byte_budget():
    cache = CodeCache(3 * (100 + ENTRY_OVERHEAD))
    codes = {f"p{i}": bytes([i]) * 100 for i in range(4)}
    cache.store("papers", {k: codes[k] for k in ("p0", "p1", "p2")})
    cache.lookup("papers", {"p0": code_digest(codes["p0"])})  # p0 used: p1 is now the oldest
    cache.store("papers", {"p3": codes["p3"]})
    held = cache.lookup("papers", {k: code_digest(v) for k, v in codes.items()})
    assert set(held) == {"p0", "p2", "p3"} and cache.bytes_held <= cache.max_bytes


def test_codes_are_read_inline_until_most_candidates_hit():
    cache = CodeCache(1 << 20)
    digests = {"p1": code_digest(b"x"), "p2": code_digest(b"y")}
    assert cache.reads_inline("papers")
    cache.store("papers", {"p1": b"x", "p2": b"y"})
    for _ in range(30):
        cache.lookup("papers", digests)
    assert not cache.reads_inline("papers")
    cache.forget("papers")
    assert cache.reads_inline("papers") and cache.lookup("papers", digests) == {}
    assert CodeCache(0).reads_inline("papers") and not CodeCache(0).enabled
