"""The README's Python example runs as written (only its data folder moved to a temporary one)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def test_readme_api_example(tmp_path, monkeypatch, mini_subset_dir):
    """Only its data folder moves to a temporary one, and its corpus to the packaged subset's first
    documents (the same records, a third of the encoding time)."""
    readme = (REPO / "README.md").read_text()
    code = re.search(r"<!-- api-example -->\n```python\n(.*?)```", readme, re.S)
    assert code, "the README lost its API example"
    monkeypatch.chdir(REPO)
    corpus = '"lsrkit/data/scifact-mini/corpus.jsonl"'
    assert corpus in code.group(1)
    source = code.group(1).replace('".lsrkit/example"', repr(str(tmp_path / "example"))).replace(corpus, repr(str(mini_subset_dir / "corpus.jsonl")))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert len(lines) == 3 and all(line.split()[0].isdigit() for line in lines)
