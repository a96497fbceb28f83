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


class _Answers:
    """A client whose searches answer with the given responses in turn (response shapes only:
    the real engine's partial answers are in tests/integration/test_cluster.py)."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.searches = 0

    def search(self, **_):
        self.searches += 1
        return self.responses.pop(0)


PARTIAL = {"_shards": {"total": 3, "successful": 2, "failed": 1, "failures": [{"reason": {"type": "node_disconnected_exception"}}]}, "hits": {"hits": []}}
WHOLE = {
    "_shards": {"total": 3, "successful": 3, "failed": 0},
    "hits": {"hits": [{"_id": "d1#0", "_score": 2.0, "_source": {"id": "d1#0", "doc_id": "d1", "title": "", "text": "t"}}]},
}


def _bm25(client):
    from lsrkit.plugin import Retrieval
    from lsrkit.plugin.opensearch import OpenSearchBackend

    return OpenSearchBackend(client, vocab=[]).retrieve("i", Retrieval(text="cells", limit=10, texts=True)).bm25


def test_a_search_some_shard_did_not_answer_is_tried_once_more():
    client = _Answers(PARTIAL, WHOLE)
    assert [h.id for h in _bm25(client)] == ["d1#0"]
    assert client.searches == 2


def test_a_shard_that_stays_unanswered_is_unavailable():
    client = _Answers(PARTIAL, PARTIAL, WHOLE)
    with pytest.raises(UnavailableError, match="1 of 3 shards did not answer"):
        _bm25(client)
    assert client.searches == 2
