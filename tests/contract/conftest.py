"""One scenario, every backend: the same encoded passages written to each engine."""

from __future__ import annotations

import uuid

import pytest

from lsrkit.core import IndexSpec
from lsrkit.encoders.idf import DocFreqCounter
from lsrkit.plugin import EncodedRecord

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


@pytest.fixture(scope="session")
def scenario(sparse_encoder, mv_encoder, mini_docs):
    docs = mini_docs[:120]
    texts = [f"{d['title']} {d['text']}".strip() for d in docs]
    sparse = sparse_encoder.encode_documents(texts)
    multi = mv_encoder.encode_documents(texts)
    records = [
        EncodedRecord(d["_id"], d["_id"], d["text"], s, d["title"], {"parity": "even" if n % 2 == 0 else "odd"}, m)
        for n, (d, s, m) in enumerate(zip(docs, sparse, multi))
    ]
    counter = DocFreqCounter(len(sparse_encoder.vocab))
    counter.add(sparse_encoder.model.tokenizer.token_ids(texts, add_special_tokens=False))
    from lsrkit.encoders import IdfQueryEncoder

    query_encoder = IdfQueryEncoder("splade-tiny", idf=counter.to_table(sparse_encoder.vocab))
    return {"records": records, "query_encoder": query_encoder, "queries": QUERIES, "dim": mv_encoder.dim, "mv_encoder": mv_encoder}


def unique_index(prefix: str) -> IndexSpec:
    return IndexSpec(f"{prefix}-{uuid.uuid4().hex[:10]}", multivector_dim=384)


@pytest.fixture()
def edge_backend(tmp_path):
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    backend = QdrantEdgeBackend(tmp_path / "edge")
    yield backend
    backend.close()


@pytest.fixture()
def qdrant_local_backend(tmp_path):
    from lsrkit.plugin.qdrant_server import QdrantBackend, client_from_env

    backend = QdrantBackend(client_from_env(path=":memory:"))
    yield backend
    backend.close()


@pytest.fixture()
def opensearch_backend(opensearch_url, sparse_encoder):
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    yield backend
    backend.close()
