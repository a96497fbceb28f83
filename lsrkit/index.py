"""`Index`: the Python API's entry point — one index on one engine, to ingest into and to search.

Its defaults are the CLI's (the tuned `QualitySettings`, the bundled models, the compact token
vectors), and the CLI runs through it, so the two cannot drift apart. The encoders an index was
built with are recorded in it (its manifest): opening it again needs no model names.

    >>> with Index("papers", data_dir=tmp) as index:                     # doctest: +SKIP
    ...     index.ingest([{"_id": "1", "title": "ATP", "text": "ATP stores energy in cells."}])
    ...     hits = index.search("what stores energy in cells?", k=3)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from lsrkit.core.config import DEFAULT_REPRESENTATION, BatchPolicy, IndexSpec, OnnxOptions
from lsrkit.core.errors import ConfigError, IndexMissingError
from lsrkit.core.types import Hit
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.factory import (
    DEFAULT_DATA_DIR,
    BackendKind,
    BackendOptions,
    ModelChoice,
    QualitySettings,
    build_pipeline,
    document_encoders,
    idf_query_encoder,
    multivector_encoder,
    open_backend,
)
from lsrkit.ingest import FieldMapping, IngestPipeline, IngestSummary
from lsrkit.ingest.lease import DEFAULT_LEASE_SECONDS, Lease
from lsrkit.ingest.manifest import MANIFEST_META, encoders_manifest, manifest_differences
from lsrkit.ingest.retry import RetryPolicy
from lsrkit.ingest.sources import Source, SourceFormat
from lsrkit.ingest.statistics import STATISTICS_META, CorpusStatistics, DeleteSummary, delete_documents
from lsrkit.plugin import Backend, SearchPipeline
from lsrkit.plugin.base import Filters
from lsrkit.plugin.pipeline import SearchResult

DEFAULT_PIPELINE = "hybrid+rerank"
IDF_CHECK_SECONDS = 5.0  # how stale a long-running process's IDF table may get


class Index:
    """An index of `backend` ("edge", "qdrant", "opensearch", or an opened Backend).

    `models`: the encoders of a new index (default: the bundled ones); for an existing index they
    are read from its manifest, and models given that differ from it are a ConfigError.
    `encoders`: document encoders already loaded, in place of `models`.
    """

    def __init__(
        self,
        name: str,
        *,
        backend: BackendKind | Backend = "edge",
        data_dir: str | Path = DEFAULT_DATA_DIR,
        url: str | None = None,
        ca_certs: str | None = None,
        models: ModelChoice | None = None,
        encoders: tuple[SparseDocEncoder, MultiVectorEncoder | None] | None = None,
        representation: str = DEFAULT_REPRESENTATION,
        text_language: str = "english",
        quality: QualitySettings = QualitySettings(),
    ) -> None:
        self.name = name
        self.data_dir = Path(data_dir)
        self.quality = quality
        self.representation = representation
        self.text_language = text_language
        self._owns_backend = isinstance(backend, str)
        # how another process (a Ray worker) reaches the same engine
        self.options = BackendOptions(kind=backend, data_dir=self.data_dir, url=url, ca_certs=ca_certs) if isinstance(backend, str) else None  # type: ignore[arg-type]
        self.backend: Backend = (
            open_backend(
                BackendOptions(
                    kind=backend,  # type: ignore[arg-type]
                    data_dir=self.data_dir,
                    url=url,
                    ca_certs=ca_certs,
                ),
                sparse_model=None,
            )
            if isinstance(backend, str)
            else backend
        )
        self._requested = models
        self._documents = encoders
        self._queries: dict[str, Any] = {}
        self._pipelines: dict[str, SearchPipeline] = {}
        self._models: ModelChoice | None = None
        self._idf_version: object = None
        self._idf_checked = 0.0

    # -- models --------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any] | None:
        """The encoders recorded with the index (None before its first ingest)."""
        try:
            return self.backend.get_meta(self.name, MANIFEST_META)
        except IndexMissingError:
            return None

    @property
    def models(self) -> ModelChoice:
        """The index's encoders: its manifest's; for a new index the ones given, else the bundled ones."""
        if self._models is None:
            manifest = self.manifest
            if self._documents is None and manifest and self._requested not in (None, models_of(manifest)):
                self._documents = document_encoders(self._requested)  # type: ignore[arg-type]
            if self._documents is not None:
                sparse, multivector = self._documents
                own = encoders_manifest(sparse.manifest, multivector.manifest if multivector else None, self._spec(multivector))
                differences = manifest_differences(manifest, own) if manifest else []
                if differences:
                    raise ConfigError(f"index {self.name!r} was built with other encoders: " + "; ".join(differences))
                self._models = models_of(own)
            else:
                self._models = models_of(manifest) if manifest else (self._requested or ModelChoice())
            self._use_vocabulary()
        return self._models

    def document_encoders(self) -> tuple[SparseDocEncoder, MultiVectorEncoder | None]:
        """The encoders of documents (loaded once)."""
        if self._documents is None:
            self._documents = document_encoders(self.models)
        return self._documents

    def _use_vocabulary(self) -> None:
        # OpenSearch keys rank_features by token string: it needs the sparse model's vocabulary
        set_vocab = getattr(self.backend, "set_vocab", None)
        if set_vocab is not None and self._models is not None:
            from lsrkit.encoders.registry import resolve
            from lsrkit.encoders.text import TextTokenizer

            resolved = resolve(self._models.sparse, "sparse")
            set_vocab(TextTokenizer(resolved.directory, resolved.spec.max_length).vocab)

    def _spec(self, multivector: MultiVectorEncoder | None) -> IndexSpec:
        return IndexSpec(
            name=self.name,
            multivector_dim=multivector.dim if multivector else None,
            multivector_representation=self.representation,
            text_language=self.text_language,
        )

    # -- ingest --------------------------------------------------------------------------------
    def ingest(
        self,
        source: Source,
        *,
        resume: bool = False,
        fmt: SourceFormat = "auto",
        mapping: FieldMapping = FieldMapping(),
        policy: BatchPolicy = BatchPolicy(),
        progress: bool | None = None,
        state_dir: Path | None = None,
        engine: str = "local",
        workers: int = 2,
        address: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        lease_timeout: float = DEFAULT_LEASE_SECONDS,
    ) -> IngestSummary:
        """Encode and write `source` (a JSONL/BEIR/CSV/Parquet path, or records such as
        {"_id", "title", "text", …} dicts); bad records go to the dead-letter file.
        `engine="ray"`: on a Ray cluster (`address`, else a local one of `workers` CPUs).
        An engine unavailable for longer than `retry.seconds` stops the job (IngestError's
        cause: UnavailableError), resumable with `resume=True`; another job writing the index
        is refused (IndexBusyError), one that died is taken over after `lease_timeout` s."""
        if engine == "ray":
            from lsrkit.ray_ingest import ingest_on_ray

            if not isinstance(source, (str, Path, list, tuple)):
                source = list(source)  # read twice (a first pass measures the corpus)
            summary = ingest_on_ray(
                self,
                source,
                address=address,
                workers=workers,
                resume=resume,
                fmt=fmt,
                mapping=mapping,
                policy=policy,
                retry=retry,
                lease_timeout=lease_timeout,
                progress=progress,
                options=self.options,
            )
            self._forget_queries()
            return summary
        if engine != "local":
            raise ConfigError(f"unknown ingest engine {engine!r}: use local or ray")
        sparse, multivector = self.document_encoders()
        job = IngestPipeline(
            self.backend,
            self._spec(multivector),
            sparse,
            sparse.model.tokenizer,
            multivector_encoder=multivector,
            state_dir=state_dir or self.data_dir / "state" / self.name,
            policy=policy,
            retry=retry,
            progress=progress,
            lease_timeout=lease_timeout,
        )
        summary = job.run(source, fmt=fmt, mapping=mapping, resume=resume)
        self._forget_queries()  # the IDF table and the codec were (re)written
        return summary

    def delete(self, doc_ids: Iterable[str], *, lease_timeout: float = DEFAULT_LEASE_SECONDS) -> DeleteSummary:
        """Remove documents: their passages, token vectors and share of the corpus statistics
        (refused with IndexBusyError while another job writes the index)."""
        from lsrkit.encoders.registry import resolve
        from lsrkit.encoders.text import TextTokenizer

        resolved = resolve(self.models.sparse, "sparse")  # the tokenizer is all a delete needs of the model
        tokenizer = TextTokenizer(resolved.directory, resolved.spec.max_length)
        statistics = CorpusStatistics(self.backend, self.name, tokenizer)
        with Lease(self.backend, self.name, "delete", timeout=lease_timeout):
            summary = delete_documents(self.backend, self.name, doc_ids, statistics)
        self._idf_version, self._idf_checked = None, 0.0  # re-read at the next search
        return summary

    # -- search --------------------------------------------------------------------------------
    def search(self, text: str, *, pipeline: str = DEFAULT_PIPELINE, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """The k best documents for `text`, best first."""
        return self.query(text, pipeline=pipeline, k=k, filters=filters).hits

    def query(self, text: str, *, pipeline: str = DEFAULT_PIPELINE, k: int = 10, filters: Filters | None = None) -> SearchResult:
        """As search, with the stage timings."""
        chosen = self.pipeline(pipeline)
        self.refresh()
        return chosen.search(text, k=k, filters=filters)

    def refresh(self, *, every_s: float = IDF_CHECK_SECONDS) -> None:
        """Adopt the corpus statistics another job changed since they were read (an ingest or a
        delete elsewhere): the inference-free encoder's IDF table is replaced in place, so every
        pipeline (and a running service) sees it without a restart. Checked at most every_s."""
        encoder = self._queries.get("idf")
        now = time.monotonic()
        if encoder is None or now - self._idf_checked < every_s:
            return
        self._idf_checked = now
        stored = self.backend.get_meta(self.name, STATISTICS_META) or {}
        if stored.get("version") != self._idf_version:
            fresh = idf_query_encoder(self.backend, self.name, self.models.sparse)
            encoder.idf, self._idf_version = fresh.idf, stored.get("version")

    def pipeline(self, name: str = DEFAULT_PIPELINE) -> SearchPipeline:
        """One of PIPELINES over this index, with the tuned settings, built once per name (k is an
        argument of its search: a cache keyed by k would grow a rerank thread per k asked)."""
        if name not in self._pipelines:
            self._pipelines[name] = build_pipeline(
                name,
                self.backend,
                self.name,
                idf_encoder=self.idf_encoder() if name != "bm25" else None,
                multivector=self.query_multivector_encoder() if "+rerank" in name else None,
                model_encoder=self.sparse_query_encoder() if name == "sparse-model" else None,
                quality=self.quality,
            )
        return self._pipelines[name]

    def idf_encoder(self) -> IdfQueryEncoder:
        """The inference-free query encoder: the model's IDF file, else the corpus's stored with the index."""
        if "idf" not in self._queries:
            self._idf_version = (self.backend.get_meta(self.name, STATISTICS_META) or {}).get("version")
            self._idf_checked = time.monotonic()
            self._queries["idf"] = idf_query_encoder(self.backend, self.name, self.models.sparse)
        encoder: IdfQueryEncoder = self._queries["idf"]
        return encoder

    def query_multivector_encoder(self) -> MultiVectorEncoder:
        """The token-vector encoder of queries (the documents' one, when loaded already)."""
        models = self.models
        if models.multivector is None:
            raise ConfigError(f"index {self.name!r} stores no token vectors: a rerank pipeline needs them")
        if self._documents is not None and self._documents[1] is not None:
            return self._documents[1]
        if "multivector" not in self._queries:
            self._queries["multivector"] = multivector_encoder(models)
        encoder: MultiVectorEncoder = self._queries["multivector"]
        return encoder

    def sparse_query_encoder(self) -> SparseQueryEncoder:
        """The sparse model run on queries (the `sparse-model` pipeline)."""
        if "model" not in self._queries:
            self._queries["model"] = SparseQueryEncoder(self.models.sparse, options=OnnxOptions(quantize=self.models.quantize))
        encoder: SparseQueryEncoder = self._queries["model"]
        return encoder

    def _forget_queries(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()
        self._queries.pop("idf", None)

    # -- lifecycle -----------------------------------------------------------------------------
    def count(self) -> int:
        """Passages stored."""
        return self.backend.count(self.name)

    def drop(self) -> None:
        """Delete the index and everything stored with it."""
        self._forget_queries()
        self.backend.drop_index(self.name)
        self._models = None

    def close(self) -> None:
        self._forget_queries()
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()


def models_of(manifest: Mapping[str, Any]) -> ModelChoice:
    """The models a manifest names."""
    sparse, multivector = manifest["sparse"], manifest.get("multivector")
    defaults = ModelChoice()
    return ModelChoice(
        sparse=sparse["model"],
        multivector=multivector["model"] if multivector else None,
        quantize=sparse.get("quantize", defaults.quantize),
        multivector_quantize=multivector.get("quantize", defaults.multivector_quantize) if multivector else defaults.multivector_quantize,
    )


__all__ = ["DEFAULT_PIPELINE", "Index", "models_of"]
