"""The `lsrkit` command line: a thin layer over `Index`, the eval and the bench functions.

Every command prints one JSON object with --json (else a table or the indented JSON); an
LsrError anywhere is reported once, by main(), with exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lsrkit.core.config import DEFAULT_DATA_DIR, DEFAULT_LEASE_SECONDS, BatchPolicy
from lsrkit.core.errors import ConfigError, LsrError

if TYPE_CHECKING:
    from lsrkit.factory import BackendOptions, ModelChoice

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Learned sparse retrieval + multivector reranking on the engines you run.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: ratios against baselines measured in the same run.")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="edge (Qdrant Edge, embedded), qdrant or opensearch")]
IndexOpt = Annotated[str, typer.Option("--index", "-i", help="index / collection name")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="folder for Qdrant Edge / local-mode data and job state")]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="server URL; an OpenSearch cluster's nodes comma-separated (credentials from the environment, never here)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
DatasetOpt = Annotated[Path, typer.Option("--dataset", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")]
RepresentationOpt = Annotated[
    str | None,
    typer.Option(
        "--multivector-representation",
        help="how a new index stores token vectors: [poolN-]int8|4bit|2bit|1bit|res4bit|res2bit|res1bit|pq4bit|pq2bit|pq1bit|rot4bit|rot2bit|rot1bit[-dK] (-dK: at most K turned dimensions coded; default: the tuned one; an existing index keeps its own)",
    ),
]
SparseModelOpt = Annotated[
    str | None, typer.Option("--sparse-model", help="document encoder: registry name, hub id or local folder (default: the index's, else splade-tiny)")
]
MultiVectorModelOpt = Annotated[
    str | None, typer.Option("--multivector-model", help="token-vector encoder: registry name, hub id or local folder (default: the index's, else minilm-l6)")
]
QuantizeOpt = Annotated[str | None, typer.Option("--quantize", help="sparse model's ONNX quantization: none | int8 | int8-per-channel")]
MultiVectorQuantizeOpt = Annotated[
    str | None, typer.Option("--multivector-quantize", help="token-vector model's quantization: none | int8 | int8-per-channel | int8-attention")
]
ShardsOpt = Annotated[int | None, typer.Option("--shards", help="OpenSearch / Qdrant server: primary shards of a new index (default: the index's, else 1)")]
ReplicasOpt = Annotated[
    int | None, typer.Option("--replicas", help="OpenSearch / Qdrant server: replicas of each shard of a new index (default: the index's, else 0)")
]
LeaseOpt = Annotated[float, typer.Option(help="seconds after which the write lease of a job that died is taken over")]


def _emit(result: dict[str, Any], json_out: bool, render: Callable[[dict[str, Any]], None] | None = None) -> None:
    """The one output path: one JSON line with --json, else `render` (default: indented JSON)."""
    if json_out or render is None:
        print(json.dumps(result) if json_out else json.dumps(result, indent=2))
    else:
        render(result)


def _options(backend: str, data_dir: Path, url: str | None) -> BackendOptions:
    from lsrkit.factory import BackendOptions

    return BackendOptions(kind=backend, data_dir=data_dir, url=url)  # type: ignore[arg-type]  # (the CA bundle: LSRKIT_CA_CERTS)


def _models(
    sparse: str | None, multivector: str | None, quantize: str | None, multivector_quantize: str | None, *, with_multivector: bool = True
) -> ModelChoice | None:
    """The models asked for, or None when none was named (the index's own, else the bundled ones)."""
    from lsrkit.factory import ModelChoice

    if sparse is None and multivector is None and quantize is None and multivector_quantize is None and with_multivector:
        return None
    defaults = ModelChoice()
    return ModelChoice(
        sparse=sparse or defaults.sparse,
        multivector=(multivector or defaults.multivector) if with_multivector else None,
        quantize=quantize or defaults.quantize,  # type: ignore[arg-type]
        multivector_quantize=multivector_quantize or defaults.multivector_quantize,  # type: ignore[arg-type]
    )


@app.command()
def quickstart(json_out: JsonOpt = False, data_dir: DataDirOpt = DEFAULT_DATA_DIR / "quickstart", fresh: bool = False) -> None:
    """Ingest the bundled SciFact subset into Qdrant Edge and compare sparse vs sparse+rerank."""
    from lsrkit.quickstart import run_quickstart

    _emit(run_quickstart(data_dir, fresh=fresh), json_out, _print_quickstart)


def _print_quickstart(result: dict[str, Any]) -> None:
    out = Console()
    out.print(f"Ingested {result['docs_ingested']} documents ({result['index_points']} passages) into Qdrant Edge at {result['data_dir']}")
    table = Table("pipeline", "nDCG@10", "p50 ms")
    table.add_row("sparse (inference-free)", f"{result['ndcg10_sparse']:.4f}", f"{result['query_ms_p50_sparse']:.1f}")
    table.add_row("sparse + MaxSim rerank", f"{result['ndcg10_rerank']:.4f}", f"{result['query_ms_p50']:.1f}")
    out.print(table)
    example = result["example"]
    out.print(f"Example query: {example['query']}  (judged relevant: {', '.join(example['relevant']) or 'none'})")
    for rank, hit in enumerate(example["hits"], 1):
        mark = "[green]✓ relevant[/green]" if hit["relevant"] else "          "
        was = hit["first_stage_rank"]
        moved = f"first stage #{was}" if was else f"first stage: below {example['first_stage_depth']}"
        out.print(f"  {rank}. {mark} [{hit['id']}] {hit['score']:.3f}  {hit['title'][:70]}  ({moved})")


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="registry name, hub id or local path")],
    quantize: Annotated[str, typer.Option(help="none | int8 | int8-per-channel")] = "int8-per-channel",
    kind: Annotated[str, typer.Option(help="sparse | multivector (for paths and hub ids not in the registry)")] = "sparse",
    out: Annotated[Path | None, typer.Option(help="target folder (default: the lsrkit cache)")] = None,
) -> None:
    """Export a model to ONNX with optimum, check it against torch, quantize it."""
    from lsrkit.core.config import OnnxOptions
    from lsrkit.encoders import export_model, resolve

    exported = export_model(resolve(model, kind), OnnxOptions(quantize=quantize), out)  # type: ignore[arg-type]
    _emit({"directory": str(exported.directory), **exported.manifest}, False)


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="JSONL file, BEIR folder, CSV/TSV or Parquet")],
    backend: BackendOpt = "edge",
    index: IndexOpt = "lsrkit",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    sparse_model: SparseModelOpt = None,
    multivector_model: MultiVectorModelOpt = None,
    quantize: QuantizeOpt = None,
    multivector_quantize: MultiVectorQuantizeOpt = None,
    representation: RepresentationOpt = None,
    shards: ShardsOpt = None,
    replicas: ReplicasOpt = None,
    text_language: Annotated[str, typer.Option(help="BM25's stemming and stopwords: english, french, … or none")] = "english",
    fmt: Annotated[str, typer.Option("--format", help="auto | jsonl | beir | csv | parquet")] = "auto",
    resume: Annotated[bool, typer.Option(help="continue after the last acknowledged batch")] = False,
    id_field: str = "_id",
    title_field: str = "title",
    text_field: str = "text",
    write_batch: Annotated[int, typer.Option(help="passages per engine bulk")] = BatchPolicy().write_batch,
    multivector: Annotated[bool, typer.Option(help="also encode and store token vectors for the rerank stage")] = True,
    runner: Annotated[str, typer.Option(help="local (in-process) or ray (OpenSearch or a Qdrant server)")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster: auto or ray://host:port (default: a local one)")] = None,
    workers: Annotated[int, typer.Option(help="Ray actors encoding and writing")] = 2,
    retry_for: Annotated[
        float, typer.Option(help="seconds an unavailable, overloaded or write-blocked engine is retried before the job stops (exit 2, --resume finishes it)")
    ] = 60.0,
    lease_timeout: LeaseOpt = DEFAULT_LEASE_SECONDS,
    json_out: JsonOpt = False,
) -> None:
    """Encode a corpus (sparse + multivector) and write it to the engine, resumably."""
    from lsrkit.index import Index
    from lsrkit.ingest import FieldMapping
    from lsrkit.ingest.retry import RetryPolicy

    models = _models(sparse_model, multivector_model, quantize, multivector_quantize, with_multivector=multivector)
    with Index(
        index,
        backend=_options(backend, data_dir, url),
        models=models,
        representation=representation,
        text_language=text_language,
        shards=shards,
        replicas=replicas,
    ) as target:
        summary = target.ingest(
            source,
            resume=resume,
            fmt=fmt,  # type: ignore[arg-type]
            mapping=FieldMapping(id=id_field, title=title_field, text=text_field),
            policy=BatchPolicy(write_batch=write_batch),
            runner=runner,
            workers=workers,
            address=address,
            retry=RetryPolicy(seconds=retry_for),
            lease_timeout=lease_timeout,
        )
    _emit(summary.as_dict(), json_out, _print_ingest)


def _print_ingest(s: dict[str, Any]) -> None:
    console.print(
        f"read {s['read']} · documents {s['documents']} · passages written {s['passages_written']} · rejected {s['rejected']} "
        f"(dead letters: {s['dead_letter']}) · {s['seconds']:.1f}s · {s['docs_per_second']:.1f} docs/s"
    )


def _document_ids(ids: str | None, from_file: Path | None) -> list[str]:
    if (ids is None) == (from_file is None):
        raise ConfigError("name the documents with --ids or with --from FILE (one of them)")
    if ids is not None:
        return [i.strip() for i in ids.split(",") if i.strip()]
    try:
        return [i.strip() for i in Path(from_file).read_text(encoding="utf-8").splitlines() if i.strip()]  # type: ignore[arg-type]
    except OSError as exc:
        raise ConfigError(f"cannot read the ids file {from_file}: {exc.strerror}") from exc


@app.command()
def delete(
    index: IndexOpt = "lsrkit",
    backend: BackendOpt = "edge",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    ids: Annotated[str | None, typer.Option("--ids", help="comma-separated document ids")] = None,
    from_file: Annotated[Path | None, typer.Option("--from", help="a file of document ids, one per line")] = None,
    lease_timeout: LeaseOpt = DEFAULT_LEASE_SECONDS,
    batch: Annotated[int, typer.Option(min=1, help="documents per step (one journal entry and engine bulk each)")] = BatchPolicy().write_batch,
    json_out: JsonOpt = False,
) -> None:
    """Delete documents: their passages, token vectors and share of the corpus statistics."""
    from lsrkit.index import Index

    wanted = _document_ids(ids, from_file)
    with Index(index, backend=_options(backend, data_dir, url)) as target:
        summary = target.delete(wanted, lease_timeout=lease_timeout, batch=batch)
    result = {"documents": summary.documents, "passages": summary.passages, "not_found": summary.not_found}
    _emit(
        result,
        json_out,
        lambda r: console.print(f"deleted {r['documents']} documents ({r['passages']} passages); not in the index: {len(r['not_found'])}"),
    )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="the query")],
    backend: BackendOpt = "edge",
    index: IndexOpt = "lsrkit",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    pipeline: Annotated[str, typer.Option(help="bm25 | sparse-idf | sparse-model | sparse-idf+rerank | hybrid | hybrid+rerank (+ -pruned)")] = "hybrid+rerank",
    k: int = 10,
    json_out: JsonOpt = False,
) -> None:
    """Search an index and print a table (rank, score, id, title, snippet). The models are the index's own."""
    from lsrkit.index import Index

    with Index(index, backend=_options(backend, data_dir, url)) as target:
        result = target.query(text, pipeline=pipeline, k=k)
        settings = target.pipeline(pipeline).describe()
    hits = [
        {"rank": r, "id": h.id, "score": h.score, "title": h.title, "text": h.text, "stage_scores": dict(h.stage_scores)} for r, h in enumerate(result.hits, 1)
    ]
    _emit({"query": text, "pipeline": pipeline, "settings": settings, "timings_ms": result.timings_ms, "hits": hits}, json_out, _print_hits)


def _print_hits(result: dict[str, Any]) -> None:
    table = Table("rank", "score", "id", "title", "snippet", title=f"{result['pipeline']} · {result['timings_ms'].get('total', 0):.1f} ms")
    for hit in result["hits"]:
        table.add_row(str(hit["rank"]), f"{hit['score']:.4f}", hit["id"], hit["title"][:50], hit["text"][:80].replace("\n", " "))
    Console().print(table)


@app.command()
def serve(
    backend: BackendOpt = "edge",
    index: IndexOpt = "lsrkit",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    host: Annotated[str, typer.Option(help="interface to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes, each with its own models (Qdrant Edge: 1)")] = 1,
    max_in_flight: Annotated[int | None, typer.Option(help="blocking calls at once per worker (default: the cores)")] = None,
    max_queue: Annotated[int, typer.Option(help="requests waiting for a slot; past it: 429 at once")] = 32,
    queue_timeout_ms: Annotated[int, typer.Option(help="a request waiting longer gets 429")] = 1000,
    max_k: Annotated[int, typer.Option(help="largest k a search may ask")] = 100,
    max_body_bytes: Annotated[int, typer.Option(help="larger request bodies get 413")] = 1_000_000,
    access_log: Annotated[bool, typer.Option(help="uvicorn's access log")] = True,
    insecure: Annotated[bool, typer.Option(help="serve a host other machines reach without an API key (on purpose)")] = False,
) -> None:
    """Serve one index over HTTP: /search, /rerank, /encode/sparse, /encode/query, /pipelines, /healthz, /metrics.
    Clients send the key of LSRKIT_API_KEY; on a host other than loopback the key is required
    (--insecure to serve open on purpose)."""
    try:
        from lsrkit.service.run import serve as run_service
        from lsrkit.service.settings import ServiceSettings, api_key_from_env, check_exposure
    except ImportError as exc:  # the serve extra is missing
        raise ConfigError(f"{exc}: install lsrkit[serve]") from exc

    limits = {"max_in_flight": max_in_flight} if max_in_flight else {}
    settings = ServiceSettings(
        index=index,
        backend=_options(backend, data_dir, url),
        host=host,
        port=port,
        workers=workers,
        max_queue=max_queue,
        queue_timeout_ms=queue_timeout_ms,
        max_k=max_k,
        max_body_bytes=max_body_bytes,
        **limits,
    )
    check_exposure(settings, api_key_from_env(), insecure=insecure)
    if insecure and not api_key_from_env():
        console.print(
            f"[bold red]WARNING: serving {settings.host}:{settings.port} with no API key (--insecure): anyone who reaches it can query the index[/bold red]"
        )
    run_service(settings, access_log=access_log)


@app.command("eval")
def evaluate(
    dataset: DatasetOpt,
    backend: BackendOpt = "edge",
    index: Annotated[str | None, typer.Option(help="index name (default: from the dataset folder)")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    sparse_model: SparseModelOpt = None,
    multivector_model: MultiVectorModelOpt = None,
    quantize: QuantizeOpt = None,
    multivector_quantize: MultiVectorQuantizeOpt = None,
    representation: RepresentationOpt = None,
    shards: ShardsOpt = None,
    replicas: ReplicasOpt = None,
    split: str = "test",
    pipelines: Annotated[str | None, typer.Option(help="comma-separated; default: all")] = None,
    report: Annotated[Path | None, typer.Option(help="write <report>.md and <report>.png")] = None,
    reingest: bool = False,
    json_out: JsonOpt = False,
) -> None:
    """Ingest (or reuse) a BEIR dataset and score every pipeline: nDCG@10, Recall@100, MRR@10, latency."""
    from lsrkit.eval_command import run_eval

    result = run_eval(
        dataset,
        _options(backend, data_dir, url),
        index=index,
        models=_models(sparse_model, multivector_model, quantize, multivector_quantize),
        split=split,
        pipelines=pipelines.split(",") if pipelines else None,
        report=report,
        reingest=reingest,
        representation=representation,
        shards=shards,
        replicas=replicas,
    )
    _emit(result, json_out, lambda r: Console().print(r["markdown"]))


@app.command()
def tune(
    dataset: DatasetOpt,
    split: str = "train",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    write_defaults: Annotated[bool, typer.Option(help="write the chosen settings into lsrkit's defaults file ($LSRKIT_TUNED, else core/tuned.json)")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Choose fusion, κ and rerank interpolation on a train split (Qdrant Edge index of the dataset)."""
    from lsrkit.tuning import run_tune

    _emit(run_tune(dataset, split=split, data_dir=data_dir, write_defaults=write_defaults), json_out)


# -- benchmarks: each prints its result; the figures in reports/ come from these commands --------


@bench_app.command("encode")
def bench_encode(
    dataset: DatasetOpt,
    passages: int = 200,
    batch_sizes: Annotated[str, typer.Option(help="batch sizes for the memory sweep")] = "1,8,32",
    json_out: JsonOpt = False,
) -> None:
    """Passages/s of torch eager vs ONNX fp32 vs ONNX int8, top-10 term overlap, peak RSS per batch size."""
    from lsrkit.bench.encode import run

    _emit(run(passages=passages, dataset=dataset, batch_sizes=[int(b) for b in batch_sizes.split(",")]), json_out)


@bench_app.command("ingest")
def bench_ingest(
    dataset: DatasetOpt,
    documents: int = 200,
    runner: Annotated[str, typer.Option(help="local: encode-only vs ingest into Qdrant Edge; ray: local vs Ray into OpenSearch")] = "local",
    workers: Annotated[str, typer.Option(help="Ray worker counts (--runner ray)")] = "1,2",
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Encode-only docs/s vs full ingest docs/s into Qdrant Edge; or, with --runner ray, the local job vs Ray workers into OpenSearch."""
    from lsrkit.bench.ingest import run, run_ray

    if runner not in ("local", "ray"):
        raise ConfigError(f"unknown runner {runner!r}: use local or ray")
    if runner == "ray":
        _emit(run_ray(documents=documents, dataset=dataset, workers=[int(w) for w in workers.split(",")], url=url), json_out)
    else:
        _emit(run(documents=documents, dataset=dataset), json_out)


@bench_app.command("query")
def bench_query(
    dataset: DatasetOpt,
    backend: BackendOpt = "opensearch",
    index: Annotated[str | None, typer.Option(help="index of the dataset to time (default: from the dataset folder; built when missing)")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Query latency of every pipeline (its tuned settings) divided by BM25's, same engine, warm."""
    from lsrkit.bench.query import run

    _emit(run(dataset=dataset, backend_kind=backend, index=index, data_dir=data_dir, url=url), json_out)


def _int_list(value: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give comma-separated whole numbers, e.g. 1,3", param_hint=option) from None


@bench_app.command("shards")
def bench_shards(
    dataset: DatasetOpt,
    url: UrlOpt = None,
    shards: Annotated[str, typer.Option(help="comma-separated primary shard counts; the first is the one the others are compared with")] = "1,3",
    replicas: Annotated[int, typer.Option(help="replicas of every shard")] = 1,
    pipelines: Annotated[str, typer.Option(help="comma-separated pipelines")] = "bm25,sparse-idf,hybrid,hybrid+rerank",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    json_out: JsonOpt = False,
) -> None:
    """nDCG@10 and latency of the same corpus in 1 and N shards of one OpenSearch cluster (BM25 scores with per-shard statistics)."""
    from lsrkit.bench.shards import run

    counts = _int_list(shards, "--shards")
    _emit(run(dataset=dataset, url=url, shards=counts, replicas=replicas, pipelines=tuple(pipelines.split(",")), data_dir=data_dir), json_out)


@bench_app.command("scale")
def bench_scale(
    dataset: DatasetOpt,
    backend: BackendOpt = "edge",
    sizes: Annotated[
        str, typer.Option(help="comma-separated passage counts, increasing: each size is built by appending to the previous one")
    ] = "10000,100000,1000000",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    queries: Annotated[int, typer.Option(help="test queries timed (the first N of the split)")] = 300,
    sample: Annotated[int, typer.Option(help="real passages encoded once (cached under <data-dir>/bench-scale/) whose statistics the corpus takes")] = 1000,
    seed: int = 0,
    write_batch: Annotated[int | None, typer.Option(help="passages per Backend.write call (default: ingest's bulk)")] = None,
    keep_index: Annotated[bool, typer.Option(help="keep the synthetic index after the run (default: dropped)")] = False,
    measure_kept: Annotated[bool, typer.Option(help="build nothing: time the pipelines on the index an earlier --keep-index run left")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Cost of bm25, sparse-idf, sparse-idf+rerank, hybrid+rerank as the corpus grows: synthetic passages with a real corpus' statistics, written through the adapter."""
    from lsrkit.bench import scale

    if measure_kept:
        _emit(scale.measure_kept(dataset=dataset, backend_kind=backend, data_dir=data_dir, url=url, queries=queries), json_out)
        return
    result = scale.run(
        dataset=dataset,
        backend_kind=backend,
        sizes=sizes,
        data_dir=data_dir,
        url=url,
        queries=queries,
        sample=sample,
        seed=seed,
        write_batch=write_batch,
        keep_index=keep_index,
    )
    _emit(result, json_out)


@bench_app.command("serve")
def bench_serve(
    dataset: Annotated[Path, typer.Option("--dataset", help="BEIR folder whose queries.jsonl is sent")],
    backend: BackendOpt = "opensearch",
    index: Annotated[str | None, typer.Option("--index", "-i", help="an ingested index (default: the dataset's, ingested when missing)")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    url: UrlOpt = None,
    concurrency: Annotated[str, typer.Option(help="comma-separated client concurrencies")] = "1,4,16",
    queries: Annotated[int, typer.Option(help="queries per phase (the first N of queries.jsonl)")] = 200,
    overload_concurrency: int = 64,
    max_queue: Annotated[int, typer.Option(help="the service's --max-queue")] = 32,
    queue_timeout_ms: Annotated[int, typer.Option(help="the service's --queue-timeout-ms")] = 1000,
    max_in_flight: Annotated[int | None, typer.Option(help="the service's --max-in-flight (default: its own, the cores)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Queries/s and p50/p99 through `lsrkit serve` vs the same pipelines in-process vs BM25 straight to OpenSearch; then an overload phase."""
    from lsrkit.bench.serve import run

    result = run(
        dataset=dataset,
        backend_kind=backend,
        data_dir=data_dir,
        url=url,
        index=index,
        concurrency=tuple(int(c) for c in concurrency.split(",")),
        queries=queries,
        overload_concurrency=overload_concurrency,
        max_queue=max_queue,
        queue_timeout_ms=queue_timeout_ms,
        max_in_flight=max_in_flight,
    )
    _emit(result, json_out)


@bench_app.command("rerank")
def bench_rerank(
    dataset: DatasetOpt,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    write_defaults: Annotated[bool, typer.Option(help="write the chosen α/β into lsrkit's defaults file ($LSRKIT_TUNED, else core/tuned.json)")] = False,
    json_out: JsonOpt = False,
) -> None:
    """α/β pruning vs full rerank: sweep on train, report the chosen setting on test."""
    from lsrkit.bench.rerank import run

    _emit(run(dataset=dataset, data_dir=data_dir, write_defaults=write_defaults), json_out)


@bench_app.command("multivector")
def bench_multivector(
    dataset: DatasetOpt,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    representations: Annotated[str | None, typer.Option(help="comma-separated subset (int8 is always the reference)")] = None,
    write_defaults: Annotated[
        bool, typer.Option(help="write the chosen representation into lsrkit's defaults file ($LSRKIT_TUNED, else core/tuned.json)")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Size vs quality of each token-vector representation (hybrid+rerank, train and test); picks the default on train."""
    from lsrkit.bench.multivector import run

    names = tuple(representations.split(",")) if representations else None
    _emit(run(dataset=dataset, data_dir=data_dir, representations=names, write_defaults=write_defaults), json_out)


@bench_app.command("peers")
def bench_peers(
    dataset: DatasetOpt,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    split: Annotated[str, typer.Option(help="qrels split whose queries are run")] = "test",
    queries: Annotated[int | None, typer.Option(help="the first N queries of the split (default: all)")] = None,
    plaid: Annotated[bool, typer.Option(help="run PLAID (fast-plaid, in its own environment: made by scripts/setup-peers-env.sh when missing)")] = True,
    peers_env: Annotated[Path | None, typer.Option(help="PLAID's environment (default: .venv-peers in the repo)")] = None,
    plaid_nbits: Annotated[str, typer.Option(help="PLAID's residual bits, comma-separated: one index built for each (4 is fast-plaid's default)")] = "2,4",
    json_out: JsonOpt = False,
) -> None:
    """lsrkit's reranked pipelines against PLAID, MUVERA and exhaustive MaxSim on the same token vectors: quality, latency, size, build time."""
    from lsrkit.bench.peers import PEERS_ENV, PLAID_SETTINGS, run, without_rankings

    nbits = sorted(set(_int_list(plaid_nbits, "--plaid-nbits")))
    if not set(nbits) <= {1, 2, 4, 8}:
        raise typer.BadParameter(f"{plaid_nbits!r}: PLAID codes residuals in 1, 2, 4 or 8 bits", param_hint="--plaid-nbits")
    settings = {**PLAID_SETTINGS, "nbits": nbits}
    result = run(dataset=dataset, data_dir=data_dir, split=split, queries=queries, plaid=plaid, peers_env=peers_env or PEERS_ENV, plaid_settings=settings)
    _emit(without_rankings(result), json_out)


@bench_app.command("update")
def bench_update(dataset: DatasetOpt, data_dir: DataDirOpt = DEFAULT_DATA_DIR, json_out: JsonOpt = False) -> None:
    """An update of 1 % of the dataset (every 100th document ingested again) into its built Edge index: seconds and docs/s."""
    from lsrkit.bench.update import run

    _emit(run(dataset=dataset, data_dir=data_dir), json_out)


@bench_app.command("bm25-drift")
def bench_bm25_drift(dataset: DatasetOpt, split: str = "test", json_out: JsonOpt = False) -> None:
    """nDCG@10 of Qdrant's BM25 when the mean length it keeps is off from the corpus's (a corpus grown or shrunk since its build)."""
    from lsrkit.bench.bm25_drift import run

    _emit(run(dataset=dataset, split=split), json_out)


@bench_app.command("faults")
def bench_faults(
    dataset: DatasetOpt,
    scenarios: Annotated[str | None, typer.Option(help="comma-separated subset")] = None,
    port: Annotated[int, typer.Option(help="the throwaway node's port (+10: the 429 node's; -20 to -18: the three-node cluster's)")] = 9280,
    json_out: JsonOpt = False,
) -> None:
    """Ingest under faults (malformed records, killed job, killed OpenSearch or one node of a cluster, 429s): what survived."""
    from lsrkit.bench.faults import run

    _emit(run(dataset=dataset, port=port, scenarios=scenarios.split(",") if scenarios else None), json_out)


def main() -> None:  # pragma: no cover
    # opensearch-py logs every 404 (a meta document not written yet) and every retried request as
    # a warning; what matters reaches the user as lsrkit's own error
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    try:
        app()
    except LsrError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":  # python -m lsrkit.cli
    main()
