"""`Index`: the Python API's entry point — one index on one engine, to ingest into and to search.

Its defaults are the CLI's (the tuned settings of core/tuned.json, the bundled models, the compact
token vectors), and the CLI runs through it, so the two cannot drift apart. The encoders an index
was built with are recorded in it (its manifest): opening it again needs no model names.

    >>> with Index("papers", backend=BackendOptions("edge", data_dir=tmp)) as index:  # doctest: +SKIP
    ...     index.ingest([{"_id": "1", "title": "ATP", "text": "ATP stores energy in cells."}])
    ...     hits = index.search("what stores energy in cells?", k=3)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lsrkit.core.config import BatchPolicy, IndexSpec, OnnxOptions, default_representation
from lsrkit.core.errors import ConfigError, IndexMissingError
from lsrkit.core.types import Hit
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.encoders.text import TextTokenizer
from lsrkit.factory import (
    DEFAULT_DATA_DIR,
    PIPELINES,
    BackendOptions,
    ModelChoice,
    PipelineShape,
    QualitySettings,
    build_pipeline,
    document_encoders,
    idf_query_encoder,
    job_state_dir,
    multivector_encoder,
    open_backend,
    sparse_tokenizer,
)
from lsrkit.ingest import FieldMapping, IngestJob, IngestSummary
from lsrkit.ingest.checkpoint import JOB_CHECKPOINTS
from lsrkit.ingest.lease import DEFAULT_LEASE_SECONDS, Lease
from lsrkit.ingest.manifest import encoders_manifest, manifest_differences
from lsrkit.ingest.retry import RetryPolicy
from lsrkit.ingest.sources import Source, SourceFormat
from lsrkit.ingest.statistics import CorpusStatistics, DeleteSummary, delete_documents
from lsrkit.plugin import Backend, SearchPipeline
from lsrkit.plugin.base import Filters
from lsrkit.plugin.codec import MultiVectorCodec
from lsrkit.plugin.index_meta import index_idf, read_manifest
from lsrkit.plugin.pipeline import CODEC_META, SearchResult, index_codec

DEFAULT_PIPELINE = "hybrid+rerank"
IDF_CHECK_SECONDS = 5.0  # how stale a long-running process's IDF table may get
DocumentEncoders = tuple[SparseDocEncoder, MultiVectorEncoder | None]


@dataclass
class LoadedEncoders:
    """The encoders an Index has loaded, each at most once."""

    documents: DocumentEncoders | None = None
    idf_query: IdfQueryEncoder | None = None
    multivector_query: MultiVectorEncoder | None = None
    sparse_query: SparseQueryEncoder | None = None
    codec: MultiVectorCodec | None = None  # the token vectors' codec stored with the index


class Index:
    """One index of one engine.

    `backend`: where the engine is (BackendOptions: opened here, closed by close()) or an
    opened Backend (the caller's to close). `data_dir`: the folder of job state (checkpoints,
    dead letters) beside an opened Backend; BackendOptions carry their own.
    `models`: the encoders of a new index (default: the bundled ones); an existing index uses the
    ones its manifest names, and models given that differ from it are a ConfigError.
    `encoders`: document encoders already loaded, in place of `models`.
    `representation`: how a new index stores token vectors (default: the tuned one); an
    existing index keeps the one it was built with.
    `quality`: the pipelines' settings (default: the tuned ones).
    """

    def __init__(
        self,
        name: str,
        *,
        backend: BackendOptions | Backend = BackendOptions(),
        data_dir: str | Path | None = None,
        models: ModelChoice | None = None,
        encoders: DocumentEncoders | None = None,
        representation: str | None = None,
        text_language: str = "english",
        quality: QualitySettings | None = None,
        shards: int | None = None,
        replicas: int | None = None,
    ) -> None:
        self.name = name
        # options: how another process (a Ray worker) reaches the same engine; None for a Backend given opened
        self.options: BackendOptions | None
        self.backend: Backend
        if isinstance(backend, str):
            raise ConfigError(f"backend={backend!r}: name the engine with BackendOptions({backend!r}, data_dir=…, url=…), or give an opened Backend")
        in_process = backend.kind == "edge" or (backend.kind == "qdrant" and not backend.url) if isinstance(backend, BackendOptions) else backend.name == "edge"
        if in_process and (shards not in (None, 1) or replicas not in (None, 0)):
            raise ConfigError("an in-process engine keeps an index in one shard: shards and replicas are for OpenSearch or a Qdrant server")
        if isinstance(backend, BackendOptions):
            if data_dir is not None and Path(data_dir) != backend.data_dir:
                raise ConfigError(f"two state folders given: data_dir={data_dir} and the backend options' {backend.data_dir}")
            self.options, self.backend, self.data_dir = backend, open_backend(backend), backend.data_dir
        else:
            self.options, self.backend, self.data_dir = None, backend, Path(data_dir or DEFAULT_DATA_DIR)
        self.quality = quality or QualitySettings()
        self._representation = self._representation_given = representation
        self.text_language = text_language
        self._sizes_given = (shards, replicas)
        self._sizes_found: tuple[int, int] | None = None
        self._requested = models
        self._models: ModelChoice | None = None
        self._given = encoders
        self._loaded = LoadedEncoders(documents=encoders)
        self._pipelines: dict[str, SearchPipeline] = {}  # at most one per name of PIPELINES
        self._idf_version: object = None
        self._idf_checked = 0.0

    @property
    def state_dir(self) -> Path:
        """Where this index's ingest jobs keep their checkpoint and dead letters."""
        return job_state_dir(self.data_dir, self.name)

    # -- models --------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any] | None:
        """The encoders recorded with the index (None before its first ingest)."""
        return read_manifest(self.backend, self.name)

    def models(self) -> ModelChoice:
        """The index's encoders: its manifest's; for a new index the ones given, else the bundled
        ones (read from the engine once; a ConfigError when the ones given differ)."""
        if self._models is None:
            self._models = self._resolve_models(self.manifest)
        return self._models

    def _resolve_models(self, manifest: Mapping[str, Any] | None) -> ModelChoice:
        if self._loaded.documents is None and manifest and self._requested not in (None, models_of(manifest)):
            # named otherwise than the manifest (a hub id for a folder, …): compare what they load
            self._loaded.documents = document_encoders(self._requested)  # type: ignore[arg-type]
        if self._loaded.documents is None:
            return models_of(manifest) if manifest else (self._requested or ModelChoice())
        sparse, multivector = self._loaded.documents
        own = encoders_manifest(sparse.manifest, multivector.manifest if multivector else None, self._spec(multivector))
        differences = manifest_differences(manifest, own) if manifest else []
        if differences:
            raise ConfigError(f"index {self.name!r} was built with other encoders: " + "; ".join(differences))
        return models_of(own)

    def document_encoders(self) -> DocumentEncoders:
        """The encoders of documents (loaded once)."""
        if self._loaded.documents is None:
            self._loaded.documents = document_encoders(self.models())
        return self._loaded.documents

    @property
    def representation(self) -> str:
        """How the index stores token vectors: the one given, else the one it was built with,
        else the tuned default (a built index cannot change it)."""
        if self._representation is None:
            self._representation = self._stored_representation() or default_representation()
        return self._representation

    def _stored_representation(self) -> str | None:
        """The representation the index was built with: its codec's, else its layout's (an index
        whose first batch was never written, or one without token vectors, has no codec)."""
        stored = self._stored_codec()
        if stored:
            return str(stored["representation"])
        try:
            return self.backend.spec(self.name).multivector_representation
        except IndexMissingError:
            return None

    def _stored_codec(self) -> dict[str, Any] | None:
        try:
            return self.backend.get_meta(self.name, CODEC_META)
        except IndexMissingError:
            return None

    def _spec(self, multivector: MultiVectorEncoder | None) -> IndexSpec:
        shards, replicas = self._sizes()
        return IndexSpec(
            name=self.name,
            multivector_dim=multivector.dim if multivector else None,
            multivector_representation=self.representation,
            text_language=self.text_language,
            shards=shards,
            replicas=replicas,
        )

    def _sizes(self) -> tuple[int, int]:
        """Shards and replicas: the ones given, else the existing index's (a resumed or later
        ingest need not repeat them), else one shard and no replica (read from the engine once)."""
        if self._sizes_found is None:
            shards, replicas = self._sizes_given
            if shards is None or replicas is None:
                try:
                    stored = self.backend.spec(self.name)
                    shards, replicas = shards if shards is not None else stored.shards, replicas if replicas is not None else stored.replicas
                except IndexMissingError:  # no index yet
                    pass
            self._sizes_found = (shards if shards is not None else 1, replicas if replicas is not None else 0)
        return self._sizes_found

    def spec(self) -> IndexSpec:
        """The layout a new ingest gives the index (its document encoders loaded)."""
        return self._spec(self.document_encoders()[1])

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
        runner: str = "local",
        workers: int = 2,
        address: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        lease_timeout: float = DEFAULT_LEASE_SECONDS,
    ) -> IngestSummary:
        """Encode and write `source` (a JSONL/BEIR/CSV/Parquet path, or records such as
        {"_id", "title", "text", …} dicts); bad records go to the dead-letter file.
        `runner="ray"`: on a Ray cluster (`address`, else a local one of `workers` CPUs).
        An engine unavailable for longer than `retry.seconds` stops the job (IngestError's
        cause: UnavailableError), resumable with `resume=True`; another job writing the index
        is refused (IndexBusyError), one that died is taken over after `lease_timeout` s."""
        if runner == "ray":
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
            )
            self._forget_queries()
            return summary
        if runner != "local":
            raise ConfigError(f"unknown ingest runner {runner!r}: use local or ray")
        sparse, multivector = self.document_encoders()
        job = IngestJob(
            self.backend,
            self._spec(multivector),
            sparse,
            sparse.model.tokenizer,
            multivector_encoder=multivector,
            state_dir=state_dir or self.state_dir,
            policy=policy,
            retry=retry,
            progress=progress,
            lease_timeout=lease_timeout,
        )
        summary = job.run(source, fmt=fmt, mapping=mapping, resume=resume)
        self._forget_queries()  # the IDF table and the codec were (re)written
        return summary

    def delete(self, doc_ids: Iterable[str], *, lease_timeout: float = DEFAULT_LEASE_SECONDS, batch: int = BatchPolicy().write_batch) -> DeleteSummary:
        """Remove documents: their passages, token vectors and share of the corpus statistics
        (refused with IndexBusyError while another job writes the index), `batch` documents at a
        time (one journal entry and one engine bulk each)."""
        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch}")
        statistics = CorpusStatistics(self.backend, self.name, self._tokenizer())
        with Lease(self.backend, self.name, "delete", timeout=lease_timeout):
            self._forget_finished_jobs()
            summary = delete_documents(self.backend, self.name, doc_ids, statistics, batch=batch)
        self._idf_version, self._idf_checked = None, 0.0  # re-read at the next search
        return summary

    def _forget_finished_jobs(self) -> None:
        """A finished checkpoint tells eval and the benches that the index holds that job's corpus:
        once a delete changes the index, none may say so any more (a stopped job's stays: it resumes)."""
        for name in JOB_CHECKPOINTS.values():
            path = self.state_dir / name
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(state, dict) and (state.get("done") is True or state.get("finished") is True):
                path.unlink(missing_ok=True)

    def _tokenizer(self) -> TextTokenizer:
        """The sparse model's tokenizer (all a delete needs of the model)."""
        return self._loaded_tokenizer() or sparse_tokenizer(self.models().sparse)

    def _loaded_tokenizer(self) -> TextTokenizer | None:
        """The sparse model's tokenizer when an encoder holding it is loaded already."""
        if self._loaded.documents is not None:
            return self._loaded.documents[0].model.tokenizer
        if self._loaded.idf_query is not None:
            return self._loaded.idf_query.tokenizer
        return None

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
        encoder = self._loaded.idf_query
        now = time.monotonic()
        if encoder is None or encoder.own_table or now - self._idf_checked < every_s:
            return  # a model's own IDF file does not follow the corpus
        self._idf_checked = now
        version, table = index_idf(self.backend, self.name, encoder.vocab, unless_version=self._idf_version)
        if table is not None:
            encoder.idf, self._idf_version = table, version

    def pipeline(self, name: str = DEFAULT_PIPELINE) -> SearchPipeline:
        """One of PIPELINES over this index, with this index's settings, built once per name (k is
        an argument of its search: at most len(PIPELINES) pipelines, each with one thread)."""
        if name not in self._pipelines:
            shape = PipelineShape.of(name)
            self._pipelines[name] = build_pipeline(
                name,
                self.backend,
                self.name,
                idf_encoder=self.idf_encoder() if shape.first_stage != "bm25" and name != "sparse-model" else None,
                multivector=self.query_multivector_encoder() if shape.reranked else None,
                model_encoder=self.sparse_query_encoder() if name == "sparse-model" else None,
                quality=self.quality,
                codec=self.codec() if shape.reranked else None,
            )
        return self._pipelines[name]

    def pipelines(self) -> list[str]:
        """The names of PIPELINES this index can run (the reranked ones need its token vectors
        and their codec, stored by its first written batch)."""
        reranks = self.models().multivector is not None and self._stored_codec() is not None
        return [n for n in PIPELINES if reranks or not PipelineShape.of(n).reranked]

    def codec(self) -> MultiVectorCodec:
        """The codec the index's token vectors were written with (read once)."""
        if self._loaded.codec is None:
            self._loaded.codec = index_codec(self.backend, self.name)
        return self._loaded.codec

    def idf_encoder(self) -> IdfQueryEncoder:
        """The inference-free query encoder: the model's IDF file, else the corpus's stored with the index."""
        if self._loaded.idf_query is None:
            self._idf_checked = time.monotonic()
            self._loaded.idf_query, self._idf_version = idf_query_encoder(self.backend, self.name, self.models().sparse, tokenizer=self._loaded_tokenizer())
        return self._loaded.idf_query

    def query_multivector_encoder(self) -> MultiVectorEncoder:
        """The token-vector encoder of queries (the documents' one, when loaded already)."""
        models = self.models()
        if models.multivector is None:
            raise ConfigError(f"index {self.name!r} stores no token vectors: a rerank pipeline needs them")
        if self._loaded.documents is not None and self._loaded.documents[1] is not None:
            return self._loaded.documents[1]
        if self._loaded.multivector_query is None:
            self._loaded.multivector_query = multivector_encoder(models)
        return self._loaded.multivector_query

    def sparse_query_encoder(self) -> SparseQueryEncoder:
        """The sparse model run on queries (the `sparse-model` pipeline)."""
        if self._loaded.sparse_query is None:
            models = self.models()
            self._loaded.sparse_query = SparseQueryEncoder(models.sparse, options=OnnxOptions(quantize=models.quantize))
        return self._loaded.sparse_query

    def _forget_queries(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()
        self._loaded.idf_query = self._loaded.codec = None

    # -- lifecycle -----------------------------------------------------------------------------
    def count(self) -> int:
        """Passages stored."""
        return self.backend.count(self.name)

    def drop(self) -> None:
        """Delete the index and everything stored with it."""
        self._forget_queries()
        self.backend.drop_index(self.name)
        # the next ingest may build it with other models or codes: nothing loaded for this one stays
        self._models, self._representation = None, self._representation_given
        self._loaded = LoadedEncoders(documents=self._given)

    def close(self) -> None:
        self._forget_queries()
        if self.options is not None:
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


__all__ = ["DEFAULT_PIPELINE", "Index", "LoadedEncoders", "models_of"]
