"""Alerts that open incidents: `[incident] auto_open`, and `auto_open_since` for an exercise
on a home whose earlier alerts must stay as they are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from amzigo_lab.governance.audit.alerts import Alert
from amzigo_lab.governance.incidents import IncidentError, IncidentStore, auto_open
from tests.governance.gov_fixtures import build_world

NOW = dt.datetime.now(dt.UTC)


def _alert(actor: str, ago: dt.timedelta, event: str) -> Alert:
    at = (NOW - ago).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Alert("repeated_denials", actor, at, "3 denials within 10 min", (event,))


EARLIER = _alert("nog", dt.timedelta(hours=2), "e1")  # a person's earlier denials
LATER = _alert("ana", dt.timedelta(minutes=1), "e2")  # the exercise
SINCE = (NOW - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config(home: Path, extra: str) -> None:
    (home / "config.toml").write_text(f'[incident]\nauto_open = ["repeated_denials"]\n{extra}')


def test_alerts_raised_before_auto_open_since_open_nothing(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    home = world.settings.home
    with world.governance() as gov:
        store = IncidentStore(gov)
        try:
            _config(home, f'auto_open_since = "{SINCE}"\n')
            auto_open(store, [EARLIER, LATER])
            assert [i["source"] for i in store.incidents()] == ["alert:repeated_denials:ana"]
            _config(home, "")  # without it every alert of the rule opens one, as before
            auto_open(store, [EARLIER, LATER])
            assert sorted(i["source"] for i in store.incidents()) == [
                "alert:repeated_denials:ana", "alert:repeated_denials:nog",
            ]  # fmt: skip
            _config(home, 'auto_open_since = "yesterday"\n')
            with pytest.raises(IncidentError, match="auto_open_since.*ISO time"):
                auto_open(store, [LATER])
        finally:
            store.close()
