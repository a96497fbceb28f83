"""ONNX export with optimum, a check against torch, and int8 quantization, into a cache folder.

torch, transformers and optimum are imported only inside the functions of this module, and
only when an export is actually needed: the runtime never imports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.core.config import OnnxOptions
from lsrkit.core.errors import ExportError
from lsrkit.encoders.registry import ModelSpec, ResolvedModel

MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json")
_CHECK_TEXTS = (
    "Learned sparse retrieval expands a passage into weighted vocabulary terms.",
    "The quick brown fox jumps over the lazy dog, twice; then it rests.",
    "Cells use ATP as their main source of energy.",
)


def cache_root() -> Path:
    """Where exported models live: $LSRKIT_CACHE, else ~/.cache/lsrkit."""
    return Path(os.environ.get("LSRKIT_CACHE", Path.home() / ".cache" / "lsrkit")).expanduser()


def weights_fingerprint(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        path = directory / name
        if path.is_file() and path.suffix in (".safetensors", ".bin", ".json", ".txt"):
            digest.update(name.encode())
            digest.update(str(path.stat().st_size).encode())
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:12]


def export_dir(resolved: ResolvedModel, options: OnnxOptions) -> Path:
    """The cache folder for this model (by its files' fingerprint) and these options."""
    key = f"{resolved.spec.name}--{resolved.spec.kind}--{options.quantize}--{weights_fingerprint(resolved.directory)}"
    if options.quantize in _REDUCED_RANGE:
        key += "--w7"  # exports made before 7-bit weights (see _quantize) are not reused
    return cache_root() / "onnx" / key


@dataclass(frozen=True)
class ExportedModel:
    """A ready ONNX model folder: model.onnx, tokenizer files, manifest (and IDF / projection)."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.directory / MODEL_FILE


def load_exported(resolved: ResolvedModel, options: OnnxOptions, *, export_if_missing: bool = True) -> ExportedModel:
    """The cached export for (model, options), exporting it first when absent and allowed."""
    target = export_dir(resolved, options)
    manifest_path = target / MANIFEST
    if manifest_path.is_file() and (target / MODEL_FILE).is_file():
        return ExportedModel(target, json.loads(manifest_path.read_text()))
    if not export_if_missing:
        raise ExportError(f"model {resolved.spec.name!r} has no ONNX export in {target}; run `lsrkit export {resolved.spec.name}`")
    return export_model(resolved, options, target)


def _require_export_extra() -> None:
    missing = [name for name in ("torch", "transformers", "optimum.exporters.onnx") if not _importable(name)]
    if missing:
        raise ExportError(
            "exporting to ONNX needs the 'export' extra (missing: " + ", ".join(missing) + "). Install it with "
            "`pip install 'lsrkit[export]' torch==2.9.1` (torch in the same command), or run "
            "`lsrkit export MODEL` on a machine that has it and copy the cache folder."
        )


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def export_model(resolved: ResolvedModel, options: OnnxOptions, target: Path | None = None) -> ExportedModel:
    """Export with optimum, compare with torch, quantize; write atomically into the cache."""
    _require_export_extra()
    spec = resolved.spec
    target = target or export_dir(resolved, options)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        with _quiet():
            fp32_path = _optimum_export(resolved, work / "fp32")
            max_diff = _max_abs_diff_vs_torch(resolved, fp32_path)
            final = work / MODEL_FILE
            if options.quantize == "none":
                shutil.copyfile(fp32_path, final)
            else:
                _quantize(fp32_path, final, options.quantize)
        for name in _TOKENIZER_FILES:
            if (resolved.directory / name).is_file():
                shutil.copyfile(resolved.directory / name, work / name)
        if spec.idf_file and (resolved.directory / spec.idf_file).is_file():
            shutil.copyfile(resolved.directory / spec.idf_file, work / "idf.json")
        if spec.projection:
            np.save(work / "projection.npy", _colbert_projection(resolved.directory))
        shutil.rmtree(work / "fp32")
        manifest = {
            "model": spec.name,
            "kind": spec.kind,
            "source": str(resolved.directory),
            "quantize": options.quantize,
            "max_abs_diff_vs_torch": max_diff,
            "sha256": hashlib.sha256(final.read_bytes()).hexdigest(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {d: _version(d) for d in ("lsrkit", "torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx")},
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)  # atomic: a half-written export is never seen as ready
        except OSError:
            if not (target / MANIFEST).is_file():  # not another process finishing the same export first
                raise
            return ExportedModel(target, json.loads((target / MANIFEST).read_text()))
        return ExportedModel(target, manifest)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"exporting {spec.name!r} from {resolved.directory} failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch's tracer, transformers and optimum warn about their own internals on every export;
    none of it is for lsrkit's user (the export is checked against torch instead)."""
    loggers = [logging.getLogger(name) for name in ("transformers", "optimum", "torch.onnx", "onnxruntime")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _task(spec: ModelSpec) -> str:
    return "fill-mask" if spec.kind == "sparse" else "feature-extraction"


def _optimum_export(resolved: ResolvedModel, out: Path) -> Path:
    from optimum.exporters.onnx import main_export

    main_export(
        model_name_or_path=str(resolved.directory),
        output=out,
        task=_task(resolved.spec),
        opset=18,
        device="cpu",
        do_validation=False,  # compared with torch below, on lsrkit's own texts
        no_post_process=True,
    )
    path = out / MODEL_FILE
    if not path.is_file():
        raise ExportError(f"optimum wrote no {MODEL_FILE} for {resolved.spec.name!r} in {out}")
    return path


def _max_abs_diff_vs_torch(resolved: ResolvedModel, onnx_path: Path) -> float:
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolved.directory))
    loader = AutoModelForMaskedLM if resolved.spec.kind == "sparse" else AutoModel
    model = loader.from_pretrained(str(resolved.directory)).eval()
    batch = tokenizer(list(_CHECK_TEXTS), padding=True, truncation=True, max_length=128, return_tensors="np")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs() if i.name in batch}
    onnx_out = session.run(None, feeds)[0]
    with torch.no_grad():
        torch_out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    reference = (torch_out.logits if resolved.spec.kind == "sparse" else torch_out.last_hidden_state).numpy()
    mask = batch["attention_mask"].astype(bool)
    return float(np.max(np.abs(onnx_out[mask] - reference[mask])))


_REDUCED_RANGE = ("int8", "int8-per-channel")  # recipes quantizing weights to 7 bits
_ATTENTION_PROJECTIONS = ("/attention/self/query/", "/attention/self/key/", "/attention/self/value/", "/attention/output/dense/")


def _quantize(source: Path, target: Path, recipe: str) -> None:
    """Dynamic int8 (weights per tensor or per channel; activations per run)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe == "int8-attention":
        nodes = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node if n.op_type == "MatMul"]
        keep_fp32 = [name for name in nodes if not any(part in name for part in _ATTENTION_PROJECTIONS)]
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32)
        return
    # 7-bit weights (reduce_range): x86 CPUs without VNNI (AVX2/AVX-512 only) add u8*s8 product
    # pairs in saturating int16, which with full 8-bit weights corrupts MatMulInteger outputs and
    # makes int8 quality depend on the CPU (SPLADE-tiny top-10 overlap with fp32: 0.88 on AVX2,
    # 0.965 with exact int32 sums as on VNNI); with 7 bits no pair can saturate (0.97 on both)
    quantize_dynamic(str(source), str(target), per_channel=recipe == "int8-per-channel", weight_type=QuantType.QInt8, reduce_range=recipe in _REDUCED_RANGE)


def _colbert_projection(directory: Path) -> np.ndarray:
    """The ColBERT linear layer (hidden → dim) as a (hidden, dim) float32 matrix."""
    from safetensors.numpy import load_file

    for name in ("model.safetensors",):
        if (directory / name).is_file():
            tensors = load_file(str(directory / name))
            for key in ("linear.weight", "colbert_linear.weight"):
                if key in tensors:
                    return np.ascontiguousarray(tensors[key].T.astype(np.float32))
    raise ExportError(f"no ColBERT projection (linear.weight) found in {directory}")
