"""Master keys: providers, wrong or exposed keys, rotation without rewriting data."""

from __future__ import annotations

import base64
import hashlib
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
