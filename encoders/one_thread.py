"""Small products of the query path on one onnxruntime thread, not on numpy's BLAS.

A query is encoded, its candidates read and scored beside the engine on the same few cores, so
these products run on one thread. numpy's BLAS is no place for them: OpenBLAS splits even a
query-sized product (22 × 384 by 384 × 360) across its threads, and its idle workers then spin,
waiting for more work; one reranked query kept the second of 2 cores busy for ~9 ms, time taken
from the engine and the query encoder (reports/experiment-blas-spin.md). Its thread count is a
process-wide setting that only one Python thread may own (threadpoolctl): not a library's to take.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Tensor = tuple[str, str, Sequence[str]]  # name, onnx element type (a TensorProto name), dimension names


class OneNodeGraph:
    """One onnxruntime operator as a session of its own, built on first use, run on one thread
    without spinning (runs are thread-safe)."""

    def __init__(self, op_type: str, inputs: Sequence[Tensor], output: Tensor) -> None:
        self.op_type, self.inputs, self.output = op_type, inputs, output
        self._lock = threading.Lock()
        self._session: Any = None

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._build()
        return self._session.run(None, feeds)[0]  # type: ignore[no-any-return]

    def _build(self) -> Any:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        node = helper.make_node(self.op_type, [name for name, _, _ in self.inputs], [self.output[0]])
        graph = helper.make_graph(
            [node],
            f"lsrkit_{self.op_type.lower()}",
            [helper.make_tensor_value_info(name, getattr(TensorProto, kind), list(dims)) for name, kind, dims in self.inputs],
            [helper.make_tensor_value_info(self.output[0], getattr(TensorProto, self.output[1]), list(self.output[2]))],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


_PRODUCT = OneNodeGraph("MatMul", [("left", "FLOAT", ["rows", "inner"]), ("right", "FLOAT", ["inner", "columns"])], ("product", "FLOAT", ["rows", "columns"]))


def float_product(left: npt.ArrayLike, right: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """left @ right of two matrices, in float32 on one thread.

    >>> float_product(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]])).tolist()
    [[11.0]]
    """
    return _PRODUCT.run({"left": np.ascontiguousarray(left, dtype=np.float32), "right": np.ascontiguousarray(right, dtype=np.float32)})
