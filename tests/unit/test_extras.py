"""The runtime without the extras: `import lsrkit` and the encoders need none of the engine SDKs or
tools, and an engine whose extra is missing says which extra to install."""

from __future__ import annotations

import subprocess
import sys

EXTRAS_ONLY = ("qdrant_edge", "qdrant_client", "opensearchpy", "ranx", "pyarrow", "fastapi", "uvicorn", "prometheus_client", "matplotlib", "torch")

PROBE = f"""
import sys
for name in {EXTRAS_ONLY!r}:
    sys.modules[name] = None  # importing it raises ImportError, as if not installed
import lsrkit
from lsrkit.encoders import SparseDocEncoder
from lsrkit.factory import BackendOptions, open_backend
assert len(SparseDocEncoder("splade-tiny").encode_documents(["ATP stores energy"])[0]) > 0
try:
    open_backend(BackendOptions(kind="edge"))
except lsrkit.LsrError as exc:
    print(exc)
"""


def test_the_runtime_imports_without_extras_and_names_the_missing_one():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pip install 'lsrkit[qdrant]'" in result.stdout
