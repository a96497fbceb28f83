"""lsrkit.plugin: engine adapters, the rerank stage and the search pipeline.

Engine SDKs are imported only inside their adapter modules; import those directly
(`lsrkit.plugin.qdrant_edge`, `lsrkit.plugin.qdrant_server`, `lsrkit.plugin.opensearch`).
"""

from lsrkit.plugin.base import (
    Backend,
    EncodedRecord,
    MetaStore,
    Refreshable,
    Hydration,
    PairedSearch,
    PartialSearch,
    PerDocumentSearch,
    SearchWithMultivectors,
    TextSearch,
    WriteResult,
)
from lsrkit.plugin.codec import DEFAULT_REPRESENTATION, MultiVectorCodec, Representation
from lsrkit.plugin.fusion import fuse, minmax_sum, rrf
from lsrkit.plugin.pipeline import CODEC_META, HybridSettings, SearchPipeline, SearchResult, aggregate_passages, demote, index_codec
from lsrkit.plugin.rerank import MaxSimReranker, alpha_prune, maxsim_scores

__all__ = [
    "CODEC_META",
    "DEFAULT_REPRESENTATION",
    "MultiVectorCodec",
    "Representation",
    "index_codec",
    "Backend",
    "EncodedRecord",
    "HybridSettings",
    "MaxSimReranker",
    "MetaStore",
    "Refreshable",
    "Hydration",
    "PairedSearch",
    "PartialSearch",
    "PerDocumentSearch",
    "SearchWithMultivectors",
    "SearchPipeline",
    "SearchResult",
    "TextSearch",
    "WriteResult",
    "aggregate_passages",
    "demote",
    "alpha_prune",
    "fuse",
    "maxsim_scores",
    "minmax_sum",
    "rrf",
]
