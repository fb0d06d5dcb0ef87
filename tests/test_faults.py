"""Issue 12 item 4: faults end in a one-line error naming the cause and the fix (exit 2), with
nothing half-written: a dangling key link, a non-UTF-8 or directory config, a full disk."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.cli.common import handle_errors, is_disk_full

ENV = {"AMZIGO_SANDBOX_TODAY": "2026-11-20", "AMZIGO_SANDBOX_SEED": "7", "AMZIGO_HOME": None}


def _init(home: Path) -> None:
    result = CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)], env=ENV)
    assert result.exit_code == 0, result.output


def _one_line_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], result.output


def test_a_dangling_symlink_at_the_key_path(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    key = home / "keys" / "master.key"
    key.rename(tmp_path / "backup.key")
    target = tmp_path / "unmounted" / "master.key"
    key.symlink_to(target)
    for args in (["doctor"], ["ingest"], ["init"], ["doctor", "--fix"]):
        result = CliRunner().invoke(main, [*args, "--home", str(home)], env=ENV)
        _one_line_error(result, "is a symlink to", "does not exist", "restore")
    assert not target.exists() and not target.parent.exists()  # no key written through it
    assert key.is_symlink() and not (home / "keys" / "master.key.next").exists()


def test_a_directory_at_the_key_path(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    key = home / "keys" / "master.key"
    key.rename(tmp_path / "backup.key")
    key.mkdir()
    result = CliRunner().invoke(main, ["doctor", "--home", str(home)], env=ENV)
    _one_line_error(result, "is not a file", "restore the key file")


def test_a_non_utf8_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    (home / "config.toml").write_bytes(b"sandbox_seed = 7\n# caf\xe9\n")
    for args in (["purge", "--dry-run"], ["ingest"], ["init"], ["doctor"]):
        result = CliRunner().invoke(main, [*args, "--home", str(home)], env=ENV)
        _one_line_error(result, "is not UTF-8", "save it as UTF-8")
    assert (home / "config.toml").read_bytes().endswith(b"\xe9\n")  # left as found


def test_a_directory_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").mkdir()
    result = CliRunner().invoke(main, ["init", "--home", str(home)], env=ENV)
    _one_line_error(result, "is a directory", "rmdir")
    assert not (home / "catalog.sqlite").exists() and not (home / "keys").exists()


def test_disk_full_is_recognised_through_wrappers() -> None:
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(OSError(28, "No space left on device"))
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as inner:
            raise RuntimeError("checkpoint failed") from inner
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(2, "No such file"))

    @click.command()
    @handle_errors
    def full() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    _one_line_error(CliRunner().invoke(full, []), "no space left", "doctor --fix")


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", f"amzigo-test-{uuid.uuid4().hex[:6]}",
         str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_during_ingest(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "mnt", "4m") as mnt:
        home = mnt / "h"
        _init(home)
        args = ["ingest", "--tenant", "acme-outdoor", "--streams", "orders", "--home", str(home)]
        args += ["--backfill-days", "30"]
        result = CliRunner().invoke(main, args, env=ENV)
        _one_line_error(result, "no space left on the device", "doctor --fix")
        assert not [p for p in home.rglob("*") if ".tmp" in p.name]  # nothing half-written
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        doctor = CliRunner().invoke(main, ["doctor", "--fix", "--home", str(home)], env=ENV)
        assert doctor.exit_code == 0, doctor.output
        verify = CliRunner().invoke(main, ["doctor", "--home", str(home)], env=ENV)
        assert verify.exit_code == 0, verify.output  # doctor re-reads the catalog and files
        again = CliRunner().invoke(main, args, env=ENV)
        assert again.exit_code == 0, again.output


def test_a_full_disk_for_the_catalog(tmp_path: Path) -> None:
    """SQLite cannot even open its WAL on a full disk: one line naming the full disk (not
    "restore from backup"); the catalog is intact once space is freed."""
    with _tmpfs(tmp_path / "mnt", "2m") as mnt:
        home = mnt / "h"
        _init(home)
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        for args in (["purge", "--dry-run"], ["ingest"], ["doctor"]):
            result = CliRunner().invoke(main, [*args, "--home", str(home)], env=ENV)
            _one_line_error(result, "no space left on the device", "free space")
        filler.unlink()
        result = CliRunner().invoke(main, ["doctor", "--home", str(home)], env=ENV)
        assert result.exit_code == 0, result.output


def test_init_on_a_full_disk_leaves_no_truncated_key(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "mnt", "1m") as mnt:
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        home = mnt / "h"
        result = CliRunner().invoke(main, ["init", "--sandbox", "--home", str(home)], env=ENV)
        _one_line_error(result, "no space left on the device", "free space")
        keys = home / "keys"
        assert not keys.exists() or list(keys.iterdir()) == []  # no truncated or temporary key
        assert not (home / "config.toml.tmp").exists()
        filler.unlink()
        _init(home)
        listed = CliRunner().invoke(main, ["doctor", "--home", str(home)], env=ENV)
        assert listed.exit_code == 0 and "sandbox" in listed.output, listed.output


def test_a_lost_certificate_signing_key_is_never_replaced(tmp_path: Path) -> None:
    import datetime as dt

    from amzigo_lab.compliance import purge
    from amzigo_lab.compliance.certificates import key_path, published_key_path
    from amzigo_lab.config import load_settings
    from amzigo_lab.errors import AmzigoError
    from amzigo_lab.home import open_lake
    from tests.lake.helpers import orders

    home = tmp_path / "h"
    _init(home)
    settings = load_settings(home, env={})
    assert (home / "keys" / "certificate-signing.pem").exists()  # created by init
    with open_lake(settings) as lake:
        lake.write("orders", "acme", dt.date(2020, 1, 1), orders(2), "o1")
        cert_id = purge(lake).certificate_id
        assert cert_id
        lake.write("orders", "beta", dt.date(2020, 1, 1), orders(2), "o2")  # due too
        published = published_key_path(lake).read_bytes()
        key_path(lake).rename(tmp_path / "stolen.pem")
    result = CliRunner().invoke(main, ["purge", "--home", str(home)])  # would sign: refused
    _one_line_error(result, "certificate-signing key", "restore it from backup")
    with open_lake(settings) as lake:
        with pytest.raises(AmzigoError):
            purge(lake)
        assert [p.state for p in lake.catalog.partitions(None, ["beta"])] == ["live"]
        assert published_key_path(lake).read_bytes() == published
        assert not key_path(lake).exists()
