#!/usr/bin/env bash
# mypy over lsrkit as it is installed (lsrkit.core, lsrkit.ingest, … are the top-level folders:
# pyproject's package-dir) and over the tests. mypy cannot follow the editable install's import
# hook, so it would check each folder alone and never see a call from one package into another;
# a tree of links laid out as the installed package lets it check those calls too.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
tree="$repo/build/typecheck"
rm -rf "$tree" && mkdir -p "$tree/lsrkit"
for entry in lsrkit/*; do ln -s "$repo/$entry" "$tree/lsrkit/$(basename "$entry")"; done
for package in core encoders plugin ingest bench; do ln -s "$repo/$package" "$tree/lsrkit/$package"; done
ln -s "$repo/tests" "$tree/tests"
cd "$tree"
# the cache (keyed by file contents) outlives a clone: a rerun checks only what changed
exec "$repo/.venv/bin/mypy" --config-file "$repo/pyproject.toml" --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/lsrkit-mypy" -p lsrkit -p tests "$@"
