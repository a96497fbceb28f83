"""`lsrkit bench multivector`: the size/quality curve of the compact token-vector representations.

Every representation reranks the same hybrid candidates (the tuned `hybrid+rerank` setting) of
every train and test query; the candidates' token vectors are encoded once (float, cached under
the data folder) and stored in each representation. Per representation: stored bytes per original
token and per passage, nDCG@10 on train and test, the paired-bootstrap interval of its nDCG@10
change against int8 (the representation of lsrkit 0.1), and the rerank's time per query (decode
and MaxSim of the κ candidates, best of REPEATS). The interpolation with the first stage hides
much of a code's loss, so each representation is also scored by pure MaxSim over the same
candidates, with the interval of its change against pure MaxSim over the float16 vectors.

The default is chosen on *train* only: of the representations of at most
MAX_DEFAULT_BYTES_PER_TOKEN bytes per original token whose interval against int8 (interpolated)
and whose interval against float16 (pure MaxSim) both contain 0, the one with the highest pure-
MaxSim nDCG@10 (the size cap is the budget; within it, the most of the rerank's signal). When none does, the rule of
lsrkit 0.1 picks (the smallest whose interpolated interval contains 0) and the JSON says so.
Test is only reported.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine
from lsrkit.core.config import DEFAULT_DATA_DIR, BatchPolicy

REPEATS = 3
MAX_DEFAULT_BYTES_PER_TOKEN = 24.0  # a default must be compact: ~24 B per original token was within noise before
CALIBRATION_DOCUMENTS = BatchPolicy().write_batch  # what the ingest calibrates on: its first write batch


def run(*, dataset: Path, data_dir: Path = DEFAULT_DATA_DIR, representations: tuple[str, ...] | None = None, write_defaults: bool = False) -> dict[str, Any]:
    from lsrkit.core.config import REPRESENTATIONS, RerankSettings
    from lsrkit.core.defaults import write_tuned_section
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import bootstrap_interval, load_beir, per_query_ndcg10, score_run
    from lsrkit.factory import BackendOptions, QualitySettings
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested
    from lsrkit.plugin.codec import MultiVectorCodec, Representation
    from lsrkit.plugin.rerank import MaxSimReranker, maxsim_scores
    from lsrkit.tuning import Config, QueryEvidence, apply, first_stage_evidence

    names = tuple(dict.fromkeys(("int8", *(representations or REPRESENTATIONS))))  # int8: the reference of every interval
    splits = {"train": load_beir(dataset, "train"), "test": load_beir(dataset, "test")}
    index = default_index(dataset)
    quality = QualitySettings()
    config = Config("hybrid", quality.hybrid_rerank.method, quality.hybrid_rerank.weights[0], quality.hybrid_kappa, quality.hybrid_interpolation)
    with Index(index, backend=BackendOptions("edge", data_dir=data_dir)) as target:
        ensure_ingested(target, splits["train"].corpus, progress=False)
        multivector = target.query_multivector_encoder()
        evidence = {split: first_stage_evidence(target.backend, index, data, target.idf_encoder(), multivector) for split, data in splits.items()}
    pools = {split: {qid: _pool(ev, config) for qid, ev in by_query.items()} for split, by_query in evidence.items()}
    texts = {h.id: _full_text(h) for by_query in pools.values() for pool in by_query.values() for h in pool}
    vectors = _token_vectors(texts, multivector, data_dir / "bench-multivector" / f"{index}-{multivector.fingerprint}.npz")
    calibration = [v.vectors for v in multivector.encode_documents(_first_documents(splits["train"].corpus, CALIBRATION_DOCUMENTS))]
    original_tokens = sum(len(v) for v in vectors.values())
    reranker = MaxSimReranker(RerankSettings(kappa=config.kappa, k=config.kappa, interpolation=config.interpolation))
    maxsim_only = dataclasses.replace(config, interpolation=0.0)

    rows: dict[str, dict[str, Any]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    per_query_maxsim: dict[str, dict[str, dict[str, float]]] = {}
    for name in ("float16", *names):
        codec = None if name == "float16" else MultiVectorCodec.calibrate(name, calibration)
        stored = {i: codec.encode(v) for i, v in vectors.items()} if codec else {i: v.astype(np.float16).tobytes() for i, v in vectors.items()}
        row: dict[str, Any] = {
            "bytes_per_token": round(sum(len(b) for b in stored.values()) / original_tokens, 2),
            "bytes_per_passage": round(sum(len(b) for b in stored.values()) / len(stored), 1),
        }
        if codec is not None and codec.centroids is not None:
            row["centroids"] = len(codec.centroids)
        if codec is not None and codec.codebooks is not None:
            row["codewords"] = int(codec.codebooks.shape[1])
        elapsed, queries = 0.0, 0
        for split, by_query in evidence.items():
            rescored: dict[str, QueryEvidence] = {}
            for qid, ev in by_query.items():
                pool = pools[split][qid]
                best = float("inf")
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    decoded = {h.id: codec.decode(stored[h.id]) if codec else vectors[h.id] for h in pool}
                    reranker.rerank(ev.query_vectors, pool, decoded)
                    best = min(best, time.perf_counter() - start)
                elapsed, queries = elapsed + best, queries + 1
                empty = np.zeros((0, ev.query_vectors.shape[1]), np.float32)
                scores = maxsim_scores(ev.query_vectors, [decoded.get(h.id, empty) for h in pool])
                rescored[qid] = dataclasses.replace(ev, maxsim=dict(zip((h.id for h in pool), scores.tolist())))
            for scoring, setting, into in (("", config, per_query), ("_maxsim_only", maxsim_only, per_query_maxsim)):
                run_ = {qid: {h.id: h.score for h in apply(ev, setting)} for qid, ev in rescored.items()}
                row[f"ndcg10_{split}{scoring}"] = round(score_run(run_, splits[split].qrels)["ndcg10"], 4)
                into.setdefault(name, {})[split] = per_query_ndcg10(run_, splits[split].qrels)
        row["rerank_ms"] = round(1000 * elapsed / queries, 3)
        rows[name] = row

    for name, row in rows.items():
        for split in ("train", "test"):
            for key, reference, by_name in (("delta", "int8", per_query), ("maxsim_only_delta", "float16", per_query_maxsim)):
                base, mine = by_name[reference][split], by_name[name][split]
                row[f"{key}_{split}_interval"] = [round(v, 4) for v in bootstrap_interval([mine[q] - base[q] for q in base])]
    default, fallback = choose_default(rows, names)
    if write_defaults:
        write_tuned_section("multivector_representation", default, source={"dataset": dataset.name, "split": "train", "bench": "multivector"})
    return {
        "dataset": str(dataset),
        "pipeline": f"hybrid+rerank ({config.label()})",
        "maxsim_only": {"float_ndcg10_test": rows["float16"]["ndcg10_test_maxsim_only"], "float_ndcg10_train": rows["float16"]["ndcg10_train_maxsim_only"]},
        "selection": (
            f"of the representations of at most {MAX_DEFAULT_BYTES_PER_TOKEN:g} bytes_per_token whose train 95 % paired-bootstrap intervals of the "
            "nDCG@10 change contain 0 both against int8 (hybrid+rerank, interpolated) and against float16 (pure MaxSim over the same candidates), "
            "the highest train pure-MaxSim nDCG@10 (then the smallest); "
            "if none qualifies, the smallest whose interval against int8 (interpolated) contains 0"
        ),
        "selection_fallback": fallback is not None,
        **({"selection_fallback_reason": fallback} if fallback else {}),
        "default": default,
        "default_bytes_per_token": rows[default]["bytes_per_token"],
        "default_bits": Representation.parse(default).bits,
        "passages": len(vectors),
        "tokens_per_passage": round(original_tokens / len(vectors), 1),
        "representations": rows,
        "machine": machine(),
    }


def choose_default(rows: dict[str, dict[str, Any]], names: tuple[str, ...]) -> tuple[str, str | None]:
    """The default representation from the train intervals (see the module docstring), and why
    the fallback rule picked it (None when the main rule did)."""

    def contains_zero(interval: list[float]) -> bool:
        return interval[0] <= 0.0 <= interval[1]

    def smallest(eligible: list[str]) -> str:
        return min(eligible, key=lambda n: (rows[n]["bytes_per_token"], -rows[n]["ndcg10_train"]))

    def most_signal(eligible: list[str]) -> str:
        return min(eligible, key=lambda n: (-rows[n]["ndcg10_train_maxsim_only"], rows[n]["bytes_per_token"], -rows[n]["ndcg10_train"]))

    interpolated = [n for n in names if contains_zero(rows[n]["delta_train_interval"])]
    both = [n for n in interpolated if rows[n]["bytes_per_token"] <= MAX_DEFAULT_BYTES_PER_TOKEN and contains_zero(rows[n]["maxsim_only_delta_train_interval"])]
    if both:
        return most_signal(both), None
    compact = [n for n in names if rows[n]["bytes_per_token"] <= MAX_DEFAULT_BYTES_PER_TOKEN]
    failures = "; ".join(
        f"{n}: {'interpolated ' + str(rows[n]['delta_train_interval']) if n not in interpolated else 'pure MaxSim ' + str(rows[n]['maxsim_only_delta_train_interval'])}"
        for n in compact
    )
    reason = (
        f"no representation of at most {MAX_DEFAULT_BYTES_PER_TOKEN:g} bytes per token keeps both the interpolated nDCG@10 of int8 "
        f"and the pure-MaxSim nDCG@10 of float16 within its train interval ({failures or 'none that small'})"
    )
    return (smallest(interpolated) if interpolated else "int8"), reason


def _pool(ev: Any, config: Any) -> list[Any]:
    from lsrkit.tuning import first_stage

    return first_stage(ev, config)[: config.kappa]


def _full_text(hit: Any) -> str:
    return f"{hit.title} {hit.text}".strip() if hit.title else hit.text


def _first_documents(corpus: Path, n: int) -> list[str]:
    import itertools
    import json

    with corpus.open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in itertools.islice(handle, n)]
    return [f"{d.get('title', '')} {d['text']}".strip() for d in docs]


def _token_vectors(texts: dict[str, str], encoder: Any, cache: Path) -> dict[str, np.ndarray]:
    """Float token vectors of the candidate passages, encoded once and kept (float16) in `cache`."""
    known: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as stored:
            known = {i: stored[i].astype(np.float32) for i in stored.files}
    missing = sorted(set(texts) - set(known))
    for start in range(0, len(missing), 64):
        batch = missing[start : start + 64]
        for passage, mv in zip(batch, encoder.encode_documents([texts[i] for i in batch])):
            known[passage] = mv.vectors.astype(np.float16).astype(np.float32)  # as a rerun reads them back
    if missing:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{i: v.astype(np.float16) for i, v in known.items()})  # type: ignore[arg-type]
    return {i: known[i] for i in texts}
