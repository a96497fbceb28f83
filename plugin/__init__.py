"""lsrkit.plugin: engine adapters, the rerank stage and the search pipeline.

Engine SDKs are imported only inside their adapter modules; import those directly
(`lsrkit.plugin.qdrant_edge`, `lsrkit.plugin.qdrant_server`, `lsrkit.plugin.opensearch`).
"""

from lsrkit.plugin.base import Backend, EncodedRecord, Retrieval, Retrieved, WriteResult, search_sparse, search_text
from lsrkit.plugin.codec import MultiVectorCodec, Representation, default_representation
from lsrkit.plugin.fusion import fuse, minmax_sum, rrf
from lsrkit.plugin.pipeline import CODEC_META, HybridSettings, SearchPipeline, SearchResult, aggregate_passages, demote, index_codec
from lsrkit.plugin.rerank import MaxSimReranker, alpha_prune, maxsim_scores

__all__ = [
    "CODEC_META",
    "default_representation",
    "Backend",
    "EncodedRecord",
    "HybridSettings",
    "MaxSimReranker",
    "MultiVectorCodec",
    "Representation",
    "Retrieval",
    "Retrieved",
    "SearchPipeline",
    "SearchResult",
    "WriteResult",
    "aggregate_passages",
    "alpha_prune",
    "demote",
    "fuse",
    "index_codec",
    "maxsim_scores",
    "minmax_sum",
    "rrf",
    "search_sparse",
    "search_text",
]
