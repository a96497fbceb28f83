"""`lsrkit bench encode`: SPLADE document encoding, torch eager vs ONNX Runtime fp32 vs int8.

The torch baseline is what a user would write without lsrkit: transformers' masked LM, batches
of 8 with padding, log1p(relu(logits)) masked and max-pooled over tokens. Each variant encodes
the same passages in one run; peak RSS per batch size is measured in fresh subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine


def _torch_eager(texts: list[str], batch_size: int = 8) -> tuple[float, list[np.ndarray]]:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lsrkit.encoders import resolve

    folder = str(resolve("splade-tiny").directory)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        model(**tokenizer(texts[:2], padding=True, truncation=True, max_length=512, return_tensors="pt"))  # warm-up
        start = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=512, return_tensors="pt")
            logits = model(**batch).logits
            weights = torch.log1p(torch.relu(logits)) * batch["attention_mask"].unsqueeze(-1)
            out.extend(weights.max(dim=1).values.numpy())
        return time.perf_counter() - start, out


def _onnx(texts: list[str], quantize: str, batch_size: int = 8) -> tuple[float, list[Any]]:
    from lsrkit.core import OnnxOptions
    from lsrkit.encoders import SparseDocEncoder

    encoder = SparseDocEncoder("splade-tiny", options=OnnxOptions(quantize=quantize), batch_size=batch_size)  # type: ignore[arg-type]
    encoder.encode_documents(texts[:2])  # warm-up
    start = time.perf_counter()
    vectors = encoder.encode_documents(texts)
    return time.perf_counter() - start, vectors


def _top10(ids: np.ndarray, weights: np.ndarray) -> set[int]:
    return set(ids[np.argsort(-weights, kind="stable")[:10]].tolist())


def peak_rss_mb(quantize: str, batch_size: int, n: int, dataset: Path) -> float:
    """Peak resident memory of a fresh process that loads the encoder and encodes n passages."""
    code = (
        "import re;from lsrkit.bench.common import passages;from lsrkit.core import OnnxOptions;"
        "from lsrkit.encoders import SparseDocEncoder;"
        f"e=SparseDocEncoder('splade-tiny',options=OnnxOptions(quantize='{quantize}'),batch_size={batch_size});"
        f"e.encode_documents(passages(__import__('pathlib').Path({str(dataset)!r}),{n}));"
        # VmHWM belongs to this exec'd image; ru_maxrss would include the forking parent's pages
        "print(int(re.search(r'VmHWM:\\s+(\\d+)',open('/proc/self/status').read()).group(1))/1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def run(*, passages: int = 200, dataset: Path, batch_sizes: list[int] | None = None) -> dict[str, Any]:
    n = passages
    texts = _load(dataset, n)
    torch_s, torch_vectors = _torch_eager(texts)
    fp32_s, fp32_vectors = _onnx(texts, "none")
    int8_s, int8_vectors = _onnx(texts, "int8-per-channel")
    overlaps = [len(_top10(a.ids, a.weights) & _top10(b.ids, b.weights)) / 10 for a, b in zip(int8_vectors, fp32_vectors) if len(b)]
    fp32_vs_torch = []
    for dense, sparse in zip(torch_vectors, fp32_vectors):
        dense = dense.copy()
        dense[[0, 100, 101, 102, 103]] = 0.0  # lsrkit zeroes special tokens; torch baseline does not
        fp32_vs_torch.append(float(np.abs(dense[sparse.ids] - sparse.weights).max()) if len(sparse) else 0.0)
    memory = {
        str(b): {"fp32": peak_rss_mb("none", b, min(n, 64), dataset), "int8": peak_rss_mb("int8-per-channel", b, min(n, 64), dataset)}
        for b in (batch_sizes or [1, 8, 32])
    }
    return {
        "passages": n,
        "dataset": str(dataset),
        "torch_pps": round(n / torch_s, 2),
        "onnx_fp32_pps": round(n / fp32_s, 2),
        "onnx_int8_pps": round(n / int8_s, 2),
        "int8_speedup_vs_torch": round(torch_s / int8_s, 2),
        "fp32_speedup_vs_torch": round(torch_s / fp32_s, 2),
        "int8_top10_overlap": round(float(np.mean(overlaps)), 4),
        "fp32_max_abs_diff_vs_torch": round(float(max(fp32_vs_torch)), 6),
        "avg_nonzeros_int8": round(float(np.mean([len(v) for v in int8_vectors])), 1),
        "peak_rss_mb_by_batch": memory,
        "machine": machine(),
    }


def _load(dataset: Path, n: int) -> list[str]:
    from lsrkit.bench.common import passages as load_passages

    return load_passages(dataset, n)
