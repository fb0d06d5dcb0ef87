"""Amazon's example responses (copied under tests/fixtures/spapi-examples) and a fake context.

The fake context runs a real stream against canned responses: no sandbox, no lake, no clock.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from amzigo_lab.source.streams.base import StreamContext, StreamResult

EXAMPLES = Path(__file__).parent.parent / "fixtures" / "spapi-examples"
SHARED_MODELS = Path("/work/shared/spapi-models")
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@cache
def examples(model: str) -> dict[str, list[dict[str, Any]]]:
    """{operationId: [{"status", "response"}]} of one model."""
    data: dict[str, list[dict[str, Any]]] = json.loads(
        (EXAMPLES / f"{model}.examples.json").read_text()
    )
    return data


def responses(model: str, operation: str, status: str = "200") -> list[Any]:
    """The example bodies of one operation and status."""
    return [c["response"] for c in examples(model)[operation] if c["status"] == status]


class FakeStore:
    """The LakeGateway calls streams make, in memory."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})
        self.written: dict[str, list[dict[str, Any]]] = {}
        self.quarantined: list[tuple[str, Any, str]] = []
        self.tables: dict[str, pa.Table] = {}  # what `column` reads (e.g. order_items)

    def get_state(self, tenant: str, stream: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.state))

    def update_state(self, tenant: str, stream: str, changes: dict[str, Any]) -> dict[str, Any]:
        self.state.update(json.loads(json.dumps(changes)))
        return self.state

    def column(self, dataset: str, tenant: str, columns: list[str]) -> pa.Table:
        table = self.tables.get(dataset)
        if table is None:
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        return table.select(columns)

    def write(self, dataset: str, tenant: str, day: dt.date, table: pa.Table, floor: Any) -> int:
        self.written.setdefault(dataset, []).extend(table.to_pylist())
        return table.num_rows

    def quarantine(self, stream: str, tenant: str, day: dt.date, records: Any) -> int:
        records = list(records)
        self.quarantined.extend(records)
        return len(records)


class FakeClock:
    """An injected clock: sleeping only moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeScheduler:
    """Calls the request once (no limits, no retries)."""

    def __init__(self) -> None:
        self.clock = FakeClock()

    def call(self, tenant: str, operation: str, request: Callable[[], Any], forget: Any) -> Any:
        return request()


class FakeFactory:
    """Hands out one fake client whatever the API class."""

    def __init__(self, client: Any) -> None:
        self.fake = client

    def client(self, api_class: type, tenant: str, marketplace_id: str) -> Any:
        return self.fake

    def forget_token(self, tenant: str) -> None:
        pass


def api_response(body: Any) -> Any:
    """What the checked sp_api client returns for `body` (a 204 is `{}`)."""
    from sp_api.base import ApiResponse

    return ApiResponse(**(body or {}))


def fake_context(
    client: Any, store: FakeStore, marketplaces: tuple[str, ...] = ("ATVPDKIKX0DER",)
) -> StreamContext:
    """A StreamContext over a fake client and store (the API's now is NOW)."""
    return StreamContext(
        tenant="acme-outdoor",
        marketplaces=marketplaces,
        factory=FakeFactory(client),  # type: ignore[arg-type]
        scheduler=FakeScheduler(),  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        today=NOW.date(),
        now=NOW,
        since=(NOW - dt.timedelta(days=3)).date(),
        backfill_days=3,
        pii=False,
        time_scale=1.0,
        report_wait=0.0,
        max_solicitation_checks=10,
        progress=lambda event: None,
    )


def result(stream: str) -> StreamResult:
    """An empty result."""
    return StreamResult("acme-outdoor", stream)
