"""ONNX export with optimum: round trip against torch, quantization, cache, clear errors."""

import json

import numpy as np
import pytest

from lsrkit.core import ExportError, OnnxOptions

pytestmark = [pytest.mark.models, pytest.mark.export]


def test_export_round_trip_writes_manifest_and_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("LSRKIT_CACHE", str(tmp_path / "cache"))
    from lsrkit.encoders import export_model, load_exported, resolve

    resolved = resolve("splade-tiny")
    exported = export_model(resolved, OnnxOptions(quantize="int8-per-channel"))
    manifest = json.loads((exported.directory / "manifest.json").read_text())
    assert manifest["max_abs_diff_vs_torch"] < 1e-3
    assert manifest["quantize"] == "int8-per-channel"
    assert manifest["versions"]["torch"] and manifest["versions"]["onnxruntime"]
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(exported.onnx_path.read_bytes()).hexdigest()
    assert (exported.directory / "tokenizer.json").is_file()
    # the cache is keyed by model + options: a second load reuses it without exporting
    again = load_exported(resolved, OnnxOptions(quantize="int8-per-channel"), export_if_missing=False)
    assert again.directory == exported.directory
    with pytest.raises(ExportError, match="lsrkit export"):
        load_exported(resolved, OnnxOptions(quantize="int8"), export_if_missing=False)


def test_onnx_fp32_logits_equal_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("LSRKIT_CACHE", str(tmp_path / "cache"))
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lsrkit.encoders import export_model, resolve

    resolved = resolve("splade-tiny")
    exported = export_model(resolved, OnnxOptions(quantize="none"))
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.directory))
    batch = tokenizer(["a different sentence than the built-in check uses"], return_tensors="np")
    session = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()})[0]
    with torch.no_grad():
        torch_logits = AutoModelForMaskedLM.from_pretrained(str(resolved.directory))(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-3)


def test_missing_export_extra_says_how_to_install(monkeypatch):
    import lsrkit.encoders.export as export

    monkeypatch.setattr(export, "_importable", lambda name: False)
    with pytest.raises(ExportError, match=r"lsrkit\[export\]"):
        export._require_export_extra()
