#!/usr/bin/env bash
# Run one real OpenSearch node on 127.0.0.1 without Docker: the official distribution from
# Maven Central (fetched with mvn, cached outside the repo), security off, single-node.
#   docker/opensearch-local.sh start|stop|status|url
# Settings (environment): OPENSEARCH_VERSION (3.5.0), OPENSEARCH_PORT (9200), OPENSEARCH_HEAP (512m),
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
RUN_DIR="$ROOT/run-$PORT"
PID_FILE="$RUN_DIR/opensearch.pid"
LOG_FILE="$RUN_DIR/stdout.log"
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

is_running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

wait_health() {
  local deadline=$((SECONDS + ${OPENSEARCH_START_TIMEOUT:-180}))
  while [ $SECONDS -lt $deadline ]; do
    if ! is_running; then
      echo "error: OpenSearch exited during start; last log lines:" >&2; tail -n 30 "$LOG_FILE" >&2; return 1
    fi
    local status
    status="$(curl -s --max-time 2 "$URL/_cluster/health" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' || true)"
    if [ "$status" = "green" ] || [ "$status" = "yellow" ]; then echo "OpenSearch $VERSION is $status at $URL" >&2; return 0; fi
    sleep 1
  done
  echo "error: OpenSearch did not become healthy within ${OPENSEARCH_START_TIMEOUT:-180}s; see $LOG_FILE" >&2
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

start() {
  if is_running; then echo "OpenSearch already running (pid $(cat "$PID_FILE")) at $URL" >&2; return 0; fi
  fetch
  install_plugins
  local java_home; java_home="$(find_java)"
  mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs"
  local runner; runner="$(as_run_user)"
  # shellcheck disable=SC2086
  OPENSEARCH_JAVA_HOME="$java_home" JAVA_HOME="$java_home" OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_JAVA_OPTS:-}" \
    nohup $runner "$HOME_DIR/bin/opensearch" \
      -Enetwork.host=127.0.0.1 -Ehttp.port="$PORT" -Etransport.port="$((PORT + 100))" \
      -Ediscovery.type=single-node -Ecluster.name="lsrkit-$PORT" \
      -Epath.data="$RUN_DIR/data" -Epath.logs="$RUN_DIR/logs" \
      -Ecluster.routing.allocation.disk.threshold_enabled=false \
      -Eaction.auto_create_index=false \
      ${OPENSEARCH_EXTRA_SETTINGS:-} \
      >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  wait_health
}

stop() {
  if is_running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "OpenSearch (pid $pid) stopped" >&2
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo "running (pid $(cat "$PID_FILE")) at $URL"; else echo "stopped"; exit 3; fi ;;
  url) echo "$URL" ;;
  pid) cat "$PID_FILE" ;;
  wipe) stop; rm -rf "$RUN_DIR" ;;
  *) echo "usage: $0 start|stop|status|url|pid|wipe" >&2; exit 2 ;;
esac
