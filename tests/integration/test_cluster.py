"""A node of the three-node cluster (scripts/test.sh starts it) SIGKILLed mid-ingest, mid-delete and
under `lsrkit serve` load: nothing lost, duplicated or stale, exact statistics, no 5xx but 503 with
Retry-After, answers back without a restart. Each scenario brings the node back (green) before
it returns: the cluster tests after it find all three nodes."""

from __future__ import annotations

import os
import time

import pytest

from lsrkit.bench import node_loss

pytestmark = [pytest.mark.cluster, pytest.mark.models, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(opensearch_cluster_url: str) -> node_loss.LocalCluster:
    ours = node_loss.LocalCluster(int(os.environ.get("OPENSEARCH_CLUSTER_PORT", "9210")), heap=os.environ.get("OPENSEARCH_HEAP", "512m"))
    assert ours.url == opensearch_cluster_url, "the cluster the tests were given is not the one the runner script made"
    return ours


def _nothing_lost(outcome) -> None:
    assert outcome.records_valid > 0 and outcome.records_indexed == outcome.records_valid
    assert (outcome.lost, outcome.duplicates, outcome.stale, outcome.wrongly_dead_lettered) == (0, 0, 0, 0)
    assert outcome.notes["statistics_exact"]


def test_a_node_killed_during_ingest_loses_nothing(scifact_dir, tmp_path, cluster) -> None:
    outcome = node_loss.node_killed_during_ingest(scifact_dir, tmp_path, cluster, n=160, kills=("cluster_manager",))  # the bench kills another node too
    _nothing_lost(outcome)
    # finished, or stopped non-zero and resumed (else finish() raised)
    assert outcome.notes["cluster_manager"]["running_after_kill"], outcome.notes


def test_a_node_killed_during_delete_loses_nothing(scifact_dir, tmp_path, cluster) -> None:
    outcome = node_loss.node_killed_during_delete(scifact_dir, tmp_path, cluster, n=120, kills=("other_node",))  # the bench kills the cluster manager too
    _nothing_lost(outcome)  # stale 0: the deleted documents' passages are gone
    killed = outcome.notes["other_node"]
    assert killed["waited_for"] == "deletes seen" and killed["running_after_kill"], killed
    assert killed["exit_code"] == 0 or killed["rerun_exit_code"] == 0, killed


def test_a_node_killed_under_serve_load_never_answers_5xx(scifact_dir, tmp_path, cluster) -> None:
    outcome = node_loss.node_killed_under_serve(scifact_dir, tmp_path, cluster, n=40, phase_seconds=4.0, kills=("cluster_manager",))
    _nothing_lost(outcome)
    assert outcome.status_5xx == 0 and outcome.unanswered == 0, outcome.notes["phases"]
    assert outcome.notes["status_503_without_retry_after"] == 0
    assert all(phase["status_other"] == 0 for phase in outcome.notes["phases"].values()), outcome.notes["phases"]  # 200, 429 or 503 only
    assert outcome.notes["recovered_without_restart"] and outcome.notes["clients_still_running"] == 0, outcome.notes
    assert outcome.notes["phases"]["all_nodes"]["status_200"] > 0


def test_a_shard_with_no_live_copy_is_unavailable_not_a_partial_answer(scenario, sparse_encoder, cluster, opensearch_cluster_url) -> None:
    """An index without replicas loses a shard with the node: every read that would answer from
    the other shards alone (search, count, the rerank's code read) raises UnavailableError (what
    `lsrkit serve` answers 503); all answer whole again once the node is back."""
    from dataclasses import replace

    from lsrkit.core import UnavailableError
    from lsrkit.plugin import Retrieval
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    from ..conftest import unique_index

    backend = OpenSearchBackend(client_from_env(opensearch_cluster_url), vocab=sparse_encoder.vocab)
    spec = replace(unique_index("no-replica"), shards=3, replicas=0)
    records = scenario["records"]
    try:
        backend.ensure_index(spec)
        backend.write(spec.name, records)
        backend.flush(spec.name)
        query = scenario["query_encoder"].encode_queries([scenario["queries"][0]])[0]
        ids = [r.id for r in records]
        node = cluster.holding_a_primary_of(spec.name)
        cluster.kill_node(node)
        try:
            # right after the kill (the shard's copy may still be unreachable: a failed shard), and
            # surely after the cluster has seen the loss (unassigned: not successful, not failed)
            for state in ("just killed", "seen gone"):
                if state == "seen gone":
                    health = backend.client.transport.perform_request(  # `timeout=` would be the client's own
                        "GET", "/_cluster/health", params={"wait_for_nodes": str(cluster.nodes - 1), "timeout": "60s"}, timeout=90, ignore=(408,)
                    )
                    assert health["number_of_nodes"] == cluster.nodes - 1, health
                with pytest.raises(UnavailableError):
                    backend.retrieve(spec.name, Retrieval(sparse=query, limit=10))
                with pytest.raises(UnavailableError):
                    backend.count(spec.name)
                with pytest.raises(UnavailableError):
                    backend.fetch_multivectors(spec.name, ids)
        finally:
            cluster.revive(node)
        for attempt in range(30):  # back within seconds of green: the nodes reconnect to it
            try:
                assert backend.count(spec.name) == len(records)
                break
            except UnavailableError:
                if attempt == 29:
                    raise
                time.sleep(1)
        assert len(backend.fetch_multivectors(spec.name, ids)) == len(records)
        assert backend.retrieve(spec.name, Retrieval(sparse=query, limit=10)).sparse
    finally:
        backend.drop_index(spec.name)
        backend.close()


def test_replicas_change_in_place_and_a_resumed_ingest_keeps_the_sizes(opensearch_cluster_url, sparse_encoder, tmp_path) -> None:
    from dataclasses import replace

    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    from ..conftest import unique_index

    backend = OpenSearchBackend(client_from_env(opensearch_cluster_url), vocab=sparse_encoder.vocab)
    spec = replace(unique_index("sizes"), shards=3, replicas=0)
    try:
        assert backend.ensure_index(spec)
        assert not backend.ensure_index(replace(spec, replicas=1))  # a live setting: changed, not refused
        settings = backend.client.indices.get_settings(index=spec.name)[spec.name]["settings"]["index"]
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "1")
        assert backend.spec(spec.name) == replace(spec, replicas=1)
        with Index(spec.name, backend=BackendOptions("opensearch", data_dir=tmp_path, url=opensearch_cluster_url)) as later:
            assert (later.spec().shards, later.spec().replicas) == (3, 1)  # an existing index's, not 1 and 0
    finally:
        backend.drop_index(spec.name)
        backend.close()


def test_bench_shards_sets_three_shards_against_one(opensearch_cluster_url, tmp_path) -> None:
    from lsrkit.bench import shards
    from lsrkit.core.errors import ConfigError
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index

    from ..conftest import beir_subset

    dataset = beir_subset(tmp_path / "shards-mini", 40)
    try:
        result = shards.run(dataset=dataset, url=opensearch_cluster_url, shards=(1, 3), pipelines=("bm25", "hybrid+rerank"), data_dir=tmp_path, rounds=1)
        assert result["nodes"] == 3 and set(result["indexes"]) == {"1", "3"}
        assert result["indexes"]["1"]["passages"] == result["indexes"]["3"]["passages"] > 40  # every document, in passages
        assert [(result["indexes"][n]["primary_shards"], result["indexes"][n]["replicas"]) for n in ("1", "3")] == [(1, 1), (3, 1)]  # read from the engine
        for name in ("bm25", "hybrid+rerank"):
            one, three = result["pipelines"][name]["1"], result["pipelines"][name]["3"]
            assert 0 < one["ndcg10"] <= 1 and 0 < three["ndcg10"] <= 1 and 0 < one["p50_ms"] <= one["p99_ms"]
            low, high = three["delta_interval95"]
            assert low <= three["ndcg10_delta_vs_1st"] <= high
            assert three["ndcg10_delta_vs_1st"] == pytest.approx(three["ndcg10"] - one["ndcg10"], abs=2e-4)
            assert three["outside_interval"] == (not low <= 0 <= high)
        # a kept index of the bench's name in another layout is refused before anything is dropped
        with pytest.raises(ConfigError, match="has 1 shards and 1 replicas, not 1 and 0"):
            shards.run(dataset=dataset, url=opensearch_cluster_url, shards=(1,), replicas=0, pipelines=("bm25",), data_dir=tmp_path, rounds=1)
        with Index("shards-mini-1shards", backend=BackendOptions("opensearch", data_dir=tmp_path, url=opensearch_cluster_url)) as kept:
            assert kept.count() == result["indexes"]["1"]["passages"]
    finally:
        for n in (1, 3):
            with Index(f"shards-mini-{n}shards", backend=BackendOptions("opensearch", data_dir=tmp_path, url=opensearch_cluster_url)) as built:
                built.drop()
