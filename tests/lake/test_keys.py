"""Master keys: providers, wrong or exposed keys, rotation without rewriting data."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest

from amzigo_lab.config import Settings, load_settings
from amzigo_lab.errors import KeyProviderError
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake import Lake
from amzigo_lab.lake.keys import EnvKeyProvider
from tests.conftest import DAY
from tests.lake.helpers import orders


def test_key_file_is_private_and_refused_when_exposed(lake: Lake, settings: Settings) -> None:
    key_file = settings.master_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not key_file.is_relative_to(settings.lake_dir)
    key_file.chmod(0o640)
    with pytest.raises(KeyProviderError, match="readable by other users.*chmod 600"):
        open_lake(settings)


def test_missing_and_wrong_master_key(lake: Lake, settings: Settings) -> None:
    lake.write("orders", "acme", DAY, orders(3), "b1")
    original = settings.master_key_file.read_bytes()
    settings.master_key_file.unlink()
    with pytest.raises(KeyProviderError, match="no master key.*amzigo init"):
        open_lake(settings)
    # a different, valid key file: refused before any data is touched
    other = load_settings(settings.home.parent / "other", env={})
    init_home(other).close()
    settings.master_key_file.write_bytes(other.master_key_file.read_bytes())
    settings.master_key_file.chmod(0o600)
    with pytest.raises(KeyProviderError, match="wrong key file"):
        open_lake(settings)
    settings.master_key_file.write_bytes(original)
    with open_lake(settings) as lk:
        assert lk.scan("orders").to_arrow().num_rows == 3


def test_env_key_provider(tmp_path) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"AMZIGO_KEY_PROVIDER": "env", "AMZIGO_MASTER_KEY": key}
    settings = load_settings(tmp_path / "h", env=env)
    assert settings.key_provider == "env"
    import os

    os.environ["AMZIGO_MASTER_KEY"] = key
    try:
        with init_home(settings) as lk:
            lk.write("orders", "acme", DAY, orders(2), "b1")
        with open_lake(settings) as lk:
            assert lk.scan("orders").to_arrow().num_rows == 2
        assert not settings.master_key_file.exists()
    finally:
        del os.environ["AMZIGO_MASTER_KEY"]
    with pytest.raises(KeyProviderError, match="AMZIGO_MASTER_KEY is not set"):
        EnvKeyProvider("AMZIGO_MASTER_KEY", env={}).load()
    with pytest.raises(KeyProviderError, match="32 bytes"):
        EnvKeyProvider("K", env={"K": base64.b64encode(b"short").decode()}).load()


def test_rotation_rewraps_keys_without_rewriting_data(lake: Lake, settings: Settings) -> None:
    lake.write("orders", "acme", DAY, orders(10), "b1")
    secret = lake.secret("some-secret")
    files = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in lake.root.rglob("*.parquet")}
    old_key_bytes = settings.master_key_file.read_bytes()
    old_id = lake.master_key_id

    new_id = lake.rotate_master_key()

    assert new_id != old_id
    assert settings.master_key_file.read_bytes() != old_key_bytes
    assert not list(settings.master_key_file.parent.glob("*.next"))
    assert not list(settings.master_key_file.parent.glob("*.old"))
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == files
    lake.write("orders", "acme", DAY.replace(day=2), orders(5, "n"), "b2")
    lake.close()
    with open_lake(settings) as reopened:
        assert reopened.master_key_id == new_id
        assert reopened.scan("orders").to_arrow().num_rows == 15
        assert reopened.secret("some-secret") == secret
        assert reopened.verify().ok


def test_interrupted_rotation_keeps_everything_readable(settings: Settings) -> None:
    steps: list[str] = []

    def crash_after_commit(step: str) -> None:
        steps.append(step)
        if step == "rotation_committed":
            raise RuntimeError("simulated crash")

    lake = init_home(settings, fault_hook=crash_after_commit)
    lake.write("orders", "acme", DAY, orders(4), "b1")
    with pytest.raises(RuntimeError):
        lake.rotate_master_key()
    lake.close()
    # both keys are on disk; the catalog names the new one; reads work and rotation completes
    with open_lake(settings) as lk:
        assert lk.scan("orders").to_arrow().num_rows == 4
        lk.rotate_master_key()
        assert lk.scan("orders").to_arrow().num_rows == 4


def test_doctor_fix_finishes_an_interrupted_rotation(settings: Settings) -> None:
    from amzigo_lab.lake import doctor

    def crash(step: str) -> None:
        if step == "rotation_committed":
            raise RuntimeError("simulated crash")

    lake = init_home(settings, fault_hook=crash)
    lake.write("orders", "acme", DAY, orders(4), "b1")
    with pytest.raises(RuntimeError):
        lake.rotate_master_key()
    lake.close()
    with open_lake(settings) as lk:
        assert doctor(lk, fix=True).ok
        assert not list(settings.master_key_file.parent.glob("*.next"))
    with open_lake(settings) as lk:
        assert lk.scan("orders").to_arrow().num_rows == 4


# -- provider-independent key ids; switching providers (issue 18 item 2) -----------------------


def _cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"AMZIGO_HOME": str(settings.home), **extra}


def test_switch_from_key_file_to_env_end_to_end(settings: Settings, monkeypatch) -> None:
    from click.testing import CliRunner

    from amzigo_lab.cli import main

    with init_home(settings) as lk:
        lk.write("orders", "acme", DAY, orders(4), "b1")
        file_id = lk.master_key_id
    res = CliRunner().invoke(main, ["keys", "export", "--to", "env", "--home", str(settings.home)])
    assert res.exit_code == 0, res.output
    lines = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    assert lines["AMZIGO_KEY_PROVIDER"] == "env"
    settings.master_key_file.unlink()  # the file copy is gone
    for name, value in lines.items():
        monkeypatch.setenv(name, value)
    env_settings = load_settings(settings.home)
    assert env_settings.key_provider == "env"
    with open_lake(env_settings) as lk:
        assert lk.master_key_id == file_id  # same key, same id, whichever provider holds it
        assert lk.scan("orders").to_arrow().num_rows == 4
        lk.write("orders", "acme", DAY, orders(2, prefix="p"), "b2")
        assert lk.scan("orders").to_arrow().num_rows == 6
        events = [e.action for e in lk.audit.log.search()]
    assert "keys.exported" in events


def test_catalog_of_an_older_version_opens_under_another_provider(settings: Settings) -> None:
    """Older versions named the key by a random id in the key file (mk-<hex>), or mk-env-<hex>:
    such a catalog opens under the env provider and its ids are migrated once."""
    with init_home(settings) as lk:
        lk.write("orders", "acme", DAY, orders(3), "b1")
        lk.secret("blind-index")
        new_id = lk.master_key_id
        secret = lk.master().secret
    legacy = "mk-" + secrets.token_hex(8)
    import sqlite3

    db = sqlite3.connect(settings.catalog_path)
    with db:
        db.execute("UPDATE keys SET master_key_id = ? WHERE master_key_id = ?", (legacy, new_id))
        db.execute("UPDATE secrets SET master_key_id = ?", (legacy,))
        db.execute("UPDATE meta SET value = ? WHERE key = 'master_key_id'", (legacy,))
    db.close()
    settings.master_key_file.unlink()
    env = {"AMZIGO_KEY_PROVIDER": "env", "AMZIGO_MASTER_KEY": base64.b64encode(secret).decode()}
    import os

    os.environ.update(env)
    try:
        with open_lake(load_settings(settings.home, env=env)) as lk:
            assert lk.master_key_id == new_id
            assert lk.scan("orders").to_arrow().num_rows == 3
            assert lk.secret("blind-index", create=False)
            events = [(e.action, e.reason) for e in lk.audit.log.search()]
    finally:
        for name in env:
            del os.environ[name]
    assert any(a == "keys.id_migrated" and f"{legacy} -> {new_id}" in r for a, r in events)
    db = sqlite3.connect(settings.catalog_path)
    ids = {
        r[0]
        for r in db.execute(
            "SELECT master_key_id FROM keys UNION SELECT master_key_id FROM secrets"
        )
    }
    db.close()
    assert ids == {new_id}


def test_legacy_key_file_id_is_an_alias(tmp_path) -> None:
    from amzigo_lab.lake.keys import FileKeyProvider, key_id_for

    secret = secrets.token_bytes(32)
    path = tmp_path / "master.key"
    payload = {
        "version": 1,
        "key_id": "mk-0011223344556677",
        "key": base64.b64encode(secret).decode(),
    }
    path.write_text(json.dumps(payload))
    path.chmod(0o600)
    (key,) = FileKeyProvider(path).load().values()
    assert key.key_id == key_id_for(secret) and key.aliases == ("mk-0011223344556677",)
    env_key = next(
        iter(EnvKeyProvider("K", env={"K": base64.b64encode(secret).decode()}).load().values())
    )
    assert env_key.key_id == key.key_id  # the same key has the same id under both providers


def test_kms_provider_never_exposes_the_kms_key(settings: Settings, tmp_path) -> None:
    from click.testing import CliRunner

    from amzigo_lab.cli import main
    from amzigo_lab.lake.kms import LocalKms

    kms = LocalKms(tmp_path / "kms")
    kms_key = kms.create_key()
    public = {n for n in dir(kms) if not n.startswith("_")}
    assert public == {"calls", "create_key", "decrypt", "description", "disable_key", "encrypt"}
    with init_home(settings) as lk:  # written with the key file
        lk.write("orders", "acme", DAY, orders(5), "b1")
        file_id = lk.master_key_id
        secret = lk.master().secret
    endpoint = f"local:{tmp_path / 'kms'}"
    res = CliRunner().invoke(
        main,
        ["keys", "export", "--to", "kms", "--kms-key-id", kms_key, "--kms-endpoint", endpoint,
         "--home", str(settings.home)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    blob = settings.master_key_kms_file.read_bytes()
    assert secret not in blob and base64.b64encode(secret) not in blob  # only the ciphertext
    settings.master_key_file.unlink()
    kms_settings = load_settings(
        settings.home,
        env={"AMZIGO_KEY_PROVIDER": "kms", "AMZIGO_KMS_KEY_ID": kms_key,
             "AMZIGO_KMS_ENDPOINT": endpoint},
    )  # fmt: skip
    with open_lake(kms_settings) as lk:
        assert lk.master_key_id == file_id
        assert lk.scan("orders").to_arrow().num_rows == 5
    kms.disable_key(kms_key)  # revoked at the KMS: the lake no longer opens
    with pytest.raises(KeyProviderError, match="disabled"):
        open_lake(kms_settings)


def test_export_to_file_never_overwrites(settings: Settings, tmp_path) -> None:
    from click.testing import CliRunner

    from amzigo_lab.cli import main
    from amzigo_lab.lake.keys import FileKeyProvider

    init_home(settings).close()
    home = ["--home", str(settings.home)]
    res = CliRunner().invoke(main, ["keys", "export", "--to", "file", *home])
    assert res.exit_code == 2 and "never overwritten" in res.output
    out = tmp_path / "copy.key"
    res = CliRunner().invoke(main, ["keys", "export", "--to", "file", "--out", str(out), *home])
    assert res.exit_code == 0, res.output
    assert out.stat().st_mode & 0o777 == 0o600
    (copy,) = FileKeyProvider(out).load().values()
    (orig,) = FileKeyProvider(settings.master_key_file).load().values()
    assert copy.key_id == orig.key_id and copy.secret == orig.secret
