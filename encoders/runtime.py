"""Loading an exported model into an onnxruntime session, with its tokenizer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from lsrkit.core.config import OnnxOptions
from lsrkit.core.errors import EncoderError
from lsrkit.encoders.export import ExportedModel, load_exported, weights_fingerprint
from lsrkit.encoders.registry import ModelKind, ModelSpec, ResolvedModel, resolve
from lsrkit.encoders.run_signal import signal_model_run
from lsrkit.encoders.text import TextTokenizer


@dataclass
class LoadedModel:
    """An ONNX session, its input names, the tokenizer and where it all came from."""

    resolved: ResolvedModel
    exported: ExportedModel
    session: ort.InferenceSession
    input_names: tuple[str, ...]
    tokenizer: TextTokenizer

    @property
    def spec(self) -> ModelSpec:
        return self.resolved.spec

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The graph's first output; a thread inside `model_run_signal` signals as the run starts."""
        signal_model_run()
        return self.session.run(None, feeds)[0]  # type: ignore[no-any-return]

    def describe(self) -> dict[str, str]:
        """What an index records of the model that encoded it: how to load it again, and what
        makes two encoders' vectors comparable (weights, quantization, activation)."""
        spec = self.spec
        found = {
            "model": spec.reference,
            "weights": weights_fingerprint(self.resolved.directory),
            "quantize": str(self.exported.manifest.get("quantize", "none")),
        }
        if spec.kind == "sparse":
            found["activation"] = spec.activation
            found["idf"] = "model" if spec.idf_file and (self.resolved.directory / spec.idf_file).is_file() else "corpus"
        return found


def load_model(model: str | ModelSpec, kind: ModelKind, options: OnnxOptions) -> LoadedModel:
    resolved = resolve(model, kind)
    exported = load_exported(resolved, options)
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.intra_op_threads:
        session_options.intra_op_num_threads = options.intra_op_threads
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.allow_spinning else "0")
    try:
        session = ort.InferenceSession(str(exported.onnx_path), session_options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise EncoderError(f"onnxruntime could not load {exported.onnx_path}: {exc}") from exc
    names = tuple(i.name for i in session.get_inputs())
    tokenizer = TextTokenizer(exported.directory, resolved.spec.max_length)
    return LoadedModel(resolved, exported, session, names, tokenizer)
