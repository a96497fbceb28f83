"""Build lsrkit/data/scifact-mini from a SciFact BEIR folder (deterministic; run once, committed).

60 test queries (every 5th by id), every document they judge relevant, and seeded random
distractors up to 400 documents.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/scifact")
target = Path(__file__).resolve().parent.parent / "lsrkit" / "data" / "scifact-mini"
rows = [line.split("\t") for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]]
query_ids = sorted({r[0] for r in rows}, key=int)[::5]
qrels = [r for r in rows if r[0] in query_ids]
relevant = {r[1] for r in qrels}
corpus = [json.loads(line) for line in (source / "corpus.jsonl").open()]
others = [d["_id"] for d in corpus if d["_id"] not in relevant]
keep = relevant | set(random.Random(13).sample(others, 400 - len(relevant)))
(target / "qrels").mkdir(parents=True, exist_ok=True)
with (target / "corpus.jsonl").open("w") as out:
    for doc in corpus:
        if doc["_id"] in keep:
            out.write(json.dumps({"_id": doc["_id"], "title": doc["title"], "text": doc["text"]}) + "\n")
with (target / "queries.jsonl").open("w") as out:
    for line in (source / "queries.jsonl").open():
        query = json.loads(line)
        if query["_id"] in query_ids:
            out.write(json.dumps({"_id": query["_id"], "text": query["text"]}) + "\n")
(target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in qrels))
print(f"{len(keep)} documents, {len(query_ids)} queries, {len(qrels)} judgments → {target}")
