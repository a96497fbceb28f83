"""`every_shard`: a search or count answered by only some shards is unavailable, whichever way
OpenSearch counts the missing ones (the real engine's cases are in tests/integration/test_cluster.py)."""

import pytest

from lsrkit.core import UnavailableError
from lsrkit.plugin.opensearch import every_shard


def test_whole_answers_pass_skipped_shards_included():
    whole = {"_shards": {"total": 3, "successful": 3, "skipped": 1, "failed": 0}, "count": 7}
    assert every_shard("count", "i", whole) is whole  # a skipped shard is counted as successful too


@pytest.mark.parametrize(
    "shards",
    [
        {"total": 3, "successful": 2, "skipped": 0, "failed": 1, "failures": [{"reason": {"type": "node_not_connected_exception"}}]},
        {"total": 3, "successful": 2, "skipped": 0, "failed": 0},  # unassigned: neither successful nor failed
        {"total": 3, "successful": 2, "skipped": 1, "failed": 0},  # one skipped, one unassigned
    ],
)
def test_a_missing_shard_is_unavailable(shards):
    with pytest.raises(UnavailableError, match="1 of 3 shards"):
        every_shard("search", "i", {"_shards": shards, "hits": {"hits": []}})
