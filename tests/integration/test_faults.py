"""Faults real deployments see, on real engines: nothing lost, nothing written twice.

The OpenSearch scenarios start their own throwaway nodes (ports 9280/9290) through
docker/opensearch-local.sh, so killing one never disturbs the suite's main cluster.
"""

from __future__ import annotations

import pytest

from lsrkit.bench import faults

pytestmark = [pytest.mark.models, pytest.mark.slow]


def _assert_intact(outcome: faults.Outcome) -> None:
    assert outcome.records_indexed == outcome.records_valid, outcome
    assert outcome.duplicates == 0 and outcome.lost == 0, outcome


def test_malformed_records_are_dead_lettered_and_the_rest_indexed(scifact_dir, tmp_path):
    outcome = faults.malformed(scifact_dir, tmp_path, n=300)
    _assert_intact(outcome)
    assert outcome.dead_lettered == outcome.notes["bad_records"] == 6


def test_ingest_process_killed_then_resumed_on_edge(scifact_dir, tmp_path):
    outcome = faults.ingest_killed(scifact_dir, tmp_path, "edge", None, n=200)
    _assert_intact(outcome)
    assert outcome.notes["resumed_from"] == outcome.notes["killed_after_ordinal"] > 0


@pytest.fixture(scope="module")
def fault_node(opensearch_url):  # opensearch_url: fails in CI when OpenSearch cannot run at all
    node = faults.LocalOpenSearch(9280)
    node.wipe()
    node.start()
    yield node
    node.stop()
    node.wipe()


def test_ingest_process_killed_then_resumed_on_opensearch(scifact_dir, tmp_path, fault_node):
    outcome = faults.ingest_killed(scifact_dir, tmp_path, "opensearch", fault_node.url, n=200)
    _assert_intact(outcome)


def test_opensearch_killed_mid_ingest_restarted_and_resumed(scifact_dir, tmp_path, fault_node):
    outcome = faults.opensearch_killed(scifact_dir, tmp_path, fault_node, n=200)
    _assert_intact(outcome)
    assert outcome.dead_lettered == 0  # a dead node is a failed bulk, never a rejected record
    assert outcome.notes["job_exit_code_while_down"] != 0


def test_update_and_delete_with_the_node_killed_leave_nothing_stale_lost_or_counted_twice(scifact_dir, tmp_path, fault_node):
    outcome = faults.update_delete_killed(scifact_dir, tmp_path, fault_node, n=120)
    assert (outcome.duplicates, outcome.lost, outcome.notes["stale"]) == (0, 0, 0), outcome
    assert outcome.records_indexed == outcome.records_valid
    assert outcome.notes["statistics_exact"], outcome
    assert outcome.notes["update_exit_code_while_down"] != 0 and outcome.notes["delete_rerun_exit_code"] == 0


def test_real_429s_are_retried_item_by_item(scifact_dir, opensearch_url):
    node = faults.LocalOpenSearch(9290, "-Ethread_pool.write.size=1 -Ethread_pool.write.queue_size=1")
    node.wipe()
    node.start()
    try:
        outcome = faults.bulk_429(scifact_dir, node, n=160)
    finally:
        node.stop()
        node.wipe()
    _assert_intact(outcome)
    assert outcome.retried_429 > 0 and outcome.dead_lettered == 0
