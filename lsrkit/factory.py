"""Building backends, encoders and pipelines from the few settings a user gives the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lsrkit.core.config import OnnxOptions, Quantization, RerankSettings
from lsrkit.core.errors import ConfigError
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.ingest import load_index_idf
from lsrkit.plugin import Backend, HybridSettings, SearchPipeline

BackendKind = Literal["edge", "qdrant", "opensearch"]
DEFAULT_DATA_DIR = Path(".lsrkit")


@dataclass(frozen=True)
class BackendOptions:
    """Where the engine is. Secrets (API keys, passwords) come from the environment only."""

    kind: BackendKind = "edge"
    data_dir: Path = DEFAULT_DATA_DIR  # local state: edge/, qdrant-local/ (no url), state/
    url: str | None = None  # qdrant / opensearch server
    ca_certs: str | None = None  # opensearch over https


CODE_CACHE_ENV = "LSRKIT_CODE_CACHE_MB"  # the OpenSearch adapter's CodeCache budget (0: none)
_EXTRA = {"edge": "qdrant", "qdrant": "qdrant", "opensearch": "opensearch"}


def open_backend(options: BackendOptions, *, sparse_model: str | None = "splade-tiny") -> Backend:
    """The adapter for `options`. OpenSearch keys rank_features by token string, so it is given
    the sparse model's vocabulary (the tokenizer only; no model is loaded; None: set it later)."""
    if options.kind not in _EXTRA:
        raise ConfigError(f"unknown backend {options.kind!r}: use edge, qdrant or opensearch")
    try:
        return _open(options, sparse_model)
    except ImportError as exc:  # the engine's SDK is an extra
        extra = _EXTRA[options.kind]
        raise ConfigError(f"the {options.kind} backend needs the {extra!r} extra: pip install 'lsrkit[{extra}]' ({exc})") from exc


def _open(options: BackendOptions, sparse_model: str | None) -> Backend:
    if options.kind == "edge":
        from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

        return QdrantEdgeBackend(options.data_dir / "edge")
    if options.kind == "qdrant":
        from lsrkit.plugin.qdrant_server import QdrantBackend, client_from_env

        path = None if options.url else str(options.data_dir / "qdrant-local")
        return QdrantBackend(client_from_env(url=options.url, path=path))
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer
    from lsrkit.plugin.opensearch import OpenSearchBackend
    from lsrkit.plugin.opensearch import client_from_env as os_client

    vocab = None
    if sparse_model is not None:
        resolved = resolve(sparse_model, "sparse")
        vocab = TextTokenizer(resolved.directory, resolved.spec.max_length).vocab
    from lsrkit.plugin.code_cache import DEFAULT_CACHE_BYTES, CodeCache

    url = options.url or os.environ.get("LSRKIT_OPENSEARCH_URL", "http://127.0.0.1:9200")
    cache_mb = os.environ.get(CODE_CACHE_ENV)
    try:
        budget = int(float(cache_mb) * 2**20) if cache_mb else DEFAULT_CACHE_BYTES
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{CODE_CACHE_ENV} must be a number of megabytes, got {cache_mb!r}") from exc
    if budget < 0:
        raise ConfigError(f"{CODE_CACHE_ENV} must be 0 (no cache) or more megabytes, got {cache_mb!r}")
    cache = CodeCache(budget)
    return OpenSearchBackend(os_client(url, ca_certs=options.ca_certs), vocab=vocab, code_cache=cache)


@dataclass(frozen=True)
class ModelChoice:
    """The encoders of an index: registry names, hub ids or local folders, and their quantization
    (multivector None: no token vectors, no rerank)."""

    sparse: str = "splade-tiny"
    multivector: str | None = "minilm-l6"
    quantize: Quantization = "int8-per-channel"
    multivector_quantize: Quantization = "int8-attention"


def document_encoders(models: ModelChoice, *, threads: int = 0) -> tuple[SparseDocEncoder, MultiVectorEncoder | None]:
    """threads: onnxruntime's intra-op threads per session (0: all cores; a Ray actor sharing a
    machine with others takes its share)."""
    return sparse_doc_encoder(models, threads=threads), multivector_encoder(models, threads=threads) if models.multivector else None


def sparse_doc_encoder(models: ModelChoice, *, threads: int = 0) -> SparseDocEncoder:
    return SparseDocEncoder(models.sparse, options=OnnxOptions(quantize=models.quantize, intra_op_threads=threads))


def multivector_encoder(models: ModelChoice, *, threads: int = 0) -> MultiVectorEncoder:
    if models.multivector is None:
        raise ConfigError("no multivector model chosen: a rerank needs one")
    return MultiVectorEncoder(models.multivector, options=OnnxOptions(quantize=models.multivector_quantize, intra_op_threads=threads))


def idf_query_encoder(backend: Backend, index: str, model: str) -> IdfQueryEncoder:
    """The inference-free encoder with the model's own IDF file, else the one stored with the index."""
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer

    resolved = resolve(model, "sparse")
    if resolved.spec.idf_file and (resolved.directory / resolved.spec.idf_file).is_file():
        return IdfQueryEncoder(resolved.spec)
    vocab = TextTokenizer(resolved.directory, resolved.spec.max_length).vocab
    table = load_index_idf(backend, index, vocab)
    if table is None:
        raise ConfigError(f"model {model!r} ships no IDF table and index {index!r} stores none: ingest the corpus first")
    return IdfQueryEncoder(resolved.spec, idf=table)


PipelineName = Literal["bm25", "sparse-idf", "sparse-model", "sparse-idf+rerank", "hybrid", "hybrid+rerank", "sparse-idf+rerank-pruned", "hybrid+rerank-pruned"]
PIPELINES: tuple[str, ...] = (
    "bm25",
    "sparse-idf",
    "sparse-model",
    "sparse-idf+rerank",
    "hybrid",
    "hybrid+rerank",
    "sparse-idf+rerank-pruned",
    "hybrid+rerank-pruned",
)


@dataclass(frozen=True)
class QualitySettings:
    """The pipelines' settings, chosen by `lsrkit tune` on SciFact's *train* split (rule: per
    pipeline, the smallest κ within 0.001 nDCG@10 of the best), never on test; α/β chosen by
    `lsrkit bench rerank` on train (the fastest setting within 0.002 on every fold of train)."""

    sparse_kappa: int = 100
    sparse_interpolation: float = 0.2
    hybrid: HybridSettings = HybridSettings(method="minmax", weights=(0.5, 0.5), depth=100)
    hybrid_rerank: HybridSettings = HybridSettings(method="minmax", weights=(0.5, 0.5), depth=100)
    hybrid_kappa: int = 30
    hybrid_interpolation: float = 0.4
    alpha: float | None = 0.2
    beta: int | None = 8
    prune_depth: int = 10  # the top the pruning protects (what nDCG@10 sees; what α/β were chosen for)


def build_pipeline(
    name: str,
    backend: Backend,
    index: str,
    *,
    idf_encoder: IdfQueryEncoder | None,
    multivector: MultiVectorEncoder | None,
    model_encoder: SparseQueryEncoder | None = None,
    quality: QualitySettings = QualitySettings(),
    k: int = 100,
) -> SearchPipeline:
    """One of PIPELINES over an existing index. Reranked pipelines rerank the top κ and keep the
    first stage's order below them, so Recall@k does not shrink to κ."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}")
    pruned = name.endswith("-pruned")
    reranked = "+rerank" in name
    first_stage = "bm25" if name == "bm25" else "hybrid" if name.startswith("hybrid") else "sparse"
    kappa = quality.hybrid_kappa if first_stage == "hybrid" else quality.sparse_kappa
    interpolation = quality.hybrid_interpolation if first_stage == "hybrid" else quality.sparse_interpolation
    settings = RerankSettings(
        kappa=kappa if reranked else max(kappa, k),
        k=min(k, quality.prune_depth if pruned else kappa) if reranked else k,
        interpolation=interpolation if reranked else 0.0,
        alpha=quality.alpha if pruned else None,
        beta=quality.beta if pruned else None,
    )
    encoder = model_encoder if name == "sparse-model" else idf_encoder
    return SearchPipeline(
        backend,
        index,
        encoder if first_stage != "bm25" else None,
        multivector_encoder=multivector if reranked else None,
        rerank=reranked,
        settings=settings,
        first_stage=first_stage,  # type: ignore[arg-type]
        hybrid=quality.hybrid_rerank if reranked else quality.hybrid,
    )


def pipeline_settings(quality: QualitySettings) -> dict[str, object]:
    return {k: (v.__dict__ if isinstance(v, HybridSettings) else v) for k, v in quality.__dict__.items()}


__all__ = [
    "PIPELINES",
    "BackendOptions",
    "ModelChoice",
    "QualitySettings",
    "build_pipeline",
    "document_encoders",
    "idf_query_encoder",
    "multivector_encoder",
    "open_backend",
    "sparse_doc_encoder",
    "RerankSettings",
]
