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
no_engines=""  # the pid of the run beside the engine tests, once started
base="$(mktemp -d)"
finish() {
  if [ -n "$no_engines" ] && kill -0 "$no_engines" 2>/dev/null; then kill "$no_engines"; fi  # interrupted: it stops too
  wait
  if [ -s "$base/no-engines.log" ]; then echo "=== the tests without engines (run beside the ones above) ==="; cat "$base/no-engines.log"; fi
  rm -rf "$base"
  bash docker/opensearch-local.sh stop || true
  OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh stop || true
}
trap finish EXIT
trap 'exit 130' INT TERM  # through finish, which stops the run in the background too
# the single node boots (and fetches the distribution on a first run) while lint, format and types
# are checked: a failure there fails the run before the long suites
bash docker/opensearch-local.sh start &
single=$!
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
wait "$single"
OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh start --nodes 3
LSRKIT_OPENSEARCH_CLUSTER_URL="$(OPENSEARCH_PORT="$OPENSEARCH_CLUSTER_PORT" bash docker/opensearch-local.sh url)"
export LSRKIT_OPENSEARCH_CLUSTER_URL

pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ "$#" -gt 0 ]; then  # the tests named, in one run
  "${pytest[@]}" --durations=25 "$@"
  exit
fi
# Two runs side by side (one process alone leaves a core idle most of the time): every test that
# touches OpenSearch or Ray, in order, in one (the fault tests kill the nodes the others use); all
# the rest (unit tests, Qdrant Edge) in the other, where conftest refuses an OpenSearch fixture.
ENGINE_TESTS=(
  tests/contract tests/integration/test_cluster.py tests/integration/test_engine_errors.py tests/integration/test_faults.py
  tests/integration/test_index_lifecycle.py tests/integration/test_opensearch.py tests/integration/test_ray_ingest.py
  tests/integration/test_security.py tests/integration/test_serve.py
)
LSRKIT_TEST_RUN=no-engines "${pytest[@]}" --durations=15 --basetemp "$base/no-engines" tests "${ENGINE_TESTS[@]/#/--ignore=}" > "$base/no-engines.log" 2>&1 &
no_engines=$!
status=0
"${pytest[@]}" --durations=20 --basetemp "$base/engines" "${ENGINE_TESTS[@]}" || status=$?
wait "$no_engines" || status=$?
exit "$status"
