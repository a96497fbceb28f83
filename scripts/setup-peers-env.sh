#!/usr/bin/env bash
# Create the peers' environment of `lsrkit bench peers`: PLAID (fast-plaid) with the torch it pins,
# apart from lsrkit's own .venv (whose torch is pinned by the ONNX export). Idempotent.
# Usage: scripts/setup-peers-env.sh [folder]   (default: .venv-peers in the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_DIR="${1:-.venv-peers}"
PYTHON="${PYTHON:-python3}"
[ -x "$ENV_DIR/bin/python" ] || "$PYTHON" -m venv "$ENV_DIR"
PIP=("$ENV_DIR/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "fast-plaid==1.7.0.2110" "numpy>=1.26"
"$ENV_DIR/bin/python" -c 'import fast_plaid, torch; print("ready:", "'"$ENV_DIR"'", "(fast-plaid, torch", torch.__version__ + ")")' >&2
