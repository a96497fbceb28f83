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
from lsrkit.ingest import FieldMapping, IngestPipeline
from lsrkit.plugin import HybridSettings, MaxSimReranker, SearchPipeline

__version__ = "0.1.0"

__all__ = [
    "BatchPolicy",
    "Document",
    "FieldMapping",
    "Hit",
    "HybridSettings",
    "IdfQueryEncoder",
    "IndexSpec",
    "IngestPipeline",
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
