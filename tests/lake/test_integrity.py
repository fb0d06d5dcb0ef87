"""Integrity: tampered, truncated and missing files are named; orphans are found and swept."""

from __future__ import annotations

import os

import pytest

from amzigo_lab.lake import Lake, doctor
from tests.conftest import DAY
from tests.lake.helpers import orders


@pytest.fixture
def two_files(lake: Lake) -> list[str]:
    a = lake.write("orders", "acme", DAY, orders(50), "b1").files[0]
    b = lake.write("orders", "bluebird", DAY, orders(50), "b1").files[0]
    return [a, b]


def test_clean_lake_verifies(lake: Lake, two_files: list[str]) -> None:
    report = lake.verify()
    assert report.ok and report.files_checked == 2 and report.rows_checked == 100


def test_flipped_byte_is_named(lake: Lake, two_files: list[str]) -> None:
    path = lake.path(two_files[0])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = lake.verify()
    assert [(p.kind, p.subject) for p in report.problems] == [("tampered", two_files[0])]


def test_re_hashed_tampering_still_fails_decryption(lake: Lake, two_files: list[str]) -> None:
    # An attacker who can also edit the catalog's checksum is still stopped by AES-GCM tags,
    # and the edited file row fails its MAC (lake/rowmac.py).
    path = lake.path(two_files[1])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    import hashlib

    lake.catalog.db.execute(
        "UPDATE files SET sha256 = ? WHERE rel_path = ?",
        (hashlib.sha256(bytes(data)).hexdigest(), two_files[1]),
    )
    report = lake.verify()
    kinds = [(p.kind, p.subject) for p in report.problems]
    assert kinds[1:] == [("undecryptable", two_files[1])]
    assert kinds[0][0] == "row_mac" and "tenant bluebird" in kinds[0][1]
    assert two_files[1] in report.problems[0].detail


def test_truncated_and_missing_files(lake: Lake, two_files: list[str]) -> None:
    path = lake.path(two_files[0])
    os.truncate(path, path.stat().st_size - 10)
    lake.path(two_files[1]).unlink()
    kinds = {p.subject: p.kind for p in lake.verify().problems}
    assert kinds == {two_files[0]: "tampered", two_files[1]: "missing"}


def test_doctor_finds_and_fixes_orphans(lake: Lake, two_files: list[str]) -> None:
    orphan = lake.path(two_files[0]).with_name("part-orphan.parquet")
    orphan.write_bytes(b"PARE...")
    tmp = lake.path(two_files[0]).with_name(".part-x.parquet.tmp")
    tmp.write_bytes(b"half")
    report = doctor(lake)
    assert {p.kind for p in report.problems} == {"orphan"} and len(report.problems) == 2
    fixed = doctor(lake, fix=True)
    assert fixed.ok and not orphan.exists() and not tmp.exists()
    assert lake.scan("orders").to_arrow().num_rows == 100


def test_doctor_flags_an_exposed_key_file(lake: Lake, two_files: list[str]) -> None:
    lake.settings.master_key_file.chmod(0o644)
    report = doctor(lake)
    assert any(p.kind == "permissions" for p in report.problems)
