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
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, RequestError, TransportError

from lsrkit.core.config import IndexSpec, validate_index_name
from lsrkit.core.errors import BackendError, IndexExistsError, IndexMissingError, UnavailableError
from lsrkit.core.types import Hit, SparseVector
from lsrkit.plugin.base import EncodedRecord, Filters, WriteResult
from lsrkit.plugin.feature_names import to_feature

META_INDEX = "lsrkit-meta"
MV_FIELD = "mv"


def client_from_env(url: str, *, ca_certs: str | None = None, timeout: float = 30.0) -> OpenSearch:
    """An OpenSearch client. Credentials only from the environment: LSRKIT_OPENSEARCH_USER and
    LSRKIT_OPENSEARCH_PASSWORD (basic auth) or LSRKIT_OPENSEARCH_API_KEY; a CA bundle from
    `ca_certs` or LSRKIT_CA_CERTS."""
    user = os.environ.get("LSRKIT_OPENSEARCH_USER")
    password = os.environ.get("LSRKIT_OPENSEARCH_PASSWORD")
    api_key = os.environ.get("LSRKIT_OPENSEARCH_API_KEY")
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else None
    ca = ca_certs or os.environ.get("LSRKIT_CA_CERTS")
    return OpenSearch(
        hosts=[url],
        http_auth=(user, password) if user and password else None,
        headers=headers,
        use_ssl=url.startswith("https://"),
        verify_certs=url.startswith("https://"),
        ca_certs=ca,
        timeout=timeout,
        max_retries=2,
        retry_on_timeout=True,
    )


def rank_feature_query(query: SparseVector, vocab_lookup: Sequence[str], field: str = "sparse") -> dict[str, Any]:
    """The exact dot product as a bool.should of linear rank_feature clauses."""
    clauses = [
        {"rank_feature": {"field": f"{field}.{to_feature(vocab_lookup[i])}", "linear": {}, "boost": float(w)}}
        for i, w in zip(query.ids.tolist(), query.weights.tolist())
        if w > 0 and vocab_lookup[i]
    ]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _bm25_query(text: str) -> dict[str, Any]:
    return {"multi_match": {"query": text, "fields": ["title", "text"], "type": "most_fields"}}


def _filter_clauses(filters: Filters | None) -> list[dict[str, Any]]:
    return [{"term": {(k if k in ("doc_id", "id") else f"metadata.{k}"): v}} for k, v in (filters or {}).items()]


class OpenSearchBackend:
    """One OpenSearch index per lsrkit index, through an injected client."""

    name = "opensearch"

    def __init__(
        self,
        client: OpenSearch,
        *,
        vocab: Sequence[str] | None = None,
        max_retries_429: int = 8,
        max_backoff: float = 8.0,
    ) -> None:
        self.client = client
        self.vocab = list(vocab) if vocab is not None else None
        self.max_retries_429 = max_retries_429
        self.max_backoff = max_backoff

    def set_vocab(self, vocab: Sequence[str]) -> None:
        """The token strings of the sparse model's ids (rank_features are keyed by token)."""
        self.vocab = list(vocab)

    def _vocab(self) -> list[str]:
        if self.vocab is None:
            from lsrkit.core.errors import ConfigError

            raise ConfigError("OpenSearchBackend needs the sparse model's vocabulary: call set_vocab(encoder.vocab)")
        return self.vocab

    def _call(self, what: str, target: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Translate opensearch-py exceptions into lsrkit's tree (no credentials in messages)."""
        try:
            return fn(*args, **kwargs)
        except NotFoundError as exc:
            raise IndexMissingError(f"opensearch: index {target!r} does not exist ({what})") from exc
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise UnavailableError(f"opensearch: {what} on {target!r}: cluster unreachable ({type(exc).__name__})") from exc
        except RequestError as exc:
            raise BackendError(f"opensearch: {what} on {target!r} refused: {exc.error}") from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            if status in (429, 502, 503, 504):
                raise UnavailableError(f"opensearch: {what} on {target!r}: HTTP {status}") from exc
            raise BackendError(f"opensearch: {what} on {target!r} failed: HTTP {status} {exc.error}") from exc

    # -- lifecycle -----------------------------------------------------------------------------
    @staticmethod
    def mapping(spec: IndexSpec) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "id": {"type": "keyword"},
            "doc_id": {"type": "keyword"},
            "title": {"type": "text"},
            "text": {"type": "text"},
            "sparse": {"type": "rank_features"},
            "metadata": {"type": "object", "dynamic": True},
        }
        if spec.multivector_dim:
            # doc values, not _source: a rerank reads κ candidates' vectors without decompressing
            # their stored documents, and a search returning text never reads the vectors
            properties[MV_FIELD] = {"type": "binary", "doc_values": True}
        return {
            "_meta": {"lsrkit_spec": spec.__dict__},
            # neither vector is kept in _source: a hit's _source is read whole even when one field
            # is asked for, and the rank_features map is ~3x the text
            "_source": {"excludes": [MV_FIELD, "sparse"]},
            "dynamic_templates": [{"metadata_strings": {"path_match": "metadata.*", "match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
            "properties": properties,
        }

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        validate_index_name(spec.name)
        if recreate:
            self.drop_index(spec.name)
        if self._call("exists", spec.name, self.client.indices.exists, index=spec.name):
            stored = self.spec(spec.name)
            if stored != spec:
                raise IndexExistsError(f"opensearch: index {spec.name!r} exists with another layout ({stored}); pass recreate to replace it")
            return False
        body = {"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"}}, "mappings": self.mapping(spec)}
        try:
            self._call("create", spec.name, self.client.indices.create, index=spec.name, body=body)
        except BackendError as exc:
            if "resource_already_exists" in str(exc):
                return False
            raise
        return True

    def spec(self, index: str) -> IndexSpec:
        mapping = self._call("mapping", index, self.client.indices.get_mapping, index=index)
        stored = mapping[index]["mappings"].get("_meta", {}).get("lsrkit_spec")
        if not stored:
            raise BackendError(f"opensearch: index {index!r} was not created by lsrkit")
        return IndexSpec(**stored)

    def drop_index(self, index: str) -> None:
        validate_index_name(index)
        self._call("delete", index, self.client.indices.delete, index=index, ignore_unavailable=True)
        if self.client.indices.exists(index=META_INDEX):
            self._call("delete meta", index, self.client.delete_by_query, index=META_INDEX, body={"query": {"term": {"index": index}}}, refresh=True)

    def refresh(self, index: str) -> None:
        self._call("refresh", index, self.client.indices.refresh, index=index)

    def close(self) -> None:
        self.client.close()

    # -- writes --------------------------------------------------------------------------------
    def _source(self, record: EncodedRecord) -> dict[str, Any]:
        vocab = self._vocab()
        features = {to_feature(vocab[i]): w for i, w in zip(record.sparse.ids.tolist(), record.sparse.weights.tolist()) if w > 0 and vocab[i]}
        source: dict[str, Any] = {"id": record.id, "doc_id": record.doc_id, "title": record.title, "text": record.text, "metadata": dict(record.metadata), "sparse": features}
        if record.multivector:
            source[MV_FIELD] = base64.b64encode(record.multivector).decode("ascii")
        return source

    def _actions(self, index: str, records: Sequence[EncodedRecord]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield {"_op_type": "index", "_index": index, "_id": record.id, "_source": self._source(record)}

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult:
        """Bulk index with opensearch-py's streaming_bulk (chunked by count and bytes); items the
        cluster rejected as overloaded (429) are retried alone, with capped exponential backoff."""
        result = WriteResult()
        pending = list(records)
        delay = 0.25
        for attempt in range(self.max_retries_429 + 1):
            overloaded: list[EncodedRecord] = []
            by_id = {r.id: r for r in pending}
            try:
                for ok, item in helpers.streaming_bulk(
                    self.client, self._actions(index, pending), chunk_size=500, max_chunk_bytes=8 * 1024 * 1024,
                    # per-item errors come back as items; a transport failure (node down, timeout)
                    # must raise: it is the bulk that failed, not its records
                    raise_on_error=False, raise_on_exception=True, max_retries=0,
                ):
                    info = next(iter(item.values()))
                    record_id = str(info.get("_id"))
                    if ok:
                        result.written.append(record_id)
                    elif info.get("status") == 429 and record_id in by_id:
                        overloaded.append(by_id[record_id])
                    else:
                        error = info.get("error")
                        reason = error.get("reason", error) if isinstance(error, dict) else error
                        result.failed[record_id] = f"HTTP {info.get('status')}: {reason}"
            except (OSConnectionError, ConnectionTimeout) as exc:
                raise UnavailableError(f"opensearch: bulk to {index!r}: cluster unreachable ({type(exc).__name__})") from exc
            except TransportError as exc:
                raise UnavailableError(f"opensearch: bulk to {index!r} failed: HTTP {exc.status_code}") from exc
            if not overloaded:
                return result
            result.retried += len(overloaded)
            pending = overloaded
            if attempt < self.max_retries_429:
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        for record in pending:
            result.failed[record.id] = f"HTTP 429: still rejected after {self.max_retries_429} retries"
        return result

    # -- reads ---------------------------------------------------------------------------------
    def _search(
        self, index: str, query: dict[str, Any], limit: int, filters: Filters | None, with_multivectors: bool = False, partial: bool = False, per_document: bool = False
    ) -> dict[str, Any]:
        body = self._body(index, query, limit, filters, with_multivectors=with_multivectors, partial=partial, per_document=per_document)
        return self._call("search", index, self.client.search, index=index, body=body)

    def _body(
        self, index: str, query: dict[str, Any], limit: int, filters: Filters | None, *, with_multivectors: bool = False, partial: bool = False, per_document: bool = False
    ) -> dict[str, Any]:
        """`partial`: ids and doc ids from doc values, no stored field read at all (and the token
        vectors too, `with_multivectors`). `per_document`: each document's best passage only
        (field collapsing on doc_id)."""
        clauses = _filter_clauses(filters)
        if clauses:
            query = {"bool": {"must": [query], "filter": clauses}}
        body: dict[str, Any] = {"query": query, "size": limit, "track_total_hits": False}
        if per_document:
            body["collapse"] = {"field": "doc_id"}
        if partial:
            body.update({"stored_fields": "_none_", "docvalue_fields": ["id", "doc_id", *([MV_FIELD] if with_multivectors else [])]})
        return body

    def search_text_and_sparse(
        self, index: str, text: str, query: SparseVector, limit: int, *, filters: Filters | None = None, partial: bool = False
    ) -> tuple[list[Hit], list[Hit]]:
        """A query's BM25 and sparse runs in one msearch: one round trip, and the cluster runs
        the two searches side by side. `partial` as in search_sparse_partial."""
        queries = [_bm25_query(text)] + ([rank_feature_query(query, self._vocab())] if len(query) else [])
        lines: list[dict[str, Any]] = []
        for ranking in queries:
            lines += [{"index": index}, self._body(index, ranking, limit, filters, partial=partial)]
        response = self._call("msearch", index, self.client.msearch, body=lines)
        runs = []
        for item in response["responses"]:
            if "error" in item:
                _raise_item_error("msearch", index, item)
            runs.append(self._partial(item) if partial else self._hits(item))
        return runs[0], (runs[1] if len(runs) > 1 else [])

    @staticmethod
    def _hits(response: dict[str, Any]) -> list[Hit]:
        hits = []
        for item in response["hits"]["hits"]:
            source = item.get("_source", {})
            meta = dict(source.get("metadata") or {})
            meta.setdefault("doc_id", source.get("doc_id", item["_id"]))
            hits.append(
                Hit(id=item["_id"], score=float(item["_score"]), title=source.get("title", ""), text=source.get("text", ""), metadata=meta)
            )
        return hits

    def search_sparse(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        if not len(query):
            return []
        return self._hits(self._search(index, rank_feature_query(query, self._vocab()), limit, filters))

    def search_sparse_documents(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        """The best passage of each of the top `limit` documents (collapse on doc_id: one round
        trip, where fetching passages until they cover `limit` documents took two on SciFact)."""
        if not len(query):
            return []
        return self._hits(self._search(index, rank_feature_query(query, self._vocab()), limit, filters, per_document=True))

    def search_sparse_partial(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        """search_sparse's hits, partial: read from doc values only (reading a hit's stored
        fields decompresses its whole stored document)."""
        if not len(query):
            return []
        return self._partial(self._search(index, rank_feature_query(query, self._vocab()), limit, filters, partial=True))

    def search_text_partial(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        """search_text's hits, partial (see search_sparse_partial)."""
        return self._partial(self._search(index, _bm25_query(text), limit, filters, partial=True))

    def search_sparse_with_multivectors(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> tuple[list[Hit], dict[str, bytes]]:
        """The first stage, partial, and its candidates' token vectors, in one round trip."""
        if not len(query):
            return [], {}
        response = self._search(index, rank_feature_query(query, self._vocab()), limit, filters, with_multivectors=True, partial=True)
        return self._partial(response), _multivectors(response)

    @staticmethod
    def _partial(response: dict[str, Any]) -> list[Hit]:
        hits = []
        for item in response["hits"]["hits"]:
            fields = item.get("fields", {})
            passage = fields["id"][0]
            doc_id = fields.get("doc_id", [passage])[0]
            hits.append(Hit(id=passage, score=float(item["_score"]), metadata={"doc_id": doc_id}, partial=True))
        return hits

    def hydrate(self, index: str, hits: Sequence[Hit]) -> list[Hit]:
        """Title, text and metadata of partial hits, in one mget; complete hits pass through."""
        wanted = {str(h.metadata.get("passage_id", h.id)) for h in hits if h.partial}
        if not wanted:
            return list(hits)
        response = self._call("mget", index, self.client.mget, index=index, body={"ids": sorted(wanted)})
        sources = {d["_id"]: d["_source"] for d in response["docs"] if d.get("found")}
        complete = []
        for hit in hits:
            source = sources.get(str(hit.metadata.get("passage_id", hit.id))) if hit.partial else None
            if source is None:  # complete already, or deleted since the search: kept as it is
                complete.append(hit)
                continue
            meta = {**(source.get("metadata") or {}), **hit.metadata}
            complete.append(hit.evolve(title=source.get("title", ""), text=source.get("text", ""), metadata=meta, partial=False))
        return complete

    def search_text(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        return self._hits(self._search(index, _bm25_query(text), limit, filters))

    def search_text_documents(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]:
        """BM25's best passage of each of the top `limit` documents (collapse on doc_id)."""
        return self._hits(self._search(index, _bm25_query(text), limit, filters, per_document=True))

    def fetch_multivectors(self, index: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The token vectors of the given passages: an ids query reading doc values (mget reads
        stored fields only)."""
        if not ids:
            return {}
        body = {"query": {"ids": {"values": list(ids)}}, "size": len(ids), "stored_fields": "_none_", "docvalue_fields": ["id", MV_FIELD], "track_total_hits": False}
        return _multivectors(self._call("fetch vectors", index, self.client.search, index=index, body=body))

    def count(self, index: str) -> int:
        return int(self._call("count", index, self.client.count, index=index)["count"])

    def disk_bytes(self, index: str) -> int:
        stats = self._call("stats", index, self.client.indices.stats, index=index, metric="store")
        return int(stats["indices"][index]["total"]["store"]["size_in_bytes"])

    # -- index metadata ------------------------------------------------------------------------
    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None:
        if not self.client.indices.exists(index=META_INDEX):
            body = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": {"index": {"type": "keyword"}, "key": {"type": "keyword"}, "value": {"type": "object", "enabled": False}}}}
            try:
                self.client.indices.create(index=META_INDEX, body=body)
            except RequestError:
                pass  # created meanwhile
        doc = {"index": index, "key": key, "value": dict(value)}
        self._call("put meta", index, self.client.index, index=META_INDEX, id=f"{index}/{key}", body=doc, refresh=True)

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None:
        try:
            doc = self.client.get(index=META_INDEX, id=f"{index}/{key}")
        except NotFoundError:
            return None
        return dict(doc["_source"]["value"])


def _raise_item_error(what: str, target: str, item: Mapping[str, Any]) -> None:
    """One failed search inside an msearch, raised as _call raises a failed request."""
    status = int(item.get("status") or 0)
    error = item.get("error")
    reason = error.get("type", error) if isinstance(error, dict) else error
    if status == 404:
        raise IndexMissingError(f"opensearch: index {target!r} does not exist ({what})")
    if status in (429, 502, 503, 504):
        raise UnavailableError(f"opensearch: {what} on {target!r}: HTTP {status}")
    raise BackendError(f"opensearch: {what} on {target!r} failed: HTTP {status} {reason}")


def _multivectors(response: dict[str, Any]) -> dict[str, bytes]:
    """Token vectors read from doc values (base64, without its '=' padding) by passage id."""
    found = {}
    for item in response["hits"]["hits"]:
        fields = item.get("fields", {})
        if MV_FIELD in fields:
            encoded = fields[MV_FIELD][0]
            found[fields["id"][0] if "id" in fields else item["_id"]] = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return found
