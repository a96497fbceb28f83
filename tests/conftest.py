"""Shared fixtures. Models come from installed packages (no hub); engines are real."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from hypothesis import settings

# the property tests check behaviour, not speed: a first example run cold beside a busy engine on
# two cores can pass hypothesis' default 200 ms deadline, which would make CI flake
settings.register_profile("lsrkit", deadline=None)
settings.load_profile("lsrkit")

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
def mini_subset_dir(tmp_path_factory) -> Path:
    """A BEIR folder of the packaged subset's first 120 documents and the queries judged on them:
    what tests that ingest through the real encoders need, at a third of the encoding time."""
    return beir_subset(tmp_path_factory.mktemp("data") / "scifact-mini-subset", 120)


def beir_subset(folder: Path, documents: int) -> Path:
    """The packaged subset's first `documents` documents, as a BEIR folder with the queries judged on them."""
    (folder / "qrels").mkdir(parents=True)
    lines = (MINI / "corpus.jsonl").read_text().splitlines()[:documents]
    kept = {json.loads(line)["_id"] for line in lines}
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    qrels = (MINI / "qrels" / "test.tsv").read_text().splitlines()
    judged = [row for row in qrels[1:] if row.split("\t")[1] in kept]
    (folder / "qrels" / "test.tsv").write_text("\n".join([qrels[0], *judged]) + "\n")
    queries = {row.split("\t")[0] for row in judged}
    chosen = [line for line in (MINI / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in queries]
    (folder / "queries.jsonl").write_text("\n".join(chosen) + "\n")
    return folder


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> tuple[dict, Path]:
    """`lsrkit quickstart`, the main job, run once as a user runs it (a subprocess): its JSON result
    and its data folder. Tests that need the packaged subset ingested open a copy of its Edge index
    (the same corpus, encoders and settings) instead of encoding the 400 documents again."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("quickstart")
    data_dir = folder / "qs"
    command = [sys.executable, "-m", "lsrkit.cli", "quickstart", "--json", "--data-dir", str(data_dir)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=folder, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), data_dir


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


def services_required() -> bool:
    """In CI, and under scripts/test.sh (which starts them), a service that does not answer fails
    the tests that need it instead of skipping them."""
    return bool(os.environ.get("CI") or os.environ.get("LSRKIT_REQUIRE_SERVICES"))


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A live OpenSearch. In CI its absence fails the test; elsewhere it skips."""
    url = os.environ.get("LSRKIT_OPENSEARCH_URL", "http://127.0.0.1:9200")
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=3) as response:
            status = json.load(response)["status"]
    except Exception as exc:  # any failure means: no cluster here
        if services_required():
            pytest.fail(f"OpenSearch is required here (CI or scripts/test.sh) and not reachable at {url}: {exc}")
        pytest.skip(f"no OpenSearch at {url} (start it with docker/opensearch-local.sh start)")
    assert status in ("green", "yellow")
    return url


CLUSTER_URL_ENV = "LSRKIT_OPENSEARCH_CLUSTER_URL"  # every node of a multi-node cluster, comma-separated
CLUSTER_SIZES = {"shards": 3, "replicas": 1}  # how the cluster tests spread every index they create


@pytest.fixture(scope="session")
def opensearch_cluster_url() -> str:
    """A live multi-node OpenSearch cluster (docker/opensearch-local.sh start --nodes 3), every
    node named. In CI its absence fails the test; elsewhere it skips."""
    from lsrkit.plugin.opensearch import node_urls

    url = os.environ.get(CLUSTER_URL_ENV, "")
    nodes = node_urls(url) if url else []
    try:
        if len(nodes) < 2:
            raise RuntimeError(f"${CLUSTER_URL_ENV} names {len(nodes)} node(s)")
        with urllib.request.urlopen(f"{nodes[0]}/_cluster/health?wait_for_nodes={len(nodes)}&timeout=30s", timeout=40) as response:
            health = json.load(response)
    except Exception as exc:  # any failure means: no cluster here
        if services_required():
            pytest.fail(f"an OpenSearch cluster is required here (CI or scripts/test.sh) and not reachable at {url!r}: {exc}")
        pytest.skip(f"no OpenSearch cluster at ${CLUSTER_URL_ENV} (docker/opensearch-local.sh start --nodes 3): {exc}")
    assert health["number_of_nodes"] == len(nodes) and health["status"] in ("green", "yellow")
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


QUERIES = [
    "ATP is the energy currency of cells",
    "vitamin D deficiency increases risk of cancer",
    "mutations in tumor suppressor genes",
    "antibiotic resistance in bacteria",
    "stem cells differentiate into neurons",
    "obesity and type 2 diabetes",
    "immune response to viral infection",
    "protein folding in the endoplasmic reticulum",
]


def unique_index(prefix: str):
    import uuid

    from lsrkit.core import IndexSpec

    return IndexSpec(f"{prefix}-{uuid.uuid4().hex[:10]}", multivector_dim=384)


@pytest.fixture(scope="session")
def scenario(sparse_encoder, mv_encoder, mini_docs):
    """One scenario for every backend: 120 real passages encoded once, with a corpus IDF and
    token vectors in the default compact representation."""
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.encoders.idf import DocFreqCounter
    from lsrkit.plugin import EncodedRecord, MultiVectorCodec, default_representation

    docs = mini_docs[:120]
    texts = [f"{d['title']} {d['text']}".strip() for d in docs]
    sparse = sparse_encoder.encode_documents(texts)
    multi = mv_encoder.encode_documents(texts)
    codec = MultiVectorCodec.calibrate(default_representation(), [m.vectors for m in multi])
    records = [
        EncodedRecord(d["_id"], d["_id"], d["text"], s, d["title"], {"parity": "even" if n % 2 == 0 else "odd", "grade": (n % 4) / 2}, codec.encode(m.vectors))
        for n, (d, s, m) in enumerate(zip(docs, sparse, multi))
    ]
    counter = DocFreqCounter(len(sparse_encoder.vocab))
    counter.add(sparse_encoder.model.tokenizer.token_ids(texts, add_special_tokens=False))
    query_encoder = IdfQueryEncoder("splade-tiny", idf=counter.to_table(sparse_encoder.vocab))
    return {"records": records, "query_encoder": query_encoder, "queries": QUERIES, "dim": mv_encoder.dim, "mv_encoder": mv_encoder, "codec": codec}


@pytest.fixture()
def tmp_state(tmp_path: Path) -> Path:
    return tmp_path / "state"
