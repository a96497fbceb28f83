"""lsrkit: learned sparse retrieval and multivector reranking on the engines you already run.

The public face: the types, the encoders, the pipelines and the adapters' entry points.
"""

from lsrkit.core import (
    BatchPolicy,
    Document,
    Hit,
    IndexSpec,
    LsrError,
    MultiVector,
    OnnxOptions,
    RerankSettings,
    SparseVector,
)
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.factory import PIPELINES, BackendOptions, ModelChoice, QualitySettings, build_pipeline, open_backend
from lsrkit.index import Index
from lsrkit.ingest import FieldMapping, IngestJob
from lsrkit.plugin import Backend, HybridSettings, MaxSimReranker, SearchPipeline

_ADAPTERS = {
    "QdrantEdgeBackend": "lsrkit.plugin.qdrant_edge",
    "QdrantBackend": "lsrkit.plugin.qdrant_server",
    "OpenSearchBackend": "lsrkit.plugin.opensearch",
}


def __getattr__(name: str) -> object:
    """The engine adapters, imported when first named (each pulls in its engine's SDK)."""
    if name in _ADAPTERS:
        import importlib

        return getattr(importlib.import_module(_ADAPTERS[name]), name)
    raise AttributeError(f"module 'lsrkit' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "PIPELINES",
    "Backend",
    "BackendOptions",
    "Index",
    "ModelChoice",
    "OpenSearchBackend",
    "QdrantBackend",
    "QdrantEdgeBackend",
    "QualitySettings",
    "build_pipeline",
    "open_backend",
    "BatchPolicy",
    "Document",
    "FieldMapping",
    "Hit",
    "HybridSettings",
    "IdfQueryEncoder",
    "IndexSpec",
    "IngestJob",
    "LsrError",
    "MaxSimReranker",
    "MultiVector",
    "MultiVectorEncoder",
    "OnnxOptions",
    "RerankSettings",
    "SearchPipeline",
    "SparseDocEncoder",
    "SparseQueryEncoder",
    "SparseVector",
]
