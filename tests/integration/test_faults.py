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
    assert outcome.stale == 0 and outcome.wrongly_dead_lettered == 0, outcome


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
    assert (outcome.duplicates, outcome.lost, outcome.stale, outcome.wrongly_dead_lettered) == (0, 0, 0, 0), outcome
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


def _assert_exact(outcome: faults.Outcome) -> None:
    """Nothing lost, duplicated, stale or wrongly dead-lettered, and the statistics a fresh count."""
    _assert_intact(outcome)
    assert (outcome.stale, outcome.wrongly_dead_lettered) == (0, 0), outcome
    assert outcome.notes.get("statistics_exact", True), outcome


def test_ids_that_once_collided_a_lone_surrogate_and_a_non_utf8_csv_row(scifact_dir, tmp_path):
    outcome = faults.bad_inputs(scifact_dir, tmp_path)
    _assert_exact(outcome)
    assert outcome.notes["dead_lettered_jsonl"] == outcome.notes["dead_lettered_csv"] == 1
    assert outcome.notes["passages_of_x"] >= 2  # x#1 is x's second passage, and the short document x#1 is x#1#0


def test_a_write_block_lifted_mid_job_is_ridden_out(scifact_dir, tmp_path, fault_node):
    outcome = faults.write_block(scifact_dir, tmp_path, fault_node, n=160)
    _assert_exact(outcome)
    assert outcome.dead_lettered == 0 and outcome.notes["retried_bulks"] > 0


def test_a_write_block_that_never_lifts_stops_the_job_and_resume_finishes_it(scifact_dir, tmp_path, fault_node):
    outcome = faults.write_block(scifact_dir, tmp_path, fault_node, lifted_after=None, n=160)
    _assert_exact(outcome)
    assert outcome.notes["exit_code_while_blocked"] != 0 and "cluster_block_exception" in outcome.notes["error"]
    assert outcome.notes["resumed_from"] == outcome.notes["checkpoint_at_stop"] >= outcome.notes["blocked_after_ordinal"] > 0


@pytest.mark.parametrize("kind", ["ingest", "delete"])
def test_a_second_job_on_a_written_index_is_refused_and_the_first_unharmed(scifact_dir, tmp_path, fault_node, kind):
    outcome = faults.second_writer(scifact_dir, tmp_path, fault_node, kind=kind, n=160)
    _assert_exact(outcome)
    assert outcome.notes["second_exit_code"] != 0 and outcome.notes["first_running_then"]
    assert "is being written by" in outcome.notes["second_error"]


def test_a_killed_lease_holder_is_taken_over_from_another_machine_only_after_the_timeout(scifact_dir, tmp_path, fault_node):
    outcome = faults.lease_holder_killed(scifact_dir, tmp_path, fault_node, timeout=20.0, n=160)
    _assert_exact(outcome)
    assert outcome.notes["early_exit_code"] != 0 and outcome.notes["early_after_s"] < 20 and "being written by" in outcome.notes["early_error"]
    assert outcome.notes["taken_over_after_s"] >= 20 and outcome.notes["resumed_from"] == outcome.notes["killed_after_ordinal"]
