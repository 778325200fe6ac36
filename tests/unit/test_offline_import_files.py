"""The importer's CSV files of the offline load (``graph.migrate.offline``): every value keeps
its type and text, rows with other property columns go to other files, and what the format
cannot carry exactly is refused (the online path then loads it)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graph.migrate.offline import (
    ARRAY_DELIMITER,
    ImportSet,
    OfflineUnsupportedError,
    write_import_files,
)


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def node(uid: str, labels: list[str], **props: object) -> dict[str, object]:
    return {"labels": labels, "props": {"uid": uid, **props}}


def test_nodes_keep_types_and_text(tmp_path: Path) -> None:
    files = write_import_files([ImportSet(tag="kgr:2", entities=[
        node("d:1", ["City"], name='Say "hi", then go', population=3, area=0.1, big=False,
             aliases=["a;b", "é"]),
    ])], tmp_path)
    assert len(files.nodes) == 1 and not files.multiline
    header, row = read(files.nodes[0])
    assert header == ["uid:ID", ":LABEL", "_mig:string", "aliases:string[]", "area:double",
                      "big:boolean", "name:string", "population:long"]
    assert row == ["d:1", f"Entity{ARRAY_DELIMITER}City", "kgr:2", f"a;b{ARRAY_DELIMITER}é",
                   "0.1", "false", 'Say "hi", then go', "3"]


def test_rows_with_other_columns_go_to_other_files(tmp_path: Path) -> None:
    files = write_import_files([ImportSet(
        tag="kgr:3",
        entities=[node("d:1", ["A"], name="x"), node("d:2", ["B"], name="y", n=1),
                  node("d:3", ["A"], name="z", n=2.5)],
        relations=[("R", {"s": "d:1", "t": "d:2", "p": {}}, True),
                   ("R", {"s": "d:2", "t": "d:3", "p": {"w": None}}, True),
                   ("S T", {"s": "d:3", "t": "d:1", "p": {"w": 2}}, False)])], tmp_path)
    # an int and a float of the same key are different columns: each keeps its type
    assert sorted(read(f)[0][2:] for f in files.nodes) == [
        ["_mig:string", "n:double", "name:string"], ["_mig:string", "n:long", "name:string"],
        ["_mig:string", "name:string"]]
    rels = {tuple(read(f)[0]): read(f)[1:] for f in files.relationships}
    # own relationships are untagged, one to an earlier migration's node carries the tag
    assert rels[(":START_ID", ":END_ID", ":TYPE")] == [["d:1", "d:2", "R"], ["d:2", "d:3", "R"]]
    assert rels[(":START_ID", ":END_ID", ":TYPE", "_mig:string", "w:long")] == [
        ["d:3", "d:1", "S T", "kgr:3", "2"]]


def test_an_empty_string_stays_a_string_and_newlines_ask_for_multiline(tmp_path: Path) -> None:
    files = write_import_files([ImportSet(tag="t", entities=[
        node("d:1", ["A"], name="", note="two\nlines")])], tmp_path)
    assert files.multiline
    text = files.nodes[0].read_text(encoding="utf-8")
    assert '"",' in text  # quoted: the importer reads it as "", an unquoted field as null
    assert read(files.nodes[0])[1][-2:] == ["", "two\nlines"]


@pytest.mark.parametrize("value", [float("nan"), 2**64, [1, "a"], [], ["", "b"],
                                   [f"a{ARRAY_DELIMITER}b"], {"a": 1}, [[1]]])
def test_values_the_format_cannot_carry_are_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(OfflineUnsupportedError):
        write_import_files([ImportSet(tag="t", entities=[node("d:1", ["A"], x=value)])],
                           tmp_path)
