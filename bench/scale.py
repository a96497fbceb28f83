"""`lsrkit bench scale`: what every pipeline costs as the corpus grows (10k, 100k, 1M passages).

Method
------
A corpus of N passages with the statistics of a real BEIR corpus (`--dataset`), built without
running the encoders N times:

1. **Source sample.** The first documents of the real corpus, chunked as ingest chunks them
   (254-token windows, 32 overlap), up to `sample` passages (whole documents), are encoded once
   with the bundled document encoders (`document_encoders(ModelChoice())`). Their token vectors
   are turned into codes by the default codec (`MultiVectorCodec.calibrate(default_representation(),
   …)`, calibrated as ingest calibrates it: on the passages of the first write batch of
   documents). The encodings are cached under `<data-dir>/bench-scale/<key>/`, the key hashing
   the encoders' fingerprints and weights, the codec, the corpus file and the sample size, so a
   rerun skips this step.
2. **Sparse vectors.** Each synthetic passage takes a number of terms k drawn from the real
   passages' term counts (nnz), and k distinct terms by successive sampling (draws with
   replacement ∝ p_t, the first k distinct kept: sampling without replacement). p is calibrated
   so that each term's expected document frequency equals its real one, f_t = df_t / n: under
   successive sampling a term is in a passage of k terms with probability ≈ 1 − exp(−p_t·λ_k)
   (Rosén), so p and λ are solved (alternating Newton steps) for Σ_t (1 − e^(−p_t λ_k)) = k for
   every k and E_k[1 − e^(−p_t λ_k)] = f_t for every term. Plain sampling ∝ df cannot match the
   head of the curve: SPLADE puts its heaviest terms in 60–90 % of the passages, more than a
   proportional k·f_t/E[k] allows for short passages, and fewer for long ones. Each term's weight
   is one of that term's real observed weights, drawn uniformly.
3. **BM25 text.** A passage's length in words (whitespace-separated, title included) is a real
   passage's; its words are drawn independently from the real corpus' word unigram distribution.
4. **Token-vector codes.** The real codes of the real passages, reused in turn (passage i gets
   those of real passage i mod n).
5. **Documents.** Passages are grouped into documents with the real sample's passages-per-document
   distribution (ids `syn<n>#<j>`, as the chunker names them), so the first stage's collapse on
   the document does the work it does on the real corpus.

Everything is drawn from one numpy generator (`seed`), as one stream: the corpus at 10k is the
first 10k passages of the one at 100k. Passages go straight through the adapter
(`Backend.ensure_index(IndexSpec(...))`, then `Backend.write` in batches of `write_batch`, ingest's
default bulk), with the meta documents an `Index` reads: the manifest of the bundled encoders, the
codec (`CODEC_META`) and the corpus statistics (`STATISTICS_META`: the `DocFreqCounter` over the
tokenizer ids of each synthetic passage's text, as ingest counts them, so the inference-free query
IDF is the synthetic corpus'). On Qdrant Edge the spec carries `bm25_avg_len`, the mean of the
adapter's `text_lengths` over the first synthetic passages.

Each size is built once, by appending to the previous one, then measured: write throughput
(passages/s over the time spent in `Backend.write` alone: not the synthesis, nor the statistics),
index bytes per passage (`Backend.disk_bytes` after a flush; OpenSearch: a refresh and a Lucene
flush, no force-merge), peak resident memory sampled every 0.2 s during the size's build and
queries (the engine: OpenSearch's JVM, found by its listening port; Qdrant Edge runs in-process,
so its engine figure is the lsrkit process'), and p50/p99 end-to-end latency (query encoding,
engine round trips, rerank, hydration) of `bm25`, `sparse-idf`, `sparse-idf+rerank` and
`hybrid+rerank` at k=10 with their tuned settings (`Index(...).pipeline(name)`), over the
dataset's real test queries, after a warm-up pass of every pipeline, the pipelines interleaved
query by query; `ratio_vs_bm25` is a pipeline's p50 over BM25's p50 on the same engine and size.
The result's `df_curve` compares the synthetic corpus' document-frequency curve with the source's
(the function `df_curve`: the top 1000 terms' df as fractions of each corpus, by rank and term by
term), for the sparse terms and, as `text_words`, for the BM25 text's words.

Limits
------
- Cost, not quality: the synthetic passages are not about anything, no nDCG is measured.
- The vocabulary is the sample's: the terms (and words) of ~1,000 real passages, with their
  frequencies as fractions of the corpus. A real corpus of 1M passages has a longer tail (more
  distinct terms, each rare): its posting lists are fewer per query term seen here and its head
  terms' lists the same length. The first stage's work is set by the head, which is reproduced.
- Terms are independent within a passage (no topical co-occurrence): the query terms of a real
  query co-occur in real passages more than here, so top scores are less separated; engines that
  prune (WAND / block-max) prune less here than on real text. Exact scoring is not affected.
- A passage's sparse vector, its text and its codes are unrelated to each other; the hybrid
  runs overlap less than on real passages.
- Words drawn independently are not bursty: a word's occurrences are spread over more passages
  than in real text, so BM25's posting lists of mid-frequency words are longer than real ones
  (`df_curve.text_words` measures how much): BM25 is, if anything, slower here than on real text
  and the ratios to it flattered by as much.
- The codes are those of n real passages reused: the sizes and the reads are real, a cache keyed
  by content would see only n distinct ones (lsrkit's code cache is keyed by passage).
- The timed pass repeats the warm-up pass' queries: OpenSearch's code cache holds their candidates'
  codes (300 queries × κ=100 × ~3.3 KB ≈ 100 MB, inside its 256 MB default), so the rerank
  figures are the cache-hit case. Traffic it has not seen misses more once the index's codes
  outgrow the cache (~3.3 KB a passage: past ~75k passages); `lsrkit bench query` measures that.
- Resident memory is VmRSS: file pages the engine has mapped count too (the kernel may evict them).
- One machine, one run: the figures carry the noise of whatever else ran (see `machine`); two
  runs of the same 100k Edge build differed by up to ~20 % in p50.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from lsrkit.bench.common import machine, time_pipelines

SCALE_PIPELINES = ("bm25", "sparse-idf", "sparse-idf+rerank", "hybrid+rerank")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_SAMPLE = 1000
CACHE_VERSION = "1"
BLOCK = 4096  # passages synthesized at a time (then written in write_batch bulks)
DF_RANKS = 1000  # how many of the top terms the df curve compares

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _log(message: str) -> None:
    print(f"[bench scale] {message}", file=sys.stderr, flush=True)


# -- the source sample: real passages, encoded once ------------------------------------------------


@dataclass
class SourceSample:
    """Real passages' encodings, flattened: passage i's sparse terms are
    sparse_ids[sparse_offsets[i]:sparse_offsets[i+1]], its codes codes[code_offsets[i]:…], its
    words word_ids[word_offsets[i]:…] (indices into `words`)."""

    sparse_ids: npt.NDArray[np.int32]
    sparse_weights: npt.NDArray[np.float32]
    sparse_offsets: IntArray
    codes: npt.NDArray[np.uint8]
    code_offsets: IntArray
    word_ids: IntArray
    word_offsets: IntArray
    passages_per_doc: IntArray
    words: list[str]
    codec: dict[str, Any]
    documents: int

    @property
    def passages(self) -> int:
        return len(self.sparse_offsets) - 1

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in ARRAY_FIELDS}
        np.savez(folder / "sample.tmp.npz", **arrays)  # type: ignore[arg-type]
        (folder / "sample.json").write_text(json.dumps({"words": self.words, "codec": self.codec, "documents": self.documents}), encoding="utf-8")
        os.replace(folder / "sample.tmp.npz", folder / "sample.npz")  # last: its presence means complete

    @classmethod
    def load(cls, folder: Path) -> SourceSample | None:
        if not (folder / "sample.npz").is_file() or not (folder / "sample.json").is_file():
            return None
        meta = json.loads((folder / "sample.json").read_text(encoding="utf-8"))
        with np.load(folder / "sample.npz") as arrays:
            loaded = {k: arrays[k] for k in ARRAY_FIELDS}
        return cls(**loaded, words=meta["words"], codec=meta["codec"], documents=int(meta["documents"]))


ARRAY_FIELDS = ("sparse_ids", "sparse_weights", "sparse_offsets", "codes", "code_offsets", "word_ids", "word_offsets", "passages_per_doc")


def _offsets(lengths: Sequence[int]) -> IntArray:
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def sample_key(dataset: Path, sample: int, sparse: Any, multivector: Any, representation: str) -> str:
    """What the cached encodings depend on: the encoders, the codec, the corpus file, the sample."""
    corpus = Path(dataset) / "corpus.jsonl"
    stat = corpus.stat()
    parts = {
        "version": CACHE_VERSION,
        "sparse": [sparse.fingerprint, sparse.manifest.get("weights")],
        "multivector": [multivector.fingerprint, multivector.manifest.get("weights")],
        "representation": representation,
        "corpus": [str(corpus.resolve()), stat.st_size, int(stat.st_mtime)],
        "sample": sample,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def encode_sample(dataset: Path, sample: int, sparse: Any, multivector: Any, representation: str, log: Callable[[str], None] = _log) -> SourceSample:
    """Chunk the first documents of the corpus (whole documents, up to `sample` passages) and
    encode them once: sparse vectors, token-vector codes, words."""
    from lsrkit.core.config import BatchPolicy
    from lsrkit.core.types import Document, passage_text
    from lsrkit.ingest.chunking import Chunker
    from lsrkit.plugin.codec import MultiVectorCodec

    chunker = Chunker(sparse.model.tokenizer.tokenizer)  # the ingest job's window and overlap
    passages: list[Any] = []
    per_doc: list[int] = []
    first_batch = 0  # passages of the first write batch of documents: what ingest calibrates the codec on
    with (Path(dataset) / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if len(passages) >= sample:
                break
            raw = json.loads(line)
            split = chunker.split(Document(str(raw["_id"]), str(raw.get("text") or ""), str(raw.get("title") or "")))
            passages.extend(split)
            per_doc.append(len(split))
            if len(per_doc) == BatchPolicy().write_batch:
                first_batch = len(passages)
    texts = [passage_text(p.title, p.text) for p in passages]
    started = time.perf_counter()
    vectors = sparse.encode_documents(texts)
    multis = multivector.encode_documents(texts)
    codec = MultiVectorCodec.calibrate(representation, [m.vectors for m in multis[: first_batch or len(multis)]])
    codes = [codec.encode(m.vectors) for m in multis]
    log(f"encoded {len(texts)} real passages of {len(per_doc)} documents in {time.perf_counter() - started:.0f} s")
    vocabulary: dict[str, int] = {}
    word_ids = [vocabulary.setdefault(w, len(vocabulary)) for text in texts for w in text.split()]
    return SourceSample(
        sparse_ids=np.concatenate([v.ids for v in vectors]).astype(np.int32),
        sparse_weights=np.concatenate([v.weights for v in vectors]).astype(np.float32),
        sparse_offsets=_offsets([len(v) for v in vectors]),
        codes=np.frombuffer(b"".join(codes), dtype=np.uint8).copy(),
        code_offsets=_offsets([len(c) for c in codes]),
        word_ids=np.asarray(word_ids, dtype=np.int64),
        word_offsets=_offsets([len(text.split()) for text in texts]),
        passages_per_doc=np.asarray(per_doc, dtype=np.int64),
        words=list(vocabulary),
        codec=codec.to_meta(),
        documents=len(per_doc),
    )


def source_sample(
    dataset: Path, sample: int, sparse: Any, multivector: Any, representation: str, cache: Path, log: Callable[[str], None] = _log
) -> SourceSample:
    """The encoded sample, from the cache when the same encoders encoded it before."""
    folder = cache / sample_key(dataset, sample, sparse, multivector, representation)
    cached = SourceSample.load(folder)
    if cached is not None:
        log(f"source sample from the cache {folder}")
        return cached
    encoded = encode_sample(dataset, sample, sparse, multivector, representation, log)
    encoded.save(folder)
    return encoded


# -- synthesis ---------------------------------------------------------------------------------------


def calibrate_draws(f: FloatArray, k_values: IntArray, *, bins: int = 48, rounds: int = 200) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw probabilities p (Σ p = 1) and, per bin of passage sizes, the number of draws λ such
    that successive sampling of k distinct terms puts term t in a passage with probability
    ≈ 1 − exp(−p_t λ_k) and in a fraction f_t of all passages. Returns (p, bin sizes k_b, λ_b)."""
    quantiles = np.quantile(k_values, np.linspace(0, 1, bins + 1))
    edges = np.unique(np.round(quantiles))
    which = np.clip(np.searchsorted(edges, k_values, side="right") - 1, 0, len(edges) - 2)
    weight = np.bincount(which, minlength=len(edges) - 1).astype(np.float64)
    ks = np.bincount(which, weights=k_values.astype(np.float64), minlength=len(edges) - 1)
    keep = weight > 0
    weight, ks = weight[keep] / weight[keep].sum(), ks[keep] / weight[keep]
    target = np.clip(f, 1e-9, 1 - 1e-6) * (ks @ weight) / f.sum()  # Σ f_t = E[k] exactly
    p = target / target.sum()
    lam = ks.copy()
    for _ in range(rounds):
        # Newton on concave increasing equations lands at or below the root, then climbs to it
        # (a step is bounded below so that a far start cannot land at or under zero)
        for _ in range(8):  # λ_b: Σ_t (1 − e^(−p_t λ)) = k_b
            e = np.exp(-np.outer(lam, p))
            lam = np.maximum(lam - ((1 - e).sum(axis=1) - ks) / np.maximum((e * p).sum(axis=1), 1e-300), lam / 4)
        for _ in range(8):  # p_t: Σ_b w_b (1 − e^(−p_t λ_b)) = f_t
            e = np.exp(-np.outer(p, lam))
            p = np.maximum(p - ((1 - e) @ weight - target) / np.maximum((e * lam) @ weight, 1e-300), p / 4)
        scale = p.sum()
        p, lam = p / scale, lam * scale
        achieved = (1 - np.exp(-np.outer(p, lam))) @ weight
        if np.max(np.abs(achieved - target) / target) < 1e-4:
            break
    return p, ks, lam


@dataclass
class Block:
    """Synthetic passages ready to write, and what the statistics need of them."""

    records: list[Any]
    term_counts: IntArray  # per source term: passages of this block holding it
    token_df: IntArray  # per tokenizer id: passages of this block whose text holds it
    word_counts: IntArray  # per word: passages of this block holding it


class Synthesizer:
    """An endless deterministic stream of synthetic passages with the source sample's statistics."""

    def __init__(self, sample: SourceSample, word_tokens: Sequence[Sequence[int]], vocab_size: int, max_tokens: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        n = sample.passages
        self.terms, inverse = np.unique(sample.sparse_ids, return_inverse=True)
        self.source_df = np.bincount(inverse, minlength=len(self.terms)).astype(np.int64)  # a passage holds a term once
        order = np.argsort(inverse, kind="stable")
        self.term_weights = sample.sparse_weights[order]
        self.term_start = _offsets(self.source_df.tolist())[:-1]
        self.nnz = np.diff(sample.sparse_offsets)
        p, self.k_bins, self.lam_bins = calibrate_draws(self.source_df / n, self.nnz)
        self.cdf = np.cumsum(p)
        self.cdf /= self.cdf[-1]
        # words
        self.words = np.asarray(sample.words, dtype=object)
        counts = np.bincount(sample.word_ids, minlength=len(sample.words)).astype(np.float64)
        self.word_cdf = np.cumsum(counts) / counts.sum()
        self.word_lengths = np.diff(sample.word_offsets)
        self.source_word_df = _passage_df(sample.word_ids, np.repeat(np.arange(n), self.word_lengths), len(sample.words))
        # each word's tokenizer ids: a text's ids are its words' (BERT splits on whitespace first)
        self.word_token_offsets = _offsets([len(t) for t in word_tokens])
        self.word_token_ids = np.asarray([i for t in word_tokens for i in t], dtype=np.int64)
        self.vocab_size, self.max_tokens = vocab_size, max_tokens
        # codes of the real passages that have some, reused in turn
        code_lengths = np.diff(sample.code_offsets)
        self.code_blobs = [sample.codes[a:b].tobytes() for a, b, n_ in zip(sample.code_offsets[:-1], sample.code_offsets[1:], code_lengths) if n_ > 0]
        self.per_doc = sample.passages_per_doc
        self.source_passages = n
        self.produced = 0
        self.documents = 0
        self._open_doc: tuple[str, int, int] | None = None  # (doc id, passages it has, passages written)

    # -- one block ---------------------------------------------------------------------------------
    def block(self, count: int) -> Block:
        from lsrkit.core.types import SparseVector
        from lsrkit.ingest.chunking import passage_id
        from lsrkit.plugin.base import EncodedRecord

        rng = self.rng
        ks = self.nnz[rng.integers(0, len(self.nnz), count)]
        term_rows, term_ids = self._terms(ks)
        weights = self._weights(term_ids)
        lengths = self.word_lengths[rng.integers(0, len(self.word_lengths), count)]
        word_ids = np.searchsorted(self.word_cdf, rng.random(int(lengths.sum())), side="right").clip(0, len(self.words) - 1)
        word_rows = np.repeat(np.arange(count), lengths)
        words = self.words[word_ids].tolist()
        bounds = _offsets(ks.tolist())
        text_bounds = _offsets(lengths.tolist())
        records = []
        token_ids = self.terms[term_ids].astype(np.int32)
        for i in range(count):
            doc_id, j = self._next_passage()
            a, b = bounds[i], bounds[i + 1]
            records.append(
                EncodedRecord(
                    id=passage_id(doc_id, j),
                    doc_id=doc_id,
                    text=" ".join(words[text_bounds[i] : text_bounds[i + 1]]),
                    sparse=SparseVector(token_ids[a:b], weights[a:b]),
                    multivector=self.code_blobs[(self.produced + i) % len(self.code_blobs)],
                )
            )
        self.produced += count
        return Block(
            records=records,
            term_counts=np.bincount(term_ids, minlength=len(self.terms)).astype(np.int64),
            token_df=self._token_df(word_ids, word_rows, count),
            word_counts=_passage_df(word_ids, word_rows, len(self.words)),
        )

    def _next_passage(self) -> tuple[str, int]:
        if self._open_doc is None or self._open_doc[2] >= self._open_doc[1]:
            self._open_doc = (f"syn{self.documents}", int(self.per_doc[self.rng.integers(0, len(self.per_doc))]), 0)
            self.documents += 1
        doc_id, size, done = self._open_doc
        self._open_doc = (doc_id, size, done + 1)
        return doc_id, done

    def _terms(self, ks: IntArray) -> tuple[IntArray, IntArray]:
        """k distinct terms per passage by successive sampling: draws ∝ p, the first k distinct
        kept; sorted by passage, then term."""
        count = len(ks)
        rows_out: list[IntArray] = []
        terms_out: list[IntArray] = []
        todo = np.arange(count)
        factor = 1.3
        while todo.size:
            lam = np.interp(ks[todo], self.k_bins, self.lam_bins)
            draws = np.ceil(factor * lam + 4 * np.sqrt(lam) + 8).astype(np.int64)
            rows = np.repeat(np.arange(todo.size), draws)
            picked = np.searchsorted(self.cdf, self.rng.random(int(draws.sum())), side="right").clip(0, len(self.cdf) - 1)
            keys = rows * len(self.cdf) + picked
            unique, first = np.unique(keys, return_index=True)
            urows = unique // len(self.cdf)
            order = np.lexsort((first, urows))  # each passage's distinct terms in the order drawn
            urows, uterms = urows[order], (unique % len(self.cdf))[order]
            starts = np.searchsorted(urows, np.arange(todo.size))
            rank = np.arange(urows.size) - starts[urows]
            enough = np.bincount(urows, minlength=todo.size) >= ks[todo]
            keep = (rank < ks[todo][urows]) & enough[urows]
            rows_out.append(todo[urows[keep]])
            terms_out.append(uterms[keep])
            todo, factor = todo[~enough], factor * 1.5
        rows_all, terms_all = np.concatenate(rows_out), np.concatenate(terms_out)
        order = np.lexsort((terms_all, rows_all))
        return rows_all[order], terms_all[order]

    def _weights(self, term_ids: IntArray) -> npt.NDArray[np.float32]:
        """Each term's weight: one of its real observed weights."""
        pick = self.term_start[term_ids] + np.floor(self.rng.random(term_ids.size) * self.source_df[term_ids]).astype(np.int64)
        return self.term_weights[pick]

    def _token_df(self, word_ids: IntArray, word_rows: IntArray, count: int) -> IntArray:
        """Per tokenizer id, how many of the block's passages hold it: each text's ids are its
        words' ids in order, cut at the tokenizer's max length (what ingest's statistics count)."""
        lengths = self.word_token_offsets[word_ids + 1] - self.word_token_offsets[word_ids]
        rows = np.repeat(word_rows, lengths)
        starts = np.repeat(self.word_token_offsets[word_ids], lengths)
        within = np.arange(int(lengths.sum())) - np.repeat(_offsets(lengths.tolist())[:-1], lengths)
        ids = self.word_token_ids[starts + within]
        first = np.searchsorted(rows, np.arange(count))
        position = np.arange(rows.size) - first[rows]
        keep = position < self.max_tokens
        return _passage_df(ids[keep], rows[keep], self.vocab_size)


def _passage_df(ids: IntArray, rows: IntArray, size: int) -> IntArray:
    """Per id, the number of distinct rows (passages) it occurs in."""
    if ids.size == 0:
        return np.zeros(size, dtype=np.int64)
    unique = np.unique(rows.astype(np.int64) * size + ids.astype(np.int64))
    return np.bincount(unique % size, minlength=size).astype(np.int64)


def df_curve(
    source_df: Sequence[int] | IntArray, source_n: int, synthetic_df: Sequence[int] | IntArray, synthetic_n: int, ranks: int = DF_RANKS
) -> dict[str, Any]:
    """The synthetic corpus' document-frequency curve against the source's: the df of the top
    `ranks` terms, by rank, as fractions of each corpus (both sorted: the curve's shape), and
    the same terms' fractions term by term (the source's top terms: the same terms are the
    frequent ones)."""
    src = np.asarray(source_df, dtype=np.float64) / max(source_n, 1)
    syn = np.asarray(synthetic_df, dtype=np.float64) / max(synthetic_n, 1)
    ranks = min(ranks, int((src > 0).sum()))
    src_curve = np.sort(src)[::-1][:ranks]
    syn_curve = np.sort(syn)[::-1][:ranks]
    rel = np.abs(syn_curve - src_curve) / src_curve
    top = np.argsort(-src, kind="stable")[:ranks]
    termwise = np.abs(syn[top] - src[top]) / src[top]
    return {
        "ranks": ranks,
        "source_passages": int(source_n),
        "synthetic_passages": int(synthetic_n),
        "source_top10": [round(float(x), 4) for x in src_curve[:10]],
        "synthetic_top10": [round(float(x), 4) for x in syn_curve[:10]],
        "source_at_rank_100_1000": [round(float(src_curve[min(r, ranks) - 1]), 5) for r in (100, 1000)],
        "synthetic_at_rank_100_1000": [round(float(syn_curve[min(r, ranks) - 1]), 5) for r in (100, 1000)],
        "max_rel_error": round(float(rel.max()), 4),
        "mean_rel_error": round(float(rel.mean()), 4),
        "max_rel_error_top100": round(float(rel[:100].max()), 4),
        "termwise_mean_rel_error": round(float(termwise.mean()), 4),
        "termwise_log_correlation": round(_correlation(np.log(src[top]), np.log(np.maximum(syn[top], 1e-9))), 4),
    }


def _correlation(a: FloatArray, b: FloatArray) -> float:
    """Pearson's r (0 when either side is constant: nothing to correlate)."""
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


# -- memory --------------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float | None:
    """A process's resident memory (VmRSS), in MB (None when it is gone or unreadable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+)\s*kB", status)
    return int(match.group(1)) / 1024 if match else None


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (from /proc: its socket's inode among the
    processes' file descriptors); else the pid file of docker/opensearch-local.sh."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if inodes and proc.name.isdigit():
            try:
                if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
            except OSError:
                continue
    roots = [os.environ.get("LSRKIT_OPENSEARCH_HOME", ""), "/var/cache/lsrkit-opensearch", str(Path.home() / ".cache/lsrkit/opensearch")]
    for root in filter(None, roots):
        pid_file = Path(root) / f"run-{port}" / "opensearch.pid"
        if pid_file.is_file():
            try:
                return int(pid_file.read_text().strip())
            except ValueError:
                continue
    return None


class PeakMemory:
    """Peak RSS of this process and of the engine's, sampled in a thread while open."""

    def __init__(self, engine_pid: int | None, every_s: float = 0.2) -> None:
        self.engine_pid, self.every_s = engine_pid, every_s
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lsrkit-bench-rss", daemon=True)

    def _sample(self) -> None:
        for name, pid in (("lsrkit", "self"), ("engine", self.engine_pid)):
            value = rss_mb(pid) if pid is not None else None
            if value is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), value)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# -- the run -------------------------------------------------------------------------------------


def parse_sizes(sizes: str | Sequence[int]) -> list[int]:
    values = [int(s) for s in (sizes.split(",") if isinstance(sizes, str) else sizes) if str(s).strip()]
    from lsrkit.core.errors import ConfigError

    if not values or any(v < 1 for v in values) or values != sorted(set(values)):
        raise ConfigError(f"--sizes must be increasing positive passage counts, got {sizes!r}")
    return values


def _batches(records: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _settle(backend: Any, index: str) -> None:
    """What was written is searchable and on disk before it is measured."""
    backend.flush(index)
    client = getattr(backend, "client", None)
    if backend.name == "opensearch" and client is not None:
        client.indices.flush(index=index)


def _percentiles(samples: Sequence[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def measure_queries(pipelines: dict[str, Any], queries: Sequence[str], stages: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """p50/p99 of each pipeline at k=10: a warm-up pass of every pipeline over every query, then
    one timed pass with the pipelines interleaved query by query. `stages`, when given, receives
    each pipeline's p50 per stage (encode, first_stage, fetch, rerank, hydrate)."""
    samples, laps = time_pipelines(pipelines, list(queries))
    if stages is not None:
        stages.update({name: {stage: round(float(np.percentile(v, 50)), 2) for stage, v in by_stage.items()} for name, by_stage in laps.items()})
    p50_bm25 = _percentiles(samples["bm25"])[0]
    out: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        p50, p99 = _percentiles(values)
        entry = {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}
        if name != "bm25":
            entry.update(ratio_vs_bm25=round(p50 / p50_bm25, 3), p99_over_p50=round(p99 / p50, 3))
        out[name] = entry
    return out


def run(
    *,
    dataset: Path,
    backend_kind: str = "edge",
    sizes: str | Sequence[int] = DEFAULT_SIZES,
    data_dir: Path = Path(".lsrkit"),
    url: str | None = None,
    queries: int = 300,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    write_batch: int | None = None,
    keep_index: bool = False,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    from lsrkit.core.config import BatchPolicy, IndexSpec, default_representation
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions, ModelChoice, document_encoders, open_backend
    from lsrkit.index import Index
    from lsrkit.ingest.manifest import encoders_manifest
    from lsrkit.plugin.index_meta import MANIFEST_META, STATISTICS_META
    from lsrkit.plugin.pipeline import CODEC_META

    targets = parse_sizes(sizes)
    write_batch = write_batch or BatchPolicy().write_batch
    data = load_beir(dataset)
    texts = list(data.queries.values())[:queries]
    data_dir = Path(data_dir)
    sparse, multivector = document_encoders(ModelChoice())
    assert multivector is not None
    tokenizer = sparse.model.tokenizer
    src = source_sample(dataset, sample, sparse, multivector, default_representation(), data_dir / "bench-scale", log)
    synth = Synthesizer(src, tokenizer.token_ids(src.words, add_special_tokens=False), len(tokenizer.vocab), tokenizer.max_length, seed=seed)

    backend = open_backend(BackendOptions(backend_kind, data_dir=data_dir, url=url))  # type: ignore[arg-type]
    engine_pid = _engine_pid(backend.name, url)
    name = f"bench-scale-{default_index(dataset)}"[:120]
    spec = IndexSpec(name=name, multivector_dim=multivector.dim, multivector_representation=default_representation())
    first = synth.block(min(BLOCK, targets[0]))
    if backend.needs_bm25_mean_length:
        lengths = backend.text_lengths(spec, [r.full_text for r in first.records])
        spec = IndexSpec(**{**spec.__dict__, "bm25_avg_len": round(sum(lengths) / len(lengths), 2)})
    backend.ensure_index(spec, recreate=True)
    # before the first write: OpenSearch keys rank_features by the token strings of the manifest's model
    backend.put_meta(name, MANIFEST_META, encoders_manifest(sparse.manifest, multivector.manifest, spec))
    backend.put_meta(name, CODEC_META, src.codec)

    term_df = np.zeros(len(synth.terms), dtype=np.int64)
    token_df = np.zeros(len(tokenizer.vocab), dtype=np.int64)
    word_df = np.zeros(len(src.words), dtype=np.int64)
    written = 0
    pending: Block | None = first
    results: dict[str, Any] = {}
    try:
        for version, target in enumerate(targets, 1):
            started, seconds = time.perf_counter(), 0.0
            engine = PeakMemory(engine_pid)
            with engine:
                step = 0
                while written < target:
                    block = pending if pending is not None else synth.block(min(BLOCK, target - written))
                    pending = None
                    for batch in _batches(block.records, write_batch):
                        t0 = time.perf_counter()
                        result = backend.write(name, batch)
                        seconds += time.perf_counter() - t0
                        if result.failed:
                            raise RuntimeError(f"the engine refused {len(result.failed)} synthetic passages: {next(iter(result.failed.values()))}")
                    written += len(block.records)
                    step += len(block.records)
                    term_df += block.term_counts
                    token_df += block.token_df
                    word_df += block.word_counts
                counter_state = _statistics_state(token_df, written, version)
                backend.put_meta(name, STATISTICS_META, counter_state)
                _settle(backend, name)
                passages = backend.count(name)
                disk = backend.disk_bytes(name)
                log(f"{backend.name} {target}: wrote {step} passages in {seconds:.1f} s of writes ({time.perf_counter() - started:.0f} s with synthesis)")
                index = Index(name, backend=backend, data_dir=data_dir, encoders=(sparse, multivector))
                try:
                    pipelines = {p: index.pipeline(p) for p in SCALE_PIPELINES}
                    stage_p50: dict[str, dict[str, float]] = {}
                    measured = measure_queries(pipelines, texts, stage_p50)
                finally:
                    index.close()
            results[str(target)] = {
                "passages": passages,
                "write_pps": round(step / seconds, 1) if seconds else None,
                "bytes_per_passage": round(disk / passages, 1) if disk and passages else None,
                "rss_mb": {
                    "engine": _rounded(engine.peak.get("engine" if backend.name != "edge" else "lsrkit")),
                    "lsrkit": _rounded(engine.peak.get("lsrkit")),
                },
                "pipelines": measured,
            }
            log(f"{backend.name} {target}: {json.dumps(results[str(target)])}")
            log(f"{backend.name} {target}: stage p50 ms {json.dumps(stage_p50)}")
        curve = df_curve(synth.source_df, src.passages, term_df, written)
        curve["text_words"] = {k: v for k, v in df_curve(synth.source_word_df, src.passages, word_df, written).items() if k not in ("source_passages",)}
        return {
            "backend": backend.name,
            "dataset": str(dataset),
            "method": method_text(src, seed, len(texts), write_batch, backend.name),
            "sizes": results,
            "df_curve": curve,
            "machine": machine(),
        }
    finally:
        if not keep_index:
            backend.drop_index(name)
        backend.close()


def measure_kept(
    *,
    dataset: Path,
    backend_kind: str = "edge",
    data_dir: Path = Path(".lsrkit"),
    url: str | None = None,
    queries: int = 300,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """The query half of `run` on the index a run kept (--keep-index), as it is now: to measure
    a change of the query path at 1M without building 1M passages again. Memory is the peak of
    opening the index and the queries (no build), write throughput is not measured."""
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions, ModelChoice, document_encoders, open_backend
    from lsrkit.index import Index

    texts = list(load_beir(dataset).queries.values())[:queries]
    sparse, multivector = document_encoders(ModelChoice())
    name = f"bench-scale-{default_index(dataset)}"[:120]
    with PeakMemory(_engine_pid(backend_kind, url)) as memory:
        backend = open_backend(BackendOptions(backend_kind, data_dir=Path(data_dir), url=url))  # type: ignore[arg-type]
        index = Index(name, backend=backend, data_dir=Path(data_dir), encoders=(sparse, multivector))
        try:
            passages = backend.count(name)
            pipelines = {p: index.pipeline(p) for p in SCALE_PIPELINES}
            stage_p50: dict[str, dict[str, float]] = {}
            measured = measure_queries(pipelines, texts, stage_p50)
            disk = backend.disk_bytes(name)
        finally:
            index.close()
            backend.close()
    result = {
        "passages": passages,
        "bytes_per_passage": round(disk / passages, 1) if disk and passages else None,
        "rss_mb": {"engine": _rounded(memory.peak.get("engine" if backend_kind != "edge" else "lsrkit")), "lsrkit": _rounded(memory.peak.get("lsrkit"))},
        "pipelines": measured,
        "stage_p50_ms": stage_p50,
    }
    log(f"{backend_kind} {passages} (kept index): {json.dumps(result)}")
    return {"backend": backend_kind, "dataset": str(dataset), "sizes": {str(passages): result}, "measured_on_kept_index": True, "machine": machine()}


def _engine_pid(backend_kind: str, url: str | None) -> int | None:
    """The local OpenSearch node's pid (its memory is the engine's); None for an in-process engine."""
    if backend_kind != "opensearch":
        return None
    from lsrkit.plugin.opensearch import node_urls

    parsed = urlparse(node_urls(url or os.environ.get("LSRKIT_OPENSEARCH_URL", "http://127.0.0.1:9200"))[0])
    return listening_pid(parsed.port or 9200) if parsed.hostname in ("127.0.0.1", "localhost", "::1") else None


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _statistics_state(token_df: IntArray, n_docs: int, version: int) -> dict[str, Any]:
    """The STATISTICS_META document ingest keeps (DocFreqCounter.state with its journal fields)."""
    from lsrkit.encoders.idf import DocFreqCounter

    counter = DocFreqCounter(len(token_df))
    counter.doc_freq[:] = token_df
    counter.n_docs = n_docs
    return {**counter.state(), "applied": [], "version": version}


def method_text(src: SourceSample, seed: int, queries: int, write_batch: int, engine: str) -> str:
    return (
        f"synthetic passages with the statistics of {src.passages} real passages ({src.documents} documents) encoded once by the bundled encoders: "
        "term counts from the real nnz, terms by successive sampling calibrated to the real document frequencies, each term's weight one of its real "
        "weights; text of real passage lengths from the real word unigrams; the real passages' codes reused in turn; "
        f"numpy seed {seed}. Written through the adapter in bulks of {write_batch} (write_pps: time in Backend.write only), each size built by "
        f"appending to the previous one; latency end to end at k=10 over the first {queries} test queries, after a warm-up pass, pipelines "
        f"interleaved; rss_mb: peak sampled every 0.2 s during the size's build and queries"
        + ("; Qdrant Edge runs in-process: its engine figure is the lsrkit process'" if engine == "edge" else "; engine: the OpenSearch JVM")
        + ". See lsrkit/bench/scale.py for the limits."
    )


__all__ = ["DEFAULT_SIZES", "SCALE_PIPELINES", "Block", "SourceSample", "Synthesizer", "calibrate_draws", "df_curve", "parse_sizes", "run"]
