import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsrkit.core import IngestError, RecordError
from lsrkit.ingest import FieldMapping, Validator, read_records


def _jsonl(tmp_path, lines):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_bad_lines_come_back_as_errors_with_positions(tmp_path):
    path = _jsonl(tmp_path, ['{"_id": "1", "text": "a"}', "{not json", "[1, 2]", "", '{"_id": "2", "text": "b"}'])
    records = list(read_records(path))
    assert [r.position for r in records] == [f"corpus.jsonl:{i}" for i in range(1, 6)]
    assert records[0].data == {"_id": "1", "text": "a"}
    assert "invalid JSON" in records[1].error and "not an object" in records[2].error and records[3].error == "empty line"


def test_beir_folder_csv_tsv_and_parquet(tmp_path):
    _jsonl(tmp_path, ['{"_id": "1", "title": "t", "text": "a"}'])
    assert next(read_records(tmp_path)).data["title"] == "t"
    (tmp_path / "c.csv").write_text('_id,text,lang\n1,"hello, world",en\n2,bye,fr\n')
    rows = list(read_records(tmp_path / "c.csv"))
    assert rows[0].data == {"_id": "1", "text": "hello, world", "lang": "en"} and rows[1].position == "c.csv:row 3"
    (tmp_path / "c.tsv").write_text("_id\ttext\n7\tx\n")
    assert next(read_records(tmp_path / "c.tsv")).data["_id"] == "7"
    pq.write_table(pa.table({"_id": ["p1", "p2"], "text": ["one", "two"]}), tmp_path / "c.parquet")
    assert [r.data["_id"] for r in read_records(tmp_path / "c.parquet")] == ["p1", "p2"]


def test_unknown_sources_are_refused(tmp_path):
    with pytest.raises(IngestError):
        list(read_records(tmp_path / "missing.jsonl"))
    (tmp_path / "x.bin").write_text("?")
    with pytest.raises(IngestError):
        list(read_records(tmp_path / "x.bin"))


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"text": "no id"}, "missing id"),
        ({"_id": "", "text": "x"}, "missing id"),
        ({"_id": ["a"], "text": "x"}, "id must be"),
        ({"_id": "a"}, "missing text"),
        ({"_id": "a", "text": 5}, "text must be a string"),
        ({"_id": "a", "text": "   "}, "empty text"),
        ({"_id": "a", "text": "x" * 1_000_001}, "limit"),
        ({"_id": "a", "text": "x", "title": 3}, "title must be"),
    ],
)
def test_validator_reasons(tmp_path, data, reason):
    from lsrkit.ingest.sources import SourceRecord

    with pytest.raises(RecordError, match=reason) as info:
        Validator().document(SourceRecord(0, "f:1", data=data))
    assert info.value.position == "f:1"


def test_duplicates_and_metadata(tmp_path):
    from lsrkit.ingest.sources import SourceRecord

    validator = Validator(FieldMapping(id="doc", text="body"))
    doc = validator.document(SourceRecord(0, "f:1", data={"doc": 7, "body": "x", "lang": "en", "year": 2020, "nested": {"a": 1}}))
    assert doc.id == "7" and doc.metadata == {"lang": "en", "year": 2020}
    with pytest.raises(RecordError, match="duplicate"):
        validator.document(SourceRecord(1, "f:2", data={"doc": "7", "body": "y"}))
