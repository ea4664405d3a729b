"""The index journal: round trip, last line wins, damaged lines cost only a rescan."""

from __future__ import annotations

import json
from pathlib import Path

from mediastream.dicom.display import Window
from mediastream.dicom.ingest import InstanceHeader
from mediastream.dicom.series import InstanceRecord
from mediastream.dicom.store import IndexJournal


def record(sop: str, size: int = 10) -> InstanceRecord:
    header = InstanceHeader(
        sop_instance_uid=sop,
        series_instance_uid="1.2",
        transfer_syntax="1.2.840.10008.1.2.1",
        modality="CT",
        description="Ünïcode description",
        rows=4,
        columns=5,
        frames=2,
        samples_per_pixel=1,
        photometric="MONOCHROME2",
        pixel_spacing=(0.5, 0.6),
        position=(1.0, 2.0, 3.0),
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        instance_number=7,
        windows=(Window(40, 400, "SOFT"), Window(-600, 1500)),
    )
    return InstanceRecord(header, f"1.2/{sop}.dcm", size, 123456789, 987654321)


def test_records_round_trip(tmp_path: Path) -> None:
    journal = IndexJournal(tmp_path / "index.jsonl")
    records = [record("1.2.1"), record("1.2.2")]
    for r in records:
        journal.append(r)
    assert journal.read() == {r.path: r for r in records}
    assert journal.lines == 2


def test_the_last_line_for_a_path_wins_and_rewrite_compacts(tmp_path: Path) -> None:
    journal = IndexJournal(tmp_path / "index.jsonl")
    journal.append(record("1.2.1", size=10))
    journal.append(record("1.2.1", size=20))
    assert journal.read()["1.2/1.2.1.dcm"].size == 20
    journal.rewrite([record("1.2.1", size=20)])
    assert len(journal.path.read_text().splitlines()) == 1 and journal.lines == 1
    assert not journal.path.with_name("index.jsonl.tmp").exists()


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "index.jsonl"
    good = record("1.2.3")
    journal = IndexJournal(path)
    journal.append(good)
    valid = json.loads(path.read_text())
    wrong_type = {**valid, "path": "1.2/1.2.4.dcm", "rows": "four"}
    old_version = {**valid, "path": "1.2/1.2.5.dcm", "v": 0}
    with path.open("a") as f:
        f.write(json.dumps(wrong_type) + "\n" + json.dumps(old_version) + "\n")
        f.write('{"v": 1, "path": "x"}\n[1, 2]\n{"half a line": ')
    assert journal.read() == {good.path: good}


def test_a_missing_journal_is_empty(tmp_path: Path) -> None:
    assert IndexJournal(tmp_path / "absent.jsonl").read() == {}
