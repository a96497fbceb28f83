import json

import numpy as np
import pytest

from lsrkit.core import ConfigError
from lsrkit.encoders.idf import DocFreqCounter, IdfTable, bm25_idf

VOCAB = ["[PAD]", "a", "b", "c.d", ""]


def test_counts_documents_not_occurrences():
    counter = DocFreqCounter(len(VOCAB))
    counter.add([[1, 1, 1, 2], [2], [3]])
    assert counter.n_docs == 3
    assert counter.doc_freq.tolist() == [0, 1, 2, 1, 0]


def test_bm25_formula_and_ordering():
    counter = DocFreqCounter(len(VOCAB))
    counter.add([[1], [1], [2]])
    table = counter.to_table(VOCAB)
    assert table.weights[1] == pytest.approx(bm25_idf(3, 2), rel=1e-6)
    assert table.weights[2] > table.weights[1] > 0  # rarer is heavier, every weight positive


def test_save_load_round_trip_in_opensearch_form(tmp_path):
    counter = DocFreqCounter(len(VOCAB))
    counter.add([[1, 3], [2]])
    table = counter.to_table(VOCAB)
    path = tmp_path / "idf.json"
    table.save(path)
    data = json.loads(path.read_text())
    assert set(data) == {"[PAD]", "a", "b", "c.d"}  # token strings as keys; the empty token is skipped
    loaded = IdfTable.load(path, VOCAB)
    np.testing.assert_allclose(loaded.weights[:4], table.weights[:4], rtol=1e-5)


def test_load_ignores_unknown_tokens_and_defaults_missing(tmp_path):
    path = tmp_path / "idf.json"
    path.write_text(json.dumps({"a": 2.5, "zzz": 9.0}))
    table = IdfTable.load(path, VOCAB, default=1.0)
    assert table.weights[1] == 2.5 and table.weights[2] == 1.0


def test_bad_files_raise_config_error(tmp_path):
    path = tmp_path / "idf.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        IdfTable.load(path, VOCAB)
    with pytest.raises(ConfigError):
        IdfTable.load(tmp_path / "missing.json", VOCAB)


def test_state_round_trip():
    counter = DocFreqCounter(len(VOCAB))
    counter.add([[1, 2], [2, 3]])
    again = DocFreqCounter.from_state(json.loads(json.dumps(counter.state())), len(VOCAB))
    assert again.n_docs == 2 and again.doc_freq.tolist() == counter.doc_freq.tolist()
