"""PLAID (fast-plaid) as `lsrkit bench peers` runs it, in the peers' own environment.

fast-plaid pins its own torch, so this file runs under that environment's Python (made by
scripts/setup-peers-env.sh) and imports nothing of lsrkit. Input: an .npz holding the passages'
float token vectors (`doc_tokens`, all passages' rows concatenated, and `doc_lengths`) and the
queries' (`query_tokens`, `query_lengths`); a JSON list of settings. Output: JSON with, per index
(one per `nbits`), its build seconds and bytes on disk, and per search setting, each query's
top passages (row numbers of the input, best first) and wall milliseconds of its search alone
(one query per call, as a service answers them).

Each index is kept in `--index-dir` with its build record and reused by a later run on the same
vectors (the caller names the folder after them). The k-means is the same for every `nbits` (same
vectors, same seed), so it runs once and is kept in `--index-dir` too: every index reuses its
centroids, and its build seconds still count the k-means' seconds, as a user building only that
index would pay them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _split(rows, lengths):  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    ends = np.cumsum(lengths)
    return [torch.from_numpy(rows[end - n : end].astype(np.float32)) for end, n in zip(ends.tolist(), lengths.tolist())]


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.name.endswith(".lock") and f.name != "lsrkit-build.json")


def _shared_kmeans(module, folder: Path):  # type: ignore[no-untyped-def]
    """Wrap fast-plaid's k-means so that every `create` on the same vectors reuses one result, in
    this run and in later ones (kept in `folder` with its seconds: on a CPU it is half of a build);
    returns the wrapper's record of the seconds the one k-means took."""
    from importlib.metadata import version

    import numpy as np
    import torch

    compute = module.compute_kmeans
    saved, timing = folder / "kmeans-centroids.npy", folder / "kmeans.json"
    made_by = {"fast_plaid": version("fast-plaid"), "torch": torch.__version__}
    record: dict[str, object] = {}
    if saved.is_file() and timing.is_file():
        kept = json.loads(timing.read_text())
        if kept.get("made_by") == made_by:  # another fast-plaid may cluster otherwise: then run it again
            record.update(seconds=kept["seconds"], centroids=torch.from_numpy(np.load(saved)))

    def once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if "centroids" not in record:
            start = time.perf_counter()
            record["centroids"] = compute(*args, **kwargs)
            record["seconds"] = time.perf_counter() - start
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / "kmeans-centroids.partial.npy"
            np.save(partial, record["centroids"].cpu().numpy())  # type: ignore[attr-defined]
            os.replace(partial, saved)  # the record last: a killed run leaves no record of half a file
            timing.write_text(json.dumps({"seconds": record["seconds"], "made_by": made_by}))
        return record["centroids"]

    module.compute_kmeans = once
    return record


def _build(search, folder: Path, documents, nbits: int, kmeans: dict) -> dict:  # type: ignore[no-untyped-def]
    """The build record of the index in `folder` (its seconds, its k-means' seconds), built now
    unless a finished build is kept there."""
    import shutil

    marker = folder / "lsrkit-build.json"
    if marker.is_file():
        return {**json.loads(marker.read_text()), "kept_from_an_earlier_run": True}
    shutil.rmtree(folder, ignore_errors=True)  # an unfinished build
    reused = "seconds" in kmeans
    start = time.perf_counter()
    search.FastPlaid(index=str(folder), device="cpu").create(documents_embeddings=documents, nbits=nbits)
    build = time.perf_counter() - start + (float(kmeans["seconds"]) if reused else 0.0)  # type: ignore[arg-type]
    record = {"build_seconds": round(build, 2), "kmeans_seconds": round(float(kmeans["seconds"]), 2), "kmeans_reused": reused}  # type: ignore[arg-type]
    marker.write_text(json.dumps(record))
    return {**record, "kept_from_an_earlier_run": False}


def main() -> None:
    import numpy as np
    import torch
    from fast_plaid import search
    from fast_plaid.search import fast_plaid as module

    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--settings", required=True, help='JSON: {"nbits": [2, 4], "search": [{"n_ivf_probe": 8, "n_full_scores": 4096}, ...]}')
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--top-k", type=int, default=200)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    settings = json.loads(args.settings)
    torch.set_num_threads(os.cpu_count() or 1)

    with np.load(args.vectors) as data:
        documents = _split(data["doc_tokens"], data["doc_lengths"])
        queries = _split(data["query_tokens"], data["query_lengths"])
    report: dict[str, object] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "indexes": {}}
    kmeans = _shared_kmeans(module, args.index_dir)
    for nbits in settings["nbits"]:
        folder = args.index_dir / f"nbits{nbits}"
        build = _build(search, folder, documents, nbits, kmeans)
        index = search.FastPlaid(index=str(folder), device="cpu")
        searches = {}
        for setting in settings["search"]:
            label = f"ivf{setting['n_ivf_probe']}-full{setting['n_full_scores']}"
            for query in queries[:3]:  # warm-up: lazy loads and allocations
                index.search(queries_embeddings=[query], top_k=args.top_k, show_progress=False, **setting)
            ranked, millis = [], []
            for query in queries:
                begin = time.perf_counter()
                result = index.search(queries_embeddings=[query], top_k=args.top_k, show_progress=False, **setting)
                millis.append((time.perf_counter() - begin) * 1000)
                ranked.append([[int(i), float(s)] for i, s in result[0]])
            searches[label] = {**setting, "ranked": ranked, "search_ms": millis}
        report["indexes"][f"nbits{nbits}"] = {"nbits": nbits, **build, "bytes": _folder_bytes(folder), "searches": searches}  # type: ignore[index]
    args.output.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
