"""`lsrkit bench update`: what an update of 1 % of a corpus costs against the full build.

Every 100th document of the dataset is ingested again into the dataset's built Qdrant Edge index
(the one `lsrkit eval` builds and times): their stored passages are read back, the documents
re-encoded and rewritten, their change to the corpus statistics journaled and applied. The texts
are unchanged, so the index and its statistics must come out as they were (checked).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from lsrkit.bench.common import machine
from lsrkit.core.config import DEFAULT_DATA_DIR


def run(*, dataset: Path, data_dir: Path = DEFAULT_DATA_DIR, every: int = 100) -> dict[str, Any]:
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    corpus = load_beir(dataset).corpus
    subset = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()[::every]]
    with (
        tempfile.TemporaryDirectory(prefix="lsrkit-bench-update-") as tmp,
        Index(default_index(dataset), backend=BackendOptions("edge", data_dir=data_dir)) as index,
    ):
        built = ensure_ingested(index, corpus, progress=False)
        source = Path(tmp) / "update.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in subset))
        before, statistics = index.count(), index.backend.get_meta(index.name, "idf") or {}
        started = time.perf_counter()
        summary = index.ingest(source, progress=False, state_dir=Path(tmp) / "state")
        seconds = time.perf_counter() - started
        after, statistics_after = index.count(), index.backend.get_meta(index.name, "idf") or {}
    full = (
        json.loads((data_dir / "bench-update-full-build.json").read_text()) if built is None and (data_dir / "bench-update-full-build.json").is_file() else None
    )
    if built is not None:
        full = {"documents": built.documents, "seconds": round(built.seconds, 1)}
        (data_dir / "bench-update-full-build.json").write_text(json.dumps(full))
    keys = ("n_docs", "ids", "counts")
    return {
        "documents": summary.documents,
        "passages": summary.passages_written,
        "seconds": round(seconds, 1),
        "docs_per_second": round(summary.documents / seconds, 2),
        # the build, when this run made it (else `lsrkit eval --json` reports it as ingest.seconds)
        "full_build": {"documents": built.documents, "seconds": round(built.seconds, 1), "docs_per_second": round(built.docs_per_second, 2)} if built else None,
        "index_passages_unchanged": before == after,
        "statistics_unchanged": {k: statistics.get(k) for k in keys} == {k: statistics_after.get(k) for k in keys},
        "machine": machine(),
    }
