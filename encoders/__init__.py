"""lsrkit.encoders: ONNX encoders (sparse documents, inference-free queries, multivectors).

The only package that imports onnxruntime, tokenizers, torch and optimum (the last two lazily,
for export only).
"""

from lsrkit.encoders.export import ExportedModel, cache_root, export_model, load_exported
from lsrkit.encoders.idf import DocFreqCounter, IdfTable
from lsrkit.encoders.inference_free import IdfQueryEncoder
from lsrkit.encoders.multivector import MultiVectorEncoder
from lsrkit.encoders.registry import REGISTRY, ModelSpec, ResolvedModel, resolve, spec_for
from lsrkit.encoders.sparse import SparseDocEncoder, SparseQueryEncoder, prune
from lsrkit.encoders.text import TextTokenizer

__all__ = [
    "REGISTRY",
    "DocFreqCounter",
    "ExportedModel",
    "IdfQueryEncoder",
    "IdfTable",
    "ModelSpec",
    "MultiVectorEncoder",
    "ResolvedModel",
    "SparseDocEncoder",
    "SparseQueryEncoder",
    "TextTokenizer",
    "cache_root",
    "export_model",
    "load_exported",
    "prune",
    "resolve",
    "spec_for",
]
