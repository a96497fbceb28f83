#!/usr/bin/env bash
# Set up .venv, start a real OpenSearch on 127.0.0.1 (one node, and a three-node cluster), run the
# whole test suite, stop OpenSearch.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-venv.sh
command -v mvn >/dev/null || { echo "installing maven (fetches OpenSearch)" >&2; apt-get update -qq && apt-get install -y -qq maven >/dev/null; }
command -v unzip >/dev/null || { apt-get update -qq && apt-get install -y -qq unzip >/dev/null; }

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# this script starts every service the suite needs: one that does not answer fails its tests, never skips them
export LSRKIT_REQUIRE_SERVICES=1
# ranx's numba-compiled metrics (~25 s to compile) cached outside the fresh venv, as uv's wheels are
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$HOME/.cache/lsrkit/numba}"
export OPENSEARCH_PORT="${OPENSEARCH_PORT:-9200}"
export LSRKIT_OPENSEARCH_URL="http://127.0.0.1:${OPENSEARCH_PORT}"
# the cluster tests (marker `cluster`) run on three more nodes: every index they make in 3 shards
# with a replica each; the single node serves the rest of the suite
export OPENSEARCH_CLUSTER_PORT="${OPENSEARCH_CLUSTER_PORT:-9210}"
# `wait`: a run stopped early (lint, types) lets the boot below finish, so that every node it started is stopped
trap 'wait; bash docker/opensearch-local.sh stop || true; OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh stop || true' EXIT
# the single node boots (and fetches the distribution on a first run), then the cluster, while
# lint, format and types are checked: a failure there fails the run before the long suites
(bash docker/opensearch-local.sh start && OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh start --nodes 3) &
engines=$!
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
wait "$engines"
LSRKIT_OPENSEARCH_CLUSTER_URL="$(OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh url)"
export LSRKIT_OPENSEARCH_CLUSTER_URL

.venv/bin/python -m pytest -p no:cacheprovider --durations=25 "$@"
