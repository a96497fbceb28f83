"""The ingest job on Qdrant Edge: dead letters, counts, resume after a SIGKILL, idempotent re-runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsrkit.core import Document, IndexSpec
from lsrkit.ingest import IngestJob, read_dead_letters
from lsrkit.ingest.chunking import Chunker
from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

pytestmark = pytest.mark.models


def _corpus_with_bad_records(mini_docs: list[dict], path: Path, n_valid: int) -> tuple[Path, list[dict]]:
    valid = mini_docs[:n_valid]
    lines = [json.dumps(d) for d in valid]
    bad = [
        (3, "{broken json"),
        (7, json.dumps({"title": "no id", "text": "x"})),
        (11, json.dumps({"_id": "empty", "text": "   "})),
        (13, json.dumps({"_id": "nonstring", "text": 42})),
        (17, json.dumps(valid[0])),  # duplicate id
        (19, json.dumps({"_id": "huge", "text": "x" * 5_000_000})),
    ]
    for position, line in bad:
        lines.insert(position, line)
    path.write_text("\n".join(lines) + "\n")
    return path, valid


def _expected_passages(sparse_encoder, docs: list[dict]) -> set[str]:
    from lsrkit.core import Document

    chunker = Chunker(sparse_encoder.model.tokenizer.tokenizer)
    return {p.id for d in docs for p in chunker.split(Document(d["_id"], d["text"], d.get("title", "")))}


def test_dead_letters_and_counts(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    source, valid = _corpus_with_bad_records(mini_docs, tmp_path / "corpus.jsonl", 40)
    backend = QdrantEdgeBackend(tmp_path / "edge")
    pipeline = IngestJob(
        backend,
        IndexSpec("t", multivector_dim=mv_encoder.dim),
        sparse_encoder,
        sparse_encoder.model.tokenizer,
        multivector_encoder=mv_encoder,
        state_dir=tmp_path / "state",
        progress=False,
    )
    summary = pipeline.run(source)
    dead = read_dead_letters(pipeline.dead_letter_path)
    reasons = {d["position"]: d["reason"] for d in dead}
    assert len(dead) == 6 == summary.rejected
    assert "invalid JSON" in reasons["corpus.jsonl:4"]
    assert "missing id" in reasons["corpus.jsonl:8"]
    assert reasons["corpus.jsonl:12"] == "empty text"
    assert "text must be a string" in reasons["corpus.jsonl:14"]
    assert "duplicate id" in reasons["corpus.jsonl:18"]
    assert "limit" in reasons["corpus.jsonl:20"]
    assert {d["id"] for d in dead if d["id"]} == {"empty", "nonstring", valid[0]["_id"], "huge"}
    expected = _expected_passages(sparse_encoder, valid)
    assert summary.documents == len(valid)
    assert backend.count("t") == len(expected) == summary.passages_written
    assert backend.existing_ids("t", sorted(expected)) == expected
    # the IDF table of the corpus is stored with the index and as idf.json
    assert backend.get_meta("t", "idf")["n_docs"] == len(expected)
    # BM25's mean length is the corpus's, measured before the first write and kept with the index
    from lsrkit.plugin.qdrant_bm25 import bm25_for

    passages = [p for d in valid for p in Chunker(sparse_encoder.model.tokenizer.tokenizer).split(Document(d["_id"], d["text"], d.get("title", "")))]
    lengths = bm25_for(IndexSpec("t")).lengths([f"{p.title} {p.text}".strip() for p in passages])
    assert backend.spec("t").bm25_avg_len == pytest.approx(sum(lengths) / len(lengths), abs=0.01)
    assert json.loads(Path(summary.idf_path).read_text())["cells"] > 0
    # a second run is idempotent: same ids, same count
    again = pipeline.run(source)
    assert backend.count("t") == len(expected) and again.rejected == 6
    backend.close()


def _spawn_ingest(source: Path, data_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "lsrkit.cli",
        "ingest",
        str(source),
        "--backend",
        "edge",
        "--index",
        "k",
        "--data-dir",
        str(data_dir),
        "--write-batch",
        "8",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_resume_after_sigkill_neither_skips_nor_duplicates(tmp_path, sparse_encoder, mini_docs):
    source, valid = _corpus_with_bad_records(mini_docs, tmp_path / "corpus.jsonl", 60)
    data_dir = tmp_path / "data"
    checkpoint = data_dir / "state" / "k" / "checkpoint.json"
    process = _spawn_ingest(source, data_dir)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if checkpoint.is_file() and json.loads(checkpoint.read_text())["next_ordinal"] >= 16:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the job finished before it could be killed: " + process.stdout.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(checkpoint.read_text())
    assert not killed_at["done"] and 0 < killed_at["next_ordinal"] < 66

    resumed = _spawn_ingest(source, data_dir, "--resume", "--json")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out.decode()[-3000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["resumed_from"] == killed_at["next_ordinal"]

    backend = QdrantEdgeBackend(data_dir / "edge")  # the killed shard reopens cleanly
    expected = _expected_passages(sparse_encoder, valid)
    assert backend.count("k") == len(expected)
    assert backend.existing_ids("k", sorted(expected)) == expected
    dead = read_dead_letters(data_dir / "state" / "k" / "dead-letter.jsonl")
    assert len(dead) == 6 and len({d["position"] for d in dead}) == 6  # each bad record reported once
    ids = (data_dir / "state" / "k" / "ids.log").read_text().split()
    assert len(ids) == len(set(ids)) == len(valid)
    backend.close()


class _FailsOn:
    """The multivector encoder, refusing any batch that holds a text containing `marker`."""

    def __init__(self, encoder, marker: str) -> None:
        self.encoder, self.marker = encoder, marker
        self.fingerprint, self.manifest = encoder.fingerprint, encoder.manifest

    def encode_documents(self, texts):
        from lsrkit.core.errors import EncoderError

        if any(self.marker in t for t in texts):
            raise EncoderError(f"refused a text containing {self.marker!r}")
        return self.encoder.encode_documents(texts)


def test_a_passage_the_multivector_encoder_refuses_leaves_the_others_aligned(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    """The sparse encoder accepts the bad passage, the multivector encoder refuses it: every other
    passage of the batch must still be written with its own vectors, the bad one dead-lettered."""
    from lsrkit.core import Document
    from lsrkit.ingest.job import _Unit

    docs = [Document(d["_id"], d["text"][:300], d["title"]) for d in mini_docs[:6]]
    docs[2] = Document("bad", "this passage holds the POISON marker", "")
    pipeline = IngestJob(
        QdrantEdgeBackend(tmp_path / "edge"),
        IndexSpec("t", multivector_dim=mv_encoder.dim),
        sparse_encoder,
        sparse_encoder.model.tokenizer,
        multivector_encoder=_FailsOn(mv_encoder, "POISON"),
        state_dir=tmp_path / "state",
        progress=False,
    )
    pipeline.backend.ensure_index(pipeline.spec)
    unit = _Unit(0, len(docs), documents=docs)
    pipeline._encode(unit)
    assert [r.id for r in unit.records] == [f"{d.id}#0" for d in docs if d.id != "bad"]
    assert [e.record_id for e, _ in unit.rejects] == ["bad#0"]
    for record, doc in zip(unit.records, [d for d in docs if d.id != "bad"]):
        assert record.sparse == sparse_encoder.encode_documents([doc.full_text])[0]
        alone = pipeline.codec.codec.encode(mv_encoder.encode_documents([doc.full_text])[0].vectors)
        assert record.multivector == alone


def test_the_codec_is_calibrated_once_and_kept_with_the_index(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    """The first batch of a new index calibrates the token-vector codec and stores it with the
    index; re-runs and later jobs reuse it, so every stored vector decodes with one codec."""
    from lsrkit.core import IndexExistsError
    from lsrkit.plugin import CODEC_META, MultiVectorCodec

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps(d) + "\n" for d in mini_docs[:12]))
    second.write_text("".join(json.dumps(d) + "\n" for d in mini_docs[12:20]))
    backend = QdrantEdgeBackend(tmp_path / "edge")
    spec = IndexSpec("c", multivector_dim=mv_encoder.dim, multivector_representation="pool1-2bit")
    assert spec.multivector_representation == "2bit"  # one layout, one name

    def job(source: Path, state: str) -> IngestJob:
        return IngestJob(
            backend, spec, sparse_encoder, sparse_encoder.model.tokenizer, multivector_encoder=mv_encoder, state_dir=tmp_path / state, progress=False
        )

    job(first, "s1").run(first)
    stored = backend.get_meta("c", CODEC_META)
    assert stored["representation"] == "2bit" and len(stored["center"]) == mv_encoder.dim
    job(first, "s1").run(first)  # the same job again
    job(second, "s2").run(second)  # another source into the same index
    assert backend.get_meta("c", CODEC_META) == stored
    codec = MultiVectorCodec.from_meta(stored)
    passages = sorted(_expected_passages(sparse_encoder, mini_docs[:20]))
    vectors = backend.fetch_multivectors("c", passages)
    assert len(vectors) == len(passages) and all(codec.decode(v).dim == mv_encoder.dim for v in vectors.values())
    with pytest.raises(IndexExistsError):
        backend.ensure_index(IndexSpec("c", multivector_dim=mv_encoder.dim, multivector_representation="1bit"))
    backend.close()


@pytest.mark.parametrize(("name", "table"), [("pool1-res2bit", "centroids"), ("pool1-pq1bit", "codebooks")])
def test_an_index_of_residual_or_product_codes_stores_its_tables_and_reranks_from_them(tmp_path, sparse_encoder, mv_encoder, mini_docs, name, table):
    """A residual (product) representation end to end on Qdrant Edge: the first batch's k-means
    centroids (codebooks) are kept with the index, every stored passage decodes against them, and
    the rerank scores the codes as it scores their decoded float vectors."""
    import numpy as np

    from lsrkit.core import RerankSettings
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.plugin import CODEC_META, MultiVectorCodec, SearchPipeline
    from lsrkit.plugin.codec import ProductCodes, ResidualCodes
    from lsrkit.plugin.index_meta import load_index_idf
    from lsrkit.plugin.rerank import maxsim_scores

    source = tmp_path / "a.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in mini_docs[:16]))
    backend = QdrantEdgeBackend(tmp_path / "edge")
    spec = IndexSpec("r", multivector_dim=mv_encoder.dim, multivector_representation=name)
    short = name.removeprefix("pool1-")
    assert spec.multivector_representation == short
    IngestJob(backend, spec, sparse_encoder, sparse_encoder.model.tokenizer, multivector_encoder=mv_encoder, state_dir=tmp_path / "s", progress=False).run(
        source
    )
    stored = backend.get_meta("r", CODEC_META)
    assert stored["representation"] == short and isinstance(stored[table], str)
    codec = MultiVectorCodec.from_meta(stored)
    kind = ResidualCodes if table == "centroids" else ProductCodes
    assert getattr(codec, table) is not None
    passages = sorted(_expected_passages(sparse_encoder, mini_docs[:16]))
    vectors = backend.fetch_multivectors("r", passages)
    decoded = {p: codec.decode(v) for p, v in vectors.items()}
    assert len(decoded) == len(passages) and all(isinstance(d, kind) and d.dim == mv_encoder.dim for d in decoded.values())
    query = mv_encoder.encode_queries([mini_docs[3]["title"]])[0].vectors
    codes = [decoded[p] for p in passages]
    np.testing.assert_allclose(maxsim_scores(query, codes), maxsim_scores(query, [c.dequantize() for c in codes]), atol=0.02 * len(query) / 9)
    encoder = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, "r", sparse_encoder.vocab))
    pipeline = SearchPipeline(backend, "r", encoder, multivector_encoder=mv_encoder, rerank=True, settings=RerankSettings(kappa=20, k=5))
    result = pipeline.search(mini_docs[3]["title"])
    assert result.hits[0].id == mini_docs[3]["_id"] and "maxsim" in result.hits[0].stage_scores
    backend.close()
