"""lsrkit.plugin: engine adapters, the rerank stage and the search pipeline.

Engine SDKs are imported only inside their adapter modules; import those directly
(`lsrkit.plugin.qdrant_edge`, `lsrkit.plugin.qdrant_server`, `lsrkit.plugin.opensearch`).
"""

from lsrkit.plugin.base import (
    Backend,
    EncodedRecord,
    MaxSimScoring,
    MetaStore,
    Refreshable,
    Hydration,
    PairedSearch,
    PartialSearch,
    PerDocumentSearch,
    SearchWithMultivectors,
    ServerSideMaxSim,
    TextSearch,
    WriteResult,
)
from lsrkit.plugin.fusion import fuse, minmax_sum, rrf
from lsrkit.plugin.pipeline import HybridSettings, SearchPipeline, SearchResult, aggregate_passages, demote
from lsrkit.plugin.rerank import MaxSimReranker, alpha_prune, maxsim_scores

__all__ = [
    "Backend",
    "EncodedRecord",
    "HybridSettings",
    "MaxSimReranker",
    "MaxSimScoring",
    "MetaStore",
    "Refreshable",
    "Hydration",
    "PairedSearch",
    "PartialSearch",
    "PerDocumentSearch",
    "SearchWithMultivectors",
    "SearchPipeline",
    "SearchResult",
    "ServerSideMaxSim",
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
