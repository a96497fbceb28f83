"""Shared fixtures. Models come from installed packages (no hub); engines are real."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may download weights
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SCIFACT = Path(os.environ.get("LSRKIT_SCIFACT", REPO.parent / "shared" / "datasets" / "scifact"))
MINI = REPO / "lsrkit" / "data" / "scifact-mini"


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT} (set LSRKIT_SCIFACT)")
    return SCIFACT


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    return MINI


@pytest.fixture(scope="session")
def mini_docs() -> list[dict]:
    return [json.loads(line) for line in (MINI / "corpus.jsonl").open()]


@pytest.fixture(scope="session")
def sparse_encoder():
    from lsrkit.encoders import SparseDocEncoder

    return SparseDocEncoder("splade-tiny")


@pytest.fixture(scope="session")
def sparse_encoder_fp32():
    from lsrkit.core import OnnxOptions
    from lsrkit.encoders import SparseDocEncoder

    return SparseDocEncoder("splade-tiny", options=OnnxOptions(quantize="none"))


@pytest.fixture(scope="session")
def mv_encoder():
    from lsrkit.encoders import MultiVectorEncoder

    return MultiVectorEncoder("minilm-l6")


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A live OpenSearch. In CI its absence fails the test; elsewhere it skips."""
    url = os.environ.get("LSRKIT_OPENSEARCH_URL", "http://127.0.0.1:9200")
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=3) as response:
            status = json.load(response)["status"]
    except Exception as exc:  # any failure means: no cluster here
        if os.environ.get("CI"):
            pytest.fail(f"OpenSearch is required in CI and not reachable at {url}: {exc}")
        pytest.skip(f"no OpenSearch at {url} (start it with docker/opensearch-local.sh start)")
    assert status in ("green", "yellow")
    return url


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture()
def tmp_state(tmp_path: Path) -> Path:
    return tmp_path / "state"
