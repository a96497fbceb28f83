#!/usr/bin/env bash
# Run real OpenSearch on 127.0.0.1 without Docker: the official distribution from Maven Central
# (fetched with mvn, cached outside the repo), security off. One node by default; `--nodes N`
# makes a cluster of N nodes (HTTP ports OPENSEARCH_PORT.., transport +100, discovery among them).
#   docker/opensearch-local.sh start [--nodes N] | stop | status | url | pid [NODE] | kill-node NODE | start-node NODE | wipe
# `url` names every node, comma-separated (what LSRKIT_OPENSEARCH_URL takes); `kill-node` SIGKILLs
# one node of a cluster and `start-node` brings it back (the node-loss tests and benchmarks).
# Settings (environment): OPENSEARCH_VERSION (3.5.0), OPENSEARCH_PORT (9200), OPENSEARCH_HEAP (512m per node),
# LSRKIT_OPENSEARCH_HOME (~/.cache/lsrkit/opensearch), OPENSEARCH_JAVA_HOME (a JDK >= 21),
# OPENSEARCH_EXTRA_SETTINGS (more -E settings, e.g. "-Ethread_pool.write.queue_size=2"),
# OPENSEARCH_PLUGINS (plugin artifacts of org.opensearch.plugin to install, space-separated;
# default opensearch-knn: its lateInteractionScore is the in-engine peer of lsrkit's rerank).
set -euo pipefail

VERSION="${OPENSEARCH_VERSION:-3.5.0}"
PORT="${OPENSEARCH_PORT:-9200}"
HEAP="${OPENSEARCH_HEAP:-512m}"
# OpenSearch refuses to run as root: as root, run it as a system user and keep it outside /root.
RUN_USER="${OPENSEARCH_RUN_USER:-lsrkit-opensearch}"
if [ "$(id -u)" = 0 ]; then DEFAULT_ROOT=/var/cache/lsrkit-opensearch; else DEFAULT_ROOT="$HOME/.cache/lsrkit/opensearch"; fi
ROOT="${LSRKIT_OPENSEARCH_HOME:-$DEFAULT_ROOT}"
HOME_DIR="$ROOT/opensearch-$VERSION"
SINGLE_DIR="$ROOT/run-$PORT"
CLUSTER_DIR="$ROOT/cluster-$PORT"  # node-0, node-1, …: one folder (data, logs, config, pid) per node
URL="http://127.0.0.1:$PORT"

find_java() {
  if [ -n "${OPENSEARCH_JAVA_HOME:-}" ]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
  local major="${VERSION%%.*}"
  if [ "$major" -ge 3 ]; then  # OpenSearch 3.x needs Java >= 21
    for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/temurin-*-jdk-amd64; do
      if [ -x "$candidate/bin/java" ]; then echo "$candidate"; return; fi
    done
    echo "error: OpenSearch $VERSION needs a JDK >= 21; set OPENSEARCH_JAVA_HOME" >&2; exit 1
  fi
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

maven_zip() {  # group artifact version -> the zip's path in the local Maven repository, fetched with mvn
  local group="$1" artifact="$2" version="$3"
  command -v mvn >/dev/null || { echo "error: mvn is needed to fetch $artifact (apt-get install maven)" >&2; exit 1; }
  echo "fetching $group:$artifact:$version:zip with mvn" >&2
  mvn -q -B dependency:get -Dartifact="$group:$artifact:$version:zip" -Dtransitive=false >&2
  local repo; repo="$(mvn -q -B help:evaluate -Dexpression=settings.localRepository -DforceStdout 2>/dev/null || echo "$HOME/.m2/repository")"
  local path="${group//.//}/$artifact/$version/$artifact-$version.zip"
  if [ -f "$repo/$path" ]; then echo "$repo/$path"; else echo "$HOME/.m2/repository/$path"; fi
}

fetch() {
  [ -x "$HOME_DIR/bin/opensearch" ] && return
  local zip; zip="$(maven_zip org.opensearch.distribution.integ-test-zip opensearch "$VERSION")"
  mkdir -p "$ROOT"
  local tmp; tmp="$(mktemp -d "$ROOT/.unzip-XXXX")"
  unzip -q "$zip" -d "$tmp"
  mv "$tmp/opensearch-$VERSION" "$HOME_DIR"
  rmdir "$tmp"
}

install_plugins() {
  local java_home; java_home="$(find_java)"
  local plugin
  for plugin in ${OPENSEARCH_PLUGINS-opensearch-knn}; do
    [ -d "$HOME_DIR/plugins/$plugin" ] && continue
    local zip; zip="$(maven_zip org.opensearch.plugin "$plugin" "$VERSION.0")"
    OPENSEARCH_JAVA_HOME="$java_home" JAVA_HOME="$java_home" "$HOME_DIR/bin/opensearch-plugin" install --batch "file://$zip" >&2
  done
}

node_count() {  # nodes of the cluster made by `start --nodes N` (0: none)
  local n=0 dir
  for dir in "$CLUSTER_DIR"/node-*; do [ -d "$dir" ] && n=$((n + 1)); done
  echo "$n"
}

node_dir() {  # node index (empty: the single node) -> its folder
  if [ -z "${1:-}" ]; then echo "$SINGLE_DIR"; else echo "$CLUSTER_DIR/node-$1"; fi
}

alive() {  # a process that exists and is not a zombie (a killed node's JVM may wait unreaped)
  kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

is_running() { local pid_file; pid_file="$(node_dir "${1:-}")/opensearch.pid"; [ -f "$pid_file" ] && alive "$(cat "$pid_file")"; }

urls() {  # every node's URL, comma-separated
  local n; n="$(node_count)"
  if [ "$n" -eq 0 ] || is_running; then echo "$URL"; return; fi
  local i out=""
  for i in $(seq 0 $((n - 1))); do out="${out:+$out,}http://127.0.0.1:$((PORT + i))"; done
  echo "$out"
}

wait_health() {  # node index (empty: the single node), nodes the cluster must have
  local node="${1:-}" want="${2:-1}"
  local url="http://127.0.0.1:$((PORT + ${node:-0}))"
  local deadline=$((SECONDS + ${OPENSEARCH_START_TIMEOUT:-180}))
  local i members=("$node")
  if [ -n "$node" ]; then members=(); for i in $(seq 0 $((want - 1))); do members+=("$i"); done; fi
  while [ $SECONDS -lt $deadline ]; do
    for i in "${members[@]}"; do
      if ! is_running "$i"; then
        echo "error: OpenSearch ${i:+node $i }exited during start; last log lines:" >&2; tail -n 30 "$(node_dir "$i")/stdout.log" >&2; return 1
      fi
    done
    # 200 only once the cluster has `want` nodes and is at least yellow (else 408)
    if curl -fs --max-time 3 "$url/_cluster/health?wait_for_nodes=$want&wait_for_status=yellow&timeout=1s" >/dev/null; then
      echo "OpenSearch $VERSION is up at $url ($want node(s))" >&2; return 0
    fi
    sleep 1
  done
  echo "error: OpenSearch did not become healthy within ${OPENSEARCH_START_TIMEOUT:-180}s; see $(node_dir "$node")/stdout.log" >&2
  return 1
}

as_run_user() {
  if [ "$(id -u)" = 0 ]; then
    id "$RUN_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
    chown -R "$RUN_USER" "$ROOT"
    # setpriv execs in place (no fork), so the pid written below is OpenSearch's own
    echo "setpriv --reuid=$RUN_USER --regid=$(id -g "$RUN_USER") --init-groups"
  fi
}

launch() {  # node index (empty: the single node), cluster size; starts it in the background
  local node="${1:-}" nodes="${2:-1}"
  local dir; dir="$(node_dir "$node")"
  local java_home; java_home="$(find_java)"
  local port=$((PORT + ${node:-0}))
  local topology=(-Ediscovery.type=single-node -Ecluster.name="lsrkit-$PORT")
  if [ -n "$node" ]; then
    local i seeds="" managers=""
    for i in $(seq 0 $((nodes - 1))); do seeds="${seeds:+$seeds,}127.0.0.1:$((PORT + 100 + i))"; managers="${managers:+$managers,}node-$i"; done
    topology=(-Enode.name="node-$node" -Ecluster.name="lsrkit-cluster-$PORT" -Ediscovery.seed_hosts="$seeds" -Ecluster.initial_cluster_manager_nodes="$managers")
    # each node its own config folder (a node writes its keystore there), copied afresh from the
    # distribution's at each start, with the JVM's log and heap-dump paths in the node's folder
    mkdir -p "$dir/config"
    cp -r "$HOME_DIR/config/." "$dir/config/"
    sed -i "s#logs/#$dir/logs/#g; s#HeapDumpPath=data#HeapDumpPath=$dir/data#" "$dir/config/jvm.options"
  fi
  mkdir -p "$dir/data" "$dir/logs"
  local runner; runner="$(as_run_user)"
  local environment=(OPENSEARCH_JAVA_HOME="$java_home" JAVA_HOME="$java_home" OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_JAVA_OPTS:-}")
  [ -z "$node" ] || environment+=(OPENSEARCH_PATH_CONF="$dir/config")
  # env, nohup and setpriv each exec in place: the pid written below is OpenSearch's own
  # shellcheck disable=SC2086
  env "${environment[@]}" nohup $runner "$HOME_DIR/bin/opensearch" \
      -Enetwork.host=127.0.0.1 -Ehttp.port="$port" -Etransport.port="$((port + 100))" \
      "${topology[@]}" \
      -Epath.data="$dir/data" -Epath.logs="$dir/logs" \
      -Ecluster.routing.allocation.disk.threshold_enabled=false \
      -Eaction.auto_create_index=false \
      ${OPENSEARCH_EXTRA_SETTINGS:-} \
      >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/opensearch.pid"
}

start() {
  local nodes=1
  if [ "${1:-}" = "--nodes" ]; then nodes="${2:?--nodes needs a number}"; fi
  [ "$nodes" -ge 1 ] || { echo "error: --nodes must be >= 1" >&2; exit 2; }
  fetch
  install_plugins
  if [ "$nodes" -eq 1 ]; then
    if is_running; then echo "OpenSearch already running (pid $(cat "$SINGLE_DIR/opensearch.pid")) at $URL" >&2; return 0; fi
    mkdir -p "$SINGLE_DIR"; launch "" 1; wait_health "" 1; return
  fi
  if is_running; then echo "error: a single node runs on port $PORT; stop it first" >&2; exit 1; fi
  local have; have="$(node_count)"
  if [ "$have" -ne 0 ] && [ "$have" -ne "$nodes" ]; then echo "error: $CLUSTER_DIR holds a $have-node cluster; wipe it first" >&2; exit 1; fi
  local i
  for i in $(seq 0 $((nodes - 1))); do mkdir -p "$(node_dir "$i")"; done  # all folders first: node_count
  for i in $(seq 0 $((nodes - 1))); do is_running "$i" || launch "$i" "$nodes"; done
  wait_health 0 "$nodes"
  echo "LSRKIT_OPENSEARCH_URL=$(urls)" >&2
}

stop_node() {  # node index (empty: the single node)
  local pid_file; pid_file="$(node_dir "${1:-}")/opensearch.pid"
  if is_running "${1:-}"; then
    local pid; pid="$(cat "$pid_file")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "OpenSearch ${1:+node $1 }(pid $pid) stopped" >&2
  fi
  rm -f "$pid_file"
}

stop() {  # the single node and every node of the cluster
  stop_node ""
  local n i; n="$(node_count)"
  for i in $(seq 0 $((n - 1))); do stop_node "$i"; done
}

kill_node() {  # SIGKILL, as a crash: no shutdown, no flush
  local node="${1:?kill-node needs a node index}"
  is_running "$node" || { echo "error: node $node is not running" >&2; exit 1; }
  local pid; pid="$(cat "$(node_dir "$node")/opensearch.pid")"
  kill -9 "$pid"
  local _
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  echo "node $node (pid $pid) killed" >&2
}

start_node() {  # a node of the cluster back, after kill-node
  local node="${1:?start-node needs a node index}"
  local n; n="$(node_count)"
  [ -d "$(node_dir "$node")" ] || { echo "error: no node $node in $CLUSTER_DIR" >&2; exit 1; }
  is_running "$node" && { echo "node $node already running" >&2; return 0; }
  launch "$node" "$n"
  wait_health "$node" "$n"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status)
    n="$(node_count)"
    if is_running; then echo "running (pid $(cat "$SINGLE_DIR/opensearch.pid")) at $URL"
    elif [ "$n" -gt 0 ]; then
      up=0; for i in $(seq 0 $((n - 1))); do is_running "$i" && up=$((up + 1)); done
      echo "cluster: $up of $n nodes running at $(urls)"; [ "$up" -gt 0 ] || exit 3
    else echo "stopped"; exit 3; fi ;;
  url) urls ;;
  pid) cat "$(node_dir "${2:-}")/opensearch.pid" ;;
  kill-node) kill_node "${2:-}" ;;
  start-node) start_node "${2:-}" ;;
  wipe) stop; rm -rf "$SINGLE_DIR" "$CLUSTER_DIR" ;;
  *) echo "usage: $0 start [--nodes N]|stop|status|url|pid [NODE]|kill-node NODE|start-node NODE|wipe" >&2; exit 2 ;;
esac
