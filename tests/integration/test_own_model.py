"""A model without offline weights, as a user brings one: a tiny randomly initialised BERT masked
LM in a local folder, laid out as OpenSearch's doc-v3 models are (an `idf.json` beside the
weights, the v3 double-log activation, here declared in `lsrkit.json`), run by its path through
export, ingest, inference-free search and eval. Random weights say nothing of quality: the test
checks that every step uses this model and no other."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.models


def _tiny_corpus(mini_dir: Path, target: Path, documents: int = 30) -> Path:
    docs = [json.loads(line) for line in (mini_dir / "corpus.jsonl").open()][:documents]
    ids = {d["_id"] for d in docs}
    qrels = [line for line in (mini_dir / "qrels" / "test.tsv").read_text().splitlines()[1:] if line.split("\t")[1] in ids]
    queries = {line.split("\t")[0] for line in qrels}
    (target / "qrels").mkdir(parents=True)
    (target / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (target / "queries.jsonl").write_text("".join(line for line in (mini_dir / "queries.jsonl").open() if json.loads(line)["_id"] in queries))
    (target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n")
    return target


def _tiny_doc_v3_model(corpus: Path, folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    words = sorted({w for line in corpus.open() for w in re.findall(r"[a-z0-9]+", json.loads(line)["text"].lower())})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertForMaskedLM(config).save_pretrained(folder)
    (folder / "idf.json").write_text(json.dumps({w: round(1.0 + math.log(1 + len(w)), 3) for w in words}))
    (folder / "lsrkit.json").write_text(json.dumps({"activation": "log1p_log1p_relu"}))
    return folder


def _own_cache(cwd: Path) -> Path:
    """A cache of the test's own (the user model's export lands there), holding links to the bundled
    models' exports setup-venv made: the default token-vector model is not exported a second time."""
    from lsrkit.encoders.export import cache_root

    cache = cwd / "cache"
    if not cache.exists():
        (cache / "onnx").mkdir(parents=True)
        bundled = cache_root() / "onnx"
        for exported in bundled.iterdir() if bundled.is_dir() else ():
            (cache / "onnx" / exported.name).symlink_to(exported, target_is_directory=True)
    return cache


def _cli(*args: str, cwd: Path, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LSRKIT_CACHE": str(_own_cache(cwd))}
    result = subprocess.run([sys.executable, "-m", "lsrkit.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert result.returncode == expect, result.stderr[-3000:]
    return result


def test_a_local_doc_v3_model_through_export_ingest_search_and_eval(tmp_path, mini_dir):
    dataset = _tiny_corpus(mini_dir, tmp_path / "tiny")
    model = _tiny_doc_v3_model(dataset / "corpus.jsonl", tmp_path / "my-doc-v3")

    exported = json.loads(_cli("export", str(model), "--kind", "sparse", "--quantize", "none", cwd=tmp_path).stdout)
    assert Path(exported["directory"], "model.onnx").is_file() and exported["quantize"] == "none"

    data = tmp_path / "data"
    args = ("--dataset", str(dataset), "--backend", "edge", "--data-dir", str(data), "--index", "own")
    result = json.loads(
        _cli("eval", *args, "--sparse-model", str(model), "--quantize", "none", "--pipelines", "bm25,sparse-idf,sparse-model", "--json", cwd=tmp_path).stdout
    )
    sparse = result["models"]["sparse"]
    assert sparse["model"] == str(model) and sparse["activation"] == "log1p_log1p_relu" and sparse["idf"] == "model" and sparse["quantize"] == "none"
    assert set(result["pipelines"]) == {"bm25", "sparse-idf", "sparse-model"} and not result["skipped"]
    assert result["index_points"] >= 30

    # the index names its encoders: a search names none, and finds a document by its own words
    first = json.loads((dataset / "corpus.jsonl").open().readline())
    found = json.loads(_cli("search", first["title"], "--index", "own", "--data-dir", str(data), "--pipeline", "sparse-idf", "--json", cwd=tmp_path).stdout)
    assert found["hits"] and first["_id"] in {h["id"] for h in found["hits"]}

    # another job into it without model names uses its models; naming others is refused, with the difference
    again = _cli("ingest", str(dataset), "--index", "own", "--data-dir", str(data), "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["documents"] == 30
    refused = _cli("ingest", str(dataset), "--index", "own", "--data-dir", str(data), "--sparse-model", "splade-tiny", cwd=tmp_path, expect=2)
    assert "built with other encoders" in refused.stderr and "splade-tiny" in refused.stderr
