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
        ({"_id": "a", "text": "lone \ud800 surrogate"}, "text has a character UTF-8 cannot carry at offset 5"),
        ({"_id": "a", "text": "x", "title": "\udfff"}, "title has a character UTF-8"),
        ({"_id": "a\ud800", "text": "x"}, "id has a character UTF-8"),
        ({"_id": "a", "text": "x", "lang": "\ud800"}, "metadata field 'lang'"),
        ({"_id": "a", "text": "x", "score": float("nan")}, "JSON cannot carry"),
        ({"_id": "a", "text": "x", "title": "t" * 10_001}, "title has 10001 characters"),
        ({"_id": "a", "text": "x", "notes": "n" * 40_000}, "metadata is 4"),
        ({"_id": "é" * 253, "text": "x"}, "UTF-8 bytes"),  # 506 bytes: fits 512 characters, not OpenSearch's _id with "#<n>"
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


def test_a_lone_surrogate_in_jsonl_is_a_record_error_and_its_dead_letter_is_written(tmp_path):
    from lsrkit.ingest import DeadLetter, read_dead_letters

    path = _jsonl(tmp_path, ['{"_id": "1", "text": "a \\ud800 b"}', '{"_id": "2", "text": "fine"}'])
    records = list(read_records(path))
    validator = Validator()
    with pytest.raises(RecordError, match="lone surrogate") as info:
        validator.document(records[0])
    assert validator.document(records[1]).id == "2"
    dead = DeadLetter(tmp_path / "dead.jsonl")
    dead.add(position=info.value.position, reason=info.value.reason, record_id="1", raw=records[0].data["text"])  # the surrogate itself
    dead.close()
    assert read_dead_letters(tmp_path / "dead.jsonl")[0]["raw"] == "a \ud800 b"  # written as its JSON escape, read back as it was


def test_a_csv_row_that_is_not_utf8_is_an_error_naming_it_and_the_other_rows_read(tmp_path):
    (tmp_path / "c.csv").write_bytes(b"_id,text\n1,fine\n2,caf\xe9\n3,also fine\n")
    rows = list(read_records(tmp_path / "c.csv"))
    assert [r.data["_id"] for r in rows if r.data] == ["1", "3"]
    assert rows[1].error == "not UTF-8 (field 'text')" and rows[1].position == "c.csv:row 3" and "\\xe9" in (rows[1].raw or "")


def test_passage_ids_cannot_collide_whatever_the_document_ids_hold(sparse_encoder):
    from lsrkit.core import Document
    from lsrkit.ingest import Chunker

    chunker = Chunker(sparse_encoder.model.tokenizer.tokenizer, window=16, overlap=0)
    long = chunker.split(Document("x", " ".join(["word"] * 60)))
    short = chunker.split(Document("x#1", "short"))
    assert len(long) > 2 and [p.id for p in short] == ["x#1#0"]
    assert not {p.id for p in long} & {p.id for p in short}
    assert all(p.id.rsplit("#", 1)[0] == p.doc_id for p in [*long, *short])
