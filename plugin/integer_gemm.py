"""MaxSim's similarity matrix from stored codes, on onnxruntime's integer GEMM.

Stored token vectors are uint8 codes (int8 with zero point 128, or unpacked low-bit levels with
zero point 0). Upcasting every candidate's codes to float32 costs more than the product itself;
MatMulInteger multiplies the codes directly. The query is quantized too, per token, to 7 bits:
x86 kernels without VNNI sum pairs of uint8×int8 products in int16, and 2 × 255 × 63 is the
largest pair that cannot saturate, so the product is exact on every CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from lsrkit.encoders.one_thread import OneNodeGraph

QUERY_LEVELS = 63  # 7 bits: see the module docstring
CODE_ZERO_POINT = 128

# a uint8 × int8 product, one thread: the rerank runs beside the engine on the same cores
_PRODUCTS = OneNodeGraph(
    "MatMulInteger",
    [("codes", "UINT8", ["rows", "dim"]), ("query", "INT8", ["dim", "tokens"]), ("zero_point", "UINT8", [])],
    ("products", "INT32", ["rows", "tokens"]),
)


class QueryCodes(NamedTuple):
    """A query rounded to 7 bits per token: codes (dim, tokens), laid out for the GEMM, and the
    per-token scales that map them back."""

    codes: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]


def quantize_query(query: npt.NDArray[np.float32]) -> QueryCodes:
    """Per token: int8 codes in [-63, 63] and the scale that maps them back.

    >>> codes, scales = quantize_query(np.array([[0.25, -1.0]], dtype=np.float32))
    >>> codes.T.tolist(), [round(float(s) * 63, 3) for s in scales]
    ([[16, -63]], [1.0])
    """
    query = np.asarray(query, dtype=np.float32)
    scales = np.maximum(np.abs(query).max(axis=1), 1e-12) / QUERY_LEVELS
    return QueryCodes(np.ascontiguousarray(np.rint(query / scales[:, None]).astype(np.int8).T), scales.astype(np.float32))


def integer_products(codes: npt.NDArray[np.uint8], query: QueryCodes, zero_point: int) -> npt.NDArray[np.int32]:
    """(rows, dim) uint8 codes minus `zero_point`, times the query's int8 codes: (rows, tokens) int32."""
    feeds = {"codes": np.ascontiguousarray(codes), "query": query.codes, "zero_point": np.array(zero_point, dtype=np.uint8)}
    return _PRODUCTS.run(feeds)


def code_similarities(codes: npt.NDArray[np.uint8], row_scales: npt.NDArray[np.float32], query: QueryCodes) -> npt.NDArray[np.float32]:
    """(rows, dim) uint8 codes with their row scales · a quantized query → (rows, tokens) float32
    dot products.

    >>> from lsrkit.plugin.codec import quantize_rows
    >>> rows = quantize_rows(np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32))
    >>> sims = code_similarities(rows.codes, rows.scales, quantize_query(np.array([[1.0, 0.0]], dtype=np.float32)))
    >>> [round(float(x), 2) for x in sims[:, 0]]
    [0.6, 1.0]
    """
    sims = row_scaled_products(codes, row_scales, query)
    sims *= query.scales[None, :]
    return sims


def row_scaled_products(codes: npt.NDArray[np.uint8], row_scales: npt.NDArray[np.float32], query: QueryCodes) -> npt.NDArray[np.float32]:
    """code_similarities without the query's per-token scales: MaxSim takes each query token's
    max over a document's rows first, and a positive per-token scale commutes with that max, so
    it is applied to the (documents, tokens) maxima instead of every row (one pass less)."""
    products = integer_products(codes, query, CODE_ZERO_POINT)
    return np.multiply(products, row_scales[:, None], dtype=np.float32)  # int32 → float32 and scaled in one pass
