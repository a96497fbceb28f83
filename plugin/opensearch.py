"""OpenSearchBackend (opensearch-py): `rank_features` sparse vectors, BM25, binary multivectors.

Layout of an index: `title`/`text` as BM25 text fields, the learned sparse vector as
`rank_features` (token strings as feature names, see feature_names.py), the compact token vectors
as a binary doc-values field (their one copy), metadata as keywords. An exact dot product is a
`bool.should` of `rank_feature` queries with the linear function and each query weight as boost.
Small JSON documents (the IDF statistics, the multivector codec) live in the `lsrkit-meta` index.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConflictError, ConnectionTimeout, TransportError
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from lsrkit.core.config import IndexSpec, validate_index_name
from lsrkit.core.errors import BackendError, ConfigError, IndexExistsError, IndexMissingError, UnavailableError
from lsrkit.core.types import Hit, SparseVector
from lsrkit.encoders.registry import resolve
from lsrkit.encoders.text import TextTokenizer
from lsrkit.plugin.base import EncodedRecord, Filters, Retrieval, Retrieved, WriteResult, check_layout, completed_hits, filter_field, passage_of, same_meta
from lsrkit.plugin.code_cache import CodeCache, code_digest
from lsrkit.plugin.feature_names import to_feature
from lsrkit.plugin.index_meta import read_manifest

META_INDEX = "lsrkit-meta"
MV_FIELD = "mv"
MV_DIGEST_FIELD = "mv_digest"  # the codes' content digest: what a CodeCache checks its copy against
BODY_FIELD = "body"  # title and text in one analyzed field: BM25 over the passage as a whole


def node_urls(url: str) -> list[str]:
    """The nodes named by `url`: one URL, or several comma-separated (the nodes of a cluster).

    >>> node_urls("http://127.0.0.1:9200, http://127.0.0.1:9201")
    ['http://127.0.0.1:9200', 'http://127.0.0.1:9201']
    """
    urls = [u.strip() for u in url.split(",") if u.strip()]
    if not urls:
        raise ConfigError(f"no OpenSearch URL in {url!r}")
    if len({u.startswith("https://") for u in urls}) > 1:
        raise ConfigError(f"the nodes of {url!r} mix http and https")
    return urls


def client_from_env(url: str, *, ca_certs: str | None = None, timeout: float = 30.0) -> OpenSearch:
    """An OpenSearch client of the node or nodes `url` names (comma-separated). Credentials only
    from the environment: LSRKIT_OPENSEARCH_USER and LSRKIT_OPENSEARCH_PASSWORD (basic auth) or
    LSRKIT_OPENSEARCH_API_KEY; a CA bundle from `ca_certs` or LSRKIT_CA_CERTS."""
    user = os.environ.get("LSRKIT_OPENSEARCH_USER")
    password = os.environ.get("LSRKIT_OPENSEARCH_PASSWORD")
    api_key = os.environ.get("LSRKIT_OPENSEARCH_API_KEY")
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else None
    ca = ca_certs or os.environ.get("LSRKIT_CA_CERTS")
    hosts = node_urls(url)
    secure = hosts[0].startswith("https://")
    return OpenSearch(
        hosts=hosts,
        http_auth=(user, password) if user and password else None,
        headers=headers,
        use_ssl=secure,
        verify_certs=secure,
        ca_certs=ca,
        timeout=timeout,
        # The transport retries a request whose connection failed (refused, reset) on the next
        # node and skips the failed node for a while (60 s, doubling); a bulk's 429 items are
        # retried by streaming_bulk, any other failed request by the caller (one layer each, see
        # write). One node: no retry here.
        max_retries=len(hosts) - 1,
        retry_on_status=(),
        retry_on_timeout=False,
    )


def rank_feature_query(query: SparseVector, vocab_lookup: Sequence[str], field: str = "sparse") -> dict[str, Any]:
    """The exact dot product as a bool.should of linear rank_feature clauses."""
    clauses = [
        {"rank_feature": {"field": f"{field}.{to_feature(vocab_lookup[i])}", "linear": {}, "boost": float(w)}}
        for i, w in zip(query.ids.tolist(), query.weights.tolist())
        if w > 0 and vocab_lookup[i]
    ]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def bm25_query(text: str) -> dict[str, Any]:
    """The BM25 run lsrkit sends (also what a bench sends straight to the engine as its baseline)."""
    return {"match": {BODY_FIELD: text}}


def _filter_clauses(filters: Filters | None) -> list[dict[str, Any]]:
    return [{"term": {filter_field(k): v}} for k, v in (filters or {}).items()]


MAX_REQUEST_BYTES = 100 * 1024 * 1024  # OpenSearch's default http.max_content_length


class OpenSearchBackend:
    """One OpenSearch index per lsrkit index, through an injected client."""

    name = "opensearch"
    needs_bm25_mean_length = False  # the engine keeps its own length statistics
    reads_hold_gil = False  # HTTP: the GIL is free while the cluster answers

    def __init__(
        self,
        client: OpenSearch,
        *,
        vocab: Sequence[str] | None = None,
        max_retries_429: int = 8,
        initial_backoff: float = 0.25,
        max_backoff: float = 8.0,
        code_cache: CodeCache | None = None,
    ) -> None:
        self.client = client
        # candidates' codes read once are kept here and checked by digest (CodeCache(0): none kept)
        self.code_cache = code_cache if code_cache is not None else CodeCache()
        self.vocab = list(vocab) if vocab is not None else None  # given: every index's; else each index's manifest names it
        self._vocabs: dict[str, list[str]] = {}
        self.max_retries_429 = max_retries_429
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff

    def _vocab(self, index: str) -> list[str]:
        """The token strings of the index's sparse model ids (rank_features are keyed by token):
        the vocabulary given, else the tokenizer of the model the index's manifest names (the
        manifest is the index's one record of its models: Index.models() reads the same)."""
        if self.vocab is not None:
            return self.vocab
        if index not in self._vocabs:
            manifest = read_manifest(self, index)
            if not manifest:
                if not self._call("exists", index, self.client.indices.exists, index=index):
                    raise IndexMissingError(f"opensearch: index {index!r} does not exist")
                raise BackendError(f"opensearch: index {index!r} records no encoders yet: its first ingest has not started")
            resolved = resolve(manifest["sparse"]["model"], "sparse")
            self._vocabs[index] = TextTokenizer(resolved.directory, resolved.spec.max_length).vocab
        return self._vocabs[index]

    def _call(self, what: str, target: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """One client call, its exceptions translated (engine_errors)."""
        with engine_errors(what, target):
            return fn(*args, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------
    @staticmethod
    def mapping(spec: IndexSpec) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "id": {"type": "keyword"},
            "doc_id": {"type": "keyword"},
            # BM25 reads one field holding both (a plain BM25 over the passage, as bm25s or
            # Qdrant's Bm25 score it); title and text stay in _source for the hits
            "title": {"type": "text", "index": False, "copy_to": BODY_FIELD},
            "text": {"type": "text", "index": False, "copy_to": BODY_FIELD},
            BODY_FIELD: {"type": "text", "analyzer": "standard" if spec.text_language == "none" else spec.text_language},
            "sparse": {"type": "rank_features"},
            "metadata": {"type": "object", "dynamic": True},
        }
        if spec.multivector_dim:
            # doc values, not _source: a rerank reads κ candidates' vectors without decompressing
            # their stored documents, and a search returning text never reads the vectors
            properties[MV_FIELD] = {"type": "binary", "doc_values": True}
            properties[MV_DIGEST_FIELD] = {"type": "keyword", "index": False, "doc_values": True}
        return {
            "_meta": {"lsrkit_spec": spec.__dict__},
            # neither vector is kept in _source: a hit's _source is read whole even when one field
            # is asked for, and the rank_features map is ~3x the text
            "_source": {"excludes": [MV_FIELD, MV_DIGEST_FIELD, "sparse"]},
            "dynamic_templates": [{"metadata_strings": {"path_match": "metadata.*", "match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
            "properties": properties,
        }

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        validate_index_name(spec.name)
        if recreate:
            self.drop_index(spec.name)
        if self._call("exists", spec.name, self.client.indices.exists, index=spec.name):
            stored = self.spec(spec.name)
            if stored.replicas != spec.replicas and replace(stored, replicas=spec.replicas) == spec:
                stored = self._set_replicas(spec)  # a live setting: changed in place, not a new layout
            check_layout("opensearch: index", spec, stored)
            if spec.multivector_dim and MV_DIGEST_FIELD not in self._properties(spec.name):
                raise IndexExistsError(f"opensearch: index {spec.name!r} was built before its codes had digests; pass recreate to rebuild it")
            return False
        settings = {"number_of_shards": spec.shards, "number_of_replicas": spec.replicas, "refresh_interval": "1s"}
        return self._create(spec.name, {"settings": {"index": settings}, "mappings": self.mapping(spec)})

    def _set_replicas(self, spec: IndexSpec) -> IndexSpec:
        settings = {"index": {"number_of_replicas": spec.replicas}}
        self._call("set replicas", spec.name, self.client.indices.put_settings, index=spec.name, body=settings)
        self._call("set replicas", spec.name, self.client.indices.put_mapping, index=spec.name, body={"_meta": {"lsrkit_spec": spec.__dict__}})
        return spec

    def _create(self, index: str, body: dict[str, Any]) -> bool:
        """Create an index: True when this call created it, False when it was created meanwhile."""
        try:
            self._call("create", index, self.client.indices.create, index=index, body=body)
        except BackendError as exc:
            if "resource_already_exists" in str(exc):
                return False
            raise
        return True

    def _mappings(self, index: str) -> dict[str, Any]:
        return dict(self._call("mapping", index, self.client.indices.get_mapping, index=index)[index]["mappings"])

    def _properties(self, index: str) -> dict[str, Any]:
        return dict(self._mappings(index).get("properties", {}))

    def spec(self, index: str) -> IndexSpec:
        stored = self._mappings(index).get("_meta", {}).get("lsrkit_spec")
        if not stored:
            raise BackendError(f"opensearch: index {index!r} was not created by lsrkit")
        return IndexSpec.from_stored(stored, f"opensearch index {index!r}")

    def text_lengths(self, spec: IndexSpec, texts: Sequence[str]) -> list[int]:
        raise NotImplementedError("OpenSearch keeps its own BM25 length statistics (needs_bm25_mean_length is False)")

    def drop_index(self, index: str) -> None:
        validate_index_name(index)
        self._call("delete", index, self.client.indices.delete, index=index, ignore_unavailable=True)
        self.code_cache.forget(index)
        self._vocabs.pop(index, None)
        try:
            if self._call("exists", META_INDEX, self.client.indices.exists, index=META_INDEX):
                self._call("delete meta", index, self.client.delete_by_query, index=META_INDEX, body={"query": {"term": {"index": index}}}, refresh=True)
        finally:  # again once its manifest is gone (or the delete failed): a read meanwhile may have cached it
            self._vocabs.pop(index, None)

    def flush(self, index: str) -> None:
        """Writes become searchable at the next refresh: refresh now."""
        self._call("refresh", index, self.client.indices.refresh, index=index)

    def close(self) -> None:
        self.client.close()

    # -- writes --------------------------------------------------------------------------------
    def _source(self, record: EncodedRecord, vocab: Sequence[str]) -> dict[str, Any]:
        features = {to_feature(vocab[i]): w for i, w in zip(record.sparse.ids.tolist(), record.sparse.weights.tolist()) if w > 0 and vocab[i]}
        source: dict[str, Any] = {
            "id": record.id,
            "doc_id": record.doc_id,
            "title": record.title,
            "text": record.text,
            "metadata": dict(record.metadata),
            "sparse": features,
        }
        if record.multivector:
            source[MV_FIELD] = base64.b64encode(record.multivector).decode("ascii")
            source[MV_DIGEST_FIELD] = code_digest(record.multivector)
        return source

    def _actions(self, index: str, records: Sequence[EncodedRecord]) -> Iterator[dict[str, Any]]:
        vocab = self._vocab(index)
        for record in records:
            yield {"_op_type": "index", "_index": index, "_id": record.id, "_source": self._source(record, vocab)}

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult:
        """Bulk index with opensearch-py's streaming_bulk: chunked by count and bytes, and the items
        the cluster rejected as overloaded (429) retried by the helper alone, with capped
        exponential backoff. Items refused for what they are (400 mapping, 413 size) are the
        result's `failed`; any item that failed for the engine's sake (429 past the helper's
        retries, 5xx, a write block's 403, a closed index) fails the whole bulk as a request that
        failed (node down, timeout) does — UnavailableError, the caller's to retry (the ingest job
        does; what the bulk wrote is written again under the same ids) — or, for a missing index
        or refused credentials, with the error that says so (status_error)."""
        result = WriteResult()
        refusals: list[tuple[int, str]] = []  # items that failed for the engine's sake
        with engine_errors("bulk", index, verb="to"):
            for ok, item in helpers.streaming_bulk(
                self.client,
                self._actions(index, records),
                # the caller sized the batch (its BatchPolicy, counts and bytes): one request, split
                # only past what OpenSearch accepts in one (http.max_content_length, 100 MB)
                chunk_size=max(1, len(records)),
                max_chunk_bytes=MAX_REQUEST_BYTES,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=self.max_retries_429,
                # the helper sleeps min(max_backoff, initial_backoff * 2**attempt): floats work, its hints say int
                initial_backoff=self.initial_backoff,  # type: ignore[arg-type]
                max_backoff=self.max_backoff,  # type: ignore[arg-type]
            ):
                info = next(iter(item.values()))
                if ok:
                    result.written.append(str(info.get("_id")))
                else:
                    error = info.get("error")
                    reason = error.get("reason", error) if isinstance(error, dict) else error
                    kind = error.get("type", "") if isinstance(error, dict) else ""
                    status = int(info.get("status") or 0)
                    if status in RECORD_STATUSES and kind not in ENGINE_STATE_TYPES:
                        result.failed[str(info.get("_id"))] = f"HTTP {status} {kind}: {reason}"
                    else:
                        refusals.append((status, f"{kind}: {reason}"))
        if refusals:  # the bulk fails as a whole
            status, reason = refusals[0]
            raise status_error("bulk", index, status, f"{reason} ({len(refusals)} of the bulk's items)")
        return result

    # -- reads ---------------------------------------------------------------------------------
    def retrieve(self, index: str, request: Retrieval) -> Retrieved:
        """`_retrieve`, tried once more after SHARD_RETRY_SECONDS when some shard did not answer: a
        node rejoining the cluster drops its connections for a moment (measured under `lsrkit
        serve` load); a shard that stays without a live copy is UnavailableError."""
        try:
            return self._retrieve(index, request)
        except ShardsUnavailableError:
            time.sleep(SHARD_RETRY_SECONDS)
            return self._retrieve(index, request)

    def _retrieve(self, index: str, request: Retrieval) -> Retrieved:
        """One search, or both runs in one msearch (the cluster runs them side by side). Hits
        without text are read from doc values only: reading a hit's stored fields decompresses
        its whole stored document. `documents` collapses on doc_id (each document's best passage
        in the same round trip). Candidates (hits without text) come with their codes' digests:
        the codes held in the CodeCache under the same digest are returned with them, and the
        codes themselves are read inline only while most candidates miss the cache."""
        runs: list[tuple[str, dict[str, Any]]] = []
        if request.sparse is not None and len(request.sparse):
            runs.append(("sparse", rank_feature_query(request.sparse, self._vocab(index))))
        if request.text is not None:
            runs.append(("bm25", bm25_query(request.text)))
        found = Retrieved()
        if not runs:
            return found
        digests = not request.texts and self.code_cache.enabled
        # codes come with the hits unless the cache can serve them (which needs their digests)
        inline = request.multivectors and (not digests or self.code_cache.reads_inline(index))
        bodies = [self._body(query, request, inline=inline, digests=digests) for _, query in runs]
        if len(runs) == 1:
            responses = [self._call("search", index, self.client.search, index=index, body=bodies[0])]
        else:
            lines = [line for body in bodies for line in ({"index": index}, body)]
            responses = self._call("msearch", index, self.client.msearch, body=lines)["responses"]
        for response in responses:  # every run whole before the cache is touched: a retried read counts once
            if "error" in response:
                _raise_item_error("msearch", index, response)
            every_shard("search", index, response)
        for (name, _), response in zip(runs, responses):
            setattr(found, name, _hits(response, request.texts))
            if digests:
                held = _digests(response)
                found.multivectors.update(self.code_cache.lookup(index, held, rerank_read=request.multivectors))
                if inline:
                    codes = _multivectors(response)
                    self.code_cache.store(index, codes, held)
                    found.multivectors.update(codes)
            elif inline:
                found.multivectors.update(_multivectors(response))
        return found

    @staticmethod
    def _body(query: dict[str, Any], request: Retrieval, *, inline: bool, digests: bool) -> dict[str, Any]:
        clauses = _filter_clauses(request.filters)
        if clauses:
            query = {"bool": {"must": [query], "filter": clauses}}
        body: dict[str, Any] = {"query": query, "size": request.limit, "track_total_hits": False}
        if request.documents:
            body["collapse"] = {"field": "doc_id"}
        fields = ["id", "doc_id", *([MV_DIGEST_FIELD] if digests else []), *([MV_FIELD] if inline else [])]
        if not request.texts:
            body.update({"stored_fields": "_none_", "docvalue_fields": fields})
        elif inline:
            body["docvalue_fields"] = fields
        return body

    def hydrate(self, index: str, hits: Sequence[Hit]) -> list[Hit]:
        """Title, text and metadata of the hits, in one mget (a passage deleted since the search
        keeps its hit as it is)."""
        wanted = {passage_of(h) for h in hits}
        if not wanted:
            return list(hits)
        response = self._call("mget", index, self.client.mget, index=index, body={"ids": sorted(wanted)})
        failed = [d for d in response["docs"] if "error" in d]
        if failed:  # a shard without a live copy: not "not found"
            error = failed[0]["error"]
            if "index_not_found" in str(error):
                raise IndexMissingError(f"opensearch: index {index!r} does not exist (mget)")
            raise UnavailableError(f"opensearch: mget on {index!r}: {len(failed)} of {len(wanted)} passages unreadable ({error})")
        return completed_hits(hits, {d["_id"]: d["_source"] for d in response["docs"] if d.get("found")})

    def fetch_multivectors(self, index: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The token vectors of the given passages: an ids query reading doc values (mget reads
        stored fields only)."""
        if not ids:
            return {}
        body = {
            "query": {"ids": {"values": list(ids)}},
            "size": len(ids),
            "stored_fields": "_none_",
            "docvalue_fields": ["id", MV_FIELD, MV_DIGEST_FIELD],
            "track_total_hits": False,
        }
        response = every_shard("fetch vectors", index, self._call("fetch vectors", index, self.client.search, index=index, body=body))
        codes = _multivectors(response)
        self.code_cache.store(index, codes, _digests(response))
        return codes

    def read_documents(self, index: str, doc_ids: Sequence[str]) -> list[Hit]:
        """A scroll over the passages with these doc_ids (searchable ones: the job refreshes the
        index before it reads, so a resumed job sees what it wrote before it stopped)."""
        if not doc_ids:
            return []
        query = {"query": {"terms": {"doc_id": list(doc_ids)}}}
        return self._call("read documents", index, lambda: _hits({"hits": {"hits": list(helpers.scan(self.client, query=query, index=index, size=500))}}, True))

    def delete(self, index: str, passage_ids: Sequence[str]) -> None:
        if not passage_ids:
            return
        actions = ({"_op_type": "delete", "_index": index, "_id": i} for i in passage_ids)
        _, errors = self._call("delete", index, helpers.bulk, self.client, actions, raise_on_error=False, refresh=False)
        refused = [e.get("delete", {}) for e in errors if e.get("delete", {}).get("status") != 404]  # 404: not stored, as asked
        if refused:  # translated as any failed item is: an overloaded engine's 429 is worth another try
            raise status_error(f"delete of {len(refused)} passages", index, int(refused[0].get("status") or 0), refused[0].get("error"))

    def count(self, index: str) -> int:
        return int(every_shard("count", index, self._call("count", index, self.client.count, index=index))["count"])

    def disk_bytes(self, index: str) -> int:
        """One copy of the index: its primary shards (each replica takes as much again)."""
        stats = self._call("stats", index, self.client.indices.stats, index=index, metric="store")
        return int(stats["indices"][index]["primaries"]["store"]["size_in_bytes"])

    # -- index metadata ------------------------------------------------------------------------
    def _ensure_meta_index(self) -> None:
        if not self._call("exists", META_INDEX, self.client.indices.exists, index=META_INDEX):
            body = {
                # a copy on every node: the statistics, codecs and manifests outlive a lost node
                "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-all"},
                "mappings": {"properties": {"index": {"type": "keyword"}, "key": {"type": "keyword"}, "value": {"type": "object", "enabled": False}}},
            }
            self._create(META_INDEX, body)

    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None:
        self._ensure_meta_index()
        doc = {"index": index, "key": key, "value": dict(value)}
        self._call("put meta", index, self.client.index, index=META_INDEX, id=f"{index}/{key}", body=doc, refresh=True)

    def swap_meta(self, index: str, key: str, expected: Mapping[str, Any] | None, value: Mapping[str, Any]) -> bool:
        """Compare-and-set on the meta document's sequence number: the engine refuses (409) a
        write over a version other than the one compared."""
        self._ensure_meta_index()
        try:
            current = self._call("get meta", index, self.client.get, index=META_INDEX, id=f"{index}/{key}")
        except IndexMissingError:
            current = None
        if not same_meta((current or {}).get("_source", {}).get("value"), expected):
            return False
        doc = {"index": index, "key": key, "value": dict(value)}
        guard: dict[str, Any] = {"op_type": "create"} if current is None else {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
        try:
            self._call("swap meta", index, self.client.index, index=META_INDEX, id=f"{index}/{key}", body=doc, refresh=True, **guard)
        except BackendError as exc:
            if isinstance(exc.__cause__, ConflictError):
                return False
            raise
        return True

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None:
        try:
            doc = self._call("get meta", index, self.client.get, index=META_INDEX, id=f"{index}/{key}")
        except IndexMissingError:  # no meta index yet, or no such document
            return None
        return dict(doc["_source"]["value"])


RECORD_STATUSES = (400, 413)  # a bulk item refused for what it is (mapping, size): the record's fault
# 400s that say the index's state, not the record's: a closed index, a block
ENGINE_STATE_TYPES = frozenset({"index_closed_exception", "cluster_block_exception", "index_not_found_exception"})


@contextmanager
def engine_errors(what: str, target: str, *, verb: str = "on") -> Iterator[None]:
    """The one translation of opensearch-py's exceptions into lsrkit's tree (no credentials in
    messages): a connection that failed or timed out is UnavailableError, any answer with a
    status goes through status_error. `verb` joins `what` and `target` ("bulk to 'x'")."""
    try:
        yield
    except (OSConnectionError, ConnectionTimeout) as exc:  # TransportErrors without a status: first
        raise UnavailableError(f"opensearch: {what} {verb} {target!r}: cluster unreachable ({type(exc).__name__})") from exc
    except helpers.ScanError as exc:  # a scroll some shard stopped answering: not a whole read
        raise UnavailableError(f"opensearch: {what} {verb} {target!r}: {exc}") from exc
    except TransportError as exc:
        raise status_error(what, target, exc.status_code if isinstance(exc.status_code, int) else 0, exc.error) from exc


def status_error(what: str, target: str, status: int, reason: Any) -> BackendError:
    """The one translation of an OpenSearch status: 404 a missing index; 400 and 413 a request the
    engine refuses for what it is, 401 and a security 403 credentials it refuses, 409 a conflict
    (BackendError: not worth another try); anything else — 429, 5xx, a write block's 403, a closed
    index — the engine's state, worth another try (UnavailableError)."""
    text = str(reason)
    if status == 404:
        return IndexMissingError(f"opensearch: index {target!r} does not exist ({what})")
    if any(kind in text for kind in ENGINE_STATE_TYPES):
        return UnavailableError(f"opensearch: {what} on {target!r}: HTTP {status} {reason}")
    if status in (*RECORD_STATUSES, 401, 409) or (status == 403 and "security_exception" in text):
        return BackendError(f"opensearch: {what} on {target!r} refused: HTTP {status} {reason}")
    return UnavailableError(f"opensearch: {what} on {target!r}: HTTP {status} {reason}")


class ShardsUnavailableError(UnavailableError):
    """A search or count some shard did not answer (every_shard)."""


SHARD_RETRY_SECONDS = 0.1  # a search some shard did not answer is tried again once, this much later


def every_shard(what: str, target: str, response: dict[str, Any]) -> dict[str, Any]:
    """The response of a search or count, unless a shard failed to answer: OpenSearch then answers
    200 with the other shards' hits, which would pass for the whole index (a node lost while an
    index has no replica left: UnavailableError, worth another try once it is back)."""
    shards = response.get("_shards") or {}
    total = int(shards.get("total") or 0)
    # an unassigned shard (its node's loss already seen by the cluster) is not counted as failed,
    # only missing from successful (which counts the skipped ones): both cases are checked
    missing = max(int(shards.get("failed") or 0), total - int(shards.get("successful") or 0))
    if missing:
        reasons = [str((f.get("reason") or {}).get("type", f.get("reason"))) for f in shards.get("failures") or []] or ["no copy assigned"]
        raise ShardsUnavailableError(f"opensearch: {what} on {target!r}: {missing} of {total} shards did not answer ({', '.join(sorted(set(reasons)))})")
    return response


def _raise_item_error(what: str, target: str, item: Mapping[str, Any]) -> None:
    """One failed search inside an msearch, raised as a failed request is (status_error)."""
    error = item.get("error")
    raise status_error(what, target, int(item.get("status") or 0), error.get("type", error) if isinstance(error, dict) else error)


def _hits(response: dict[str, Any], texts: bool) -> list[Hit]:
    """Hits from `_source` (texts) or from doc values alone (ids, doc ids, scores)."""
    hits = []
    for item in response["hits"]["hits"]:
        if texts:
            source = item.get("_source", {})
            meta = {**(source.get("metadata") or {}), "doc_id": source.get("doc_id", item["_id"])}
            hits.append(Hit(id=item["_id"], score=float(item.get("_score") or 0.0), title=source.get("title", ""), text=source.get("text", ""), metadata=meta))
        else:
            passage = _passage_id(item)
            hits.append(Hit(id=passage, score=float(item["_score"]), metadata={"doc_id": item.get("fields", {}).get("doc_id", [passage])[0]}))
    return hits


def _passage_id(item: Mapping[str, Any]) -> str:
    """A hit's passage id: from doc values when the hit was read without its stored fields."""
    fields = item.get("fields", {})
    return str(fields["id"][0]) if "id" in fields else str(item["_id"])


def _digests(response: dict[str, Any]) -> dict[str, str]:
    """The codes' digests read from doc values, by passage id (none for an index without codes)."""
    return {_passage_id(item): item["fields"][MV_DIGEST_FIELD][0] for item in response["hits"]["hits"] if MV_DIGEST_FIELD in item.get("fields", {})}


def _multivectors(response: dict[str, Any]) -> dict[str, bytes]:
    """Token vectors read from doc values (base64, without its '=' padding) by passage id."""
    found = {}
    for item in response["hits"]["hits"]:
        if MV_FIELD in item.get("fields", {}):
            encoded = item["fields"][MV_FIELD][0]
            found[_passage_id(item)] = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return found
