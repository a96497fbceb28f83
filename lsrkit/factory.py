"""Building backends, encoders and pipelines from the few settings a user gives the CLI."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

from lsrkit.core.config import DEFAULT_DATA_DIR, OnnxOptions, Quantization, RerankSettings, opensearch_url
from lsrkit.core.defaults import StageDefaults
from lsrkit.core.defaults import tuned as tuned_defaults
from lsrkit.core.errors import ConfigError
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.encoders.registry import resolve
from lsrkit.encoders.text import TextTokenizer
from lsrkit.plugin import Backend, HybridSettings, MultiVectorCodec, SearchPipeline
from lsrkit.plugin.index_meta import index_idf
from lsrkit.plugin.pipeline import FirstStage

BackendKind = Literal["edge", "qdrant", "opensearch"]


@dataclass(frozen=True)
class BackendOptions:
    """Where the engine is. Secrets (API keys, passwords) come from the environment only."""

    kind: BackendKind = "edge"
    data_dir: Path = DEFAULT_DATA_DIR  # local state: edge/, qdrant-local/ (no url), state/
    url: str | None = None  # qdrant / opensearch server
    ca_certs: str | None = None  # opensearch over https

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))  # a str given is a folder too


def job_state_dir(data_dir: Path, index: str) -> Path:
    """Where the ingest jobs of `index` keep their checkpoint and dead letters."""
    return Path(data_dir) / "state" / index


CODE_CACHE_ENV = "LSRKIT_CODE_CACHE_MB"  # the OpenSearch adapter's CodeCache budget (0: none)
_EXTRA = {"edge": "qdrant", "qdrant": "qdrant", "opensearch": "opensearch"}


def open_backend(options: BackendOptions) -> Backend:
    """The adapter for `options` (OpenSearch's reads each index's sparse vocabulary from its manifest)."""
    if options.kind not in _EXTRA:
        raise ConfigError(f"unknown backend {options.kind!r}: use edge, qdrant or opensearch")
    try:
        return _open(options)
    except ImportError as exc:  # the engine's SDK is an extra
        extra = _EXTRA[options.kind]
        raise ConfigError(f"the {options.kind} backend needs the {extra!r} extra: pip install 'lsrkit[{extra}]' ({exc})") from exc


def _open(options: BackendOptions) -> Backend:
    if options.kind == "edge":
        from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

        return QdrantEdgeBackend(options.data_dir / "edge")
    if options.kind == "qdrant":
        from lsrkit.plugin.qdrant_server import QdrantBackend, client_from_env

        path = None if options.url else str(options.data_dir / "qdrant-local")
        return QdrantBackend(client_from_env(url=options.url, path=path))
    from lsrkit.plugin.code_cache import DEFAULT_CACHE_BYTES, CodeCache
    from lsrkit.plugin.opensearch import OpenSearchBackend
    from lsrkit.plugin.opensearch import client_from_env as os_client

    url = opensearch_url(options.url)
    cache_mb = os.environ.get(CODE_CACHE_ENV)
    try:
        budget = int(float(cache_mb) * 2**20) if cache_mb else DEFAULT_CACHE_BYTES
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{CODE_CACHE_ENV} must be a number of megabytes, got {cache_mb!r}") from exc
    if budget < 0:
        raise ConfigError(f"{CODE_CACHE_ENV} must be 0 (no cache) or more megabytes, got {cache_mb!r}")
    return OpenSearchBackend(os_client(url, ca_certs=options.ca_certs), code_cache=CodeCache(budget))


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


def sparse_tokenizer(model: str) -> TextTokenizer:
    """The sparse model's tokenizer alone (no ONNX session)."""
    resolved = resolve(model, "sparse")
    return TextTokenizer(resolved.directory, resolved.spec.max_length)


def idf_query_encoder(backend: Backend, index: str, model: str, *, tokenizer: TextTokenizer | None = None) -> tuple[IdfQueryEncoder, object]:
    """The inference-free encoder with the model's own IDF file, else the one stored with the
    index, and the version of the corpus statistics it holds (None: the model's own file)."""
    resolved = resolve(model, "sparse")
    if resolved.spec.idf_file and (resolved.directory / resolved.spec.idf_file).is_file():
        return IdfQueryEncoder(resolved.spec, tokenizer=tokenizer), None
    tokenizer = tokenizer or TextTokenizer(resolved.directory, resolved.spec.max_length)
    version, table = index_idf(backend, index, tokenizer.vocab)
    if table is None:
        raise ConfigError(f"model {model!r} ships no IDF table and index {index!r} stores none: ingest the corpus first")
    return IdfQueryEncoder(resolved.spec, idf=table, tokenizer=tokenizer), version


PipelineName = Literal["bm25", "sparse-idf", "sparse-model", "sparse-idf+rerank", "hybrid", "hybrid+rerank", "sparse-idf+rerank-pruned", "hybrid+rerank-pruned"]
PIPELINES: tuple[str, ...] = get_args(PipelineName)


def _tuned_stage(first_stage: str, reranked: bool) -> StageDefaults:
    return tuned_defaults().stage(first_stage, reranked=reranked)


@dataclass(frozen=True)
class QualitySettings:
    """The pipelines' settings. Every default is read from the one defaults file, core/tuned.json,
    written on a *train* split only by `lsrkit tune --write-defaults` (fusion, κ, interpolation:
    per pipeline, the smallest κ within 0.001 nDCG@10 of the best) and `lsrkit bench rerank
    --write-defaults` (α/β: the fastest setting within 0.002 on every fold of train). `hybrid` and
    `hybrid_rerank` are tuned apart (the fusion that ranks best alone need not feed a rerank best)."""

    sparse_kappa: int = field(default_factory=lambda: _tuned_stage("sparse", True).kappa)
    sparse_interpolation: float = field(default_factory=lambda: _tuned_stage("sparse", True).interpolation)
    hybrid: HybridSettings = field(default_factory=lambda: HybridSettings.tuned(reranked=False))
    hybrid_rerank: HybridSettings = field(default_factory=lambda: HybridSettings.tuned(reranked=True))
    hybrid_kappa: int = field(default_factory=lambda: _tuned_stage("hybrid", True).kappa)
    hybrid_interpolation: float = field(default_factory=lambda: _tuned_stage("hybrid", True).interpolation)
    alpha: float | None = field(default_factory=lambda: tuned_defaults().alpha)
    beta: int | None = field(default_factory=lambda: tuned_defaults().beta)
    prune_depth: int = field(default_factory=lambda: tuned_defaults().prune_depth)  # the top α/β protect (what nDCG@10 sees)

    def rerank(self, first_stage: str, *, pruned: bool = False) -> RerankSettings:
        """The rerank of a first stage's candidates (k: the top that α/β pruning protects)."""
        hybrid = first_stage == "hybrid"
        return RerankSettings.of_stage(
            self.hybrid_kappa if hybrid else self.sparse_kappa,
            self.hybrid_interpolation if hybrid else self.sparse_interpolation,
            prune_depth=self.prune_depth,
            pruning=(self.alpha, self.beta) if pruned else None,
        )

    def as_dict(self) -> dict[str, object]:
        return {k: (asdict(v) if isinstance(v, HybridSettings) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PipelineShape:
    """What a pipeline name means: its first stage, whether it reranks, whether it prunes."""

    first_stage: FirstStage
    reranked: bool
    pruned: bool

    @classmethod
    def of(cls, name: str) -> PipelineShape:
        if name not in PIPELINES:
            raise ConfigError(f"unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}")
        first_stage: FirstStage = "bm25" if name == "bm25" else "hybrid" if name.startswith("hybrid") else "sparse"
        return cls(first_stage, "+rerank" in name, name.endswith("-pruned"))


def build_pipeline(
    name: str,
    backend: Backend,
    index: str,
    *,
    idf_encoder: IdfQueryEncoder | None,
    multivector: MultiVectorEncoder | None,
    model_encoder: SparseQueryEncoder | None = None,
    quality: QualitySettings | None = None,
    codec: MultiVectorCodec | None = None,
) -> SearchPipeline:
    """One of PIPELINES over an existing index (k is an argument of its search). Reranked
    pipelines rerank the top κ and keep the first stage's order below them, so Recall@k does not
    shrink to κ."""
    shape = PipelineShape.of(name)
    quality = quality or QualitySettings()
    encoder = model_encoder if name == "sparse-model" else idf_encoder
    return SearchPipeline(
        backend,
        index,
        encoder if shape.first_stage != "bm25" else None,
        multivector_encoder=multivector if shape.reranked else None,
        rerank=shape.reranked,
        codec=codec,
        settings=quality.rerank(shape.first_stage, pruned=shape.pruned),
        first_stage=shape.first_stage,
        hybrid=quality.hybrid_rerank if shape.reranked else quality.hybrid,
    )


__all__ = [
    "PIPELINES",
    "BackendOptions",
    "ModelChoice",
    "PipelineShape",
    "QualitySettings",
    "build_pipeline",
    "document_encoders",
    "idf_query_encoder",
    "multivector_encoder",
    "open_backend",
    "sparse_doc_encoder",
    "RerankSettings",
]
