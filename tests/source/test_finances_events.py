"""Finances v0: every event list maps to rows or is quarantined with its kind (issue 12 item 2).

Amazon's own `listFinancialEvents*` example payloads (tests/fixtures/spapi-examples) hold no
ShipmentEventList at all; they used to stop the stream with `page has no ShipmentEventList`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections import Counter
from typing import Any

import pytest

from amzigo_lab.source.client import MalformedResponse
from amzigo_lab.source.streams.base import Collector
from amzigo_lab.source.streams.finances import KINDS, FinancesStream, parse_page
from tests.source.spapi_examples import (
    EXAMPLES,
    SHARED_MODELS,
    FakeStore,
    api_response,
    examples,
    fake_context,
    responses,
    result,
)

MODEL = "financesV0"
OPERATIONS = ("listFinancialEvents", "listFinancialEventsByOrderId", "listFinancialEventsByGroupId")
#: Per example: events per list, rows per event type, quarantined records per list.
EXPECTED: dict[str, tuple[dict[str, int], dict[str, int], dict[str, int]]] = {
    "listFinancialEvents": (
        {"PayWithAmazonEventList": 1, "ServiceProviderCreditEventList": 1,
         "RentalTransactionEventList": 1, "ProductAdsPaymentEventList": 1},
        {"PayWithAmazon": 2, "ServiceProviderCredit": 1, "RentalTransaction": 5,
         "ProductAdsPayment": 3},
        {},
    ),
    "listFinancialEventsByOrderId": (
        {"RetrochargeEventList": 1, "RentalTransactionEventList": 1,
         "ProductAdsPaymentEventList": 1, "ServiceFeeEventList": 1},
        {"Retrocharge": 3, "RentalTransaction": 5, "ProductAdsPayment": 3},
        {"ServiceFeeEventList": 1},
    ),
    "listFinancialEventsByGroupId": (
        {"ChargebackEventList": 1, "ImagingServicesFeeEventList": 1,
         "NetworkComminglingTransactionEventList": 1, "AffordabilityExpenseReversalEventList": 1,
         "TrialShipmentEventList": 1, "TaxWithholdingEventList": 1},
        {"Chargeback": 25, "ImagingServicesFee": 1, "NetworkComminglingTransaction": 2,
         "AffordabilityExpenseReversal": 5, "TrialShipment": 1, "TaxWithholding": 2},
        {},
    ),
}  # fmt: skip


def _parse(events: Any) -> tuple[dict[str, int], Collector]:
    collector = Collector(None, "finances", result("finances"))  # type: ignore[arg-type]
    return parse_page(events, collector), collector


def _rows_by_type(collector: Collector) -> dict[str, int]:
    return dict(Counter(r["event_type"] for r in collector.rows.get("financial_events", [])))


def _bad_by_kind(collector: Collector) -> dict[str, int]:
    return dict(Counter(raw["kind"] for _, raw, _ in collector.bad))


def _all_events() -> dict[str, list[Any]]:
    """Every example event of the model, by list."""
    found: dict[str, list[Any]] = {}
    for operation in OPERATIONS:
        for body in responses(MODEL, operation):
            for name, events in body["payload"]["FinancialEvents"].items():
                found.setdefault(name, []).extend(events)
    return found


def test_kinds_cover_every_event_list_of_the_model() -> None:
    lists = json.loads((EXAMPLES / "financesV0.event-lists.json").read_text())
    assert sorted(KINDS) == sorted(lists)
    assert len(lists) == 34


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_example_payload_maps_per_kind(operation: str) -> None:
    events_per_list, rows_per_type, bad_per_list = EXPECTED[operation]
    (body,) = responses(MODEL, operation)
    counts, collector = _parse(body["payload"]["FinancialEvents"])
    assert counts == events_per_list
    assert _rows_by_type(collector) == rows_per_type
    assert _bad_by_kind(collector) == bad_per_list
    for _, _, reason in collector.bad:
        assert reason.startswith("InvalidRecord: ServiceFeeEventList: kind not modelled")
    rows = collector.rows.get("financial_events", [])
    assert all(r["amount"] is not None and r["currency"] == "USD" for r in rows)
    assert len({r["event_id"] for r in rows}) == len(rows)  # every amount its own row


def test_error_examples_are_errors_not_pages() -> None:
    for operation in (*OPERATIONS, "listFinancialEventGroups"):
        for body in responses(MODEL, operation, "400"):
            assert "payload" not in body and body["errors"]


def test_a_page_may_hold_any_subset_of_lists() -> None:
    every = _all_events()
    # ShipmentEventList present but empty: the other kinds on the page still map
    page = {
        "ShipmentEventList": [],
        **{k: v for k, v in every.items() if k != "ServiceFeeEventList"},
    }
    counts, collector = _parse(page)
    assert counts["ShipmentEventList"] == 0
    assert _bad_by_kind(collector) == {}
    assert set(_rows_by_type(collector)) == {KINDS[k][0] for k, v in page.items() if v}
    # each list on its own
    for name, events in every.items():
        counts, collector = _parse({name: events})
        assert counts == {name: len(events)}
        assert len(collector.rows.get("financial_events", [])) + len(collector.bad) >= 1


def test_shipment_lists_keep_every_amount_and_their_old_ids() -> None:
    (chargeback,) = _all_events()["ChargebackEventList"]
    shipment = copy.deepcopy(chargeback)
    _, collector = _parse({"ShipmentEventList": [shipment], "RefundEventList": [chargeback]})
    rows = collector.rows["financial_events"]
    shipments = [r for r in rows if r["event_type"] == "Shipment"]
    refunds = [r for r in rows if r["event_type"] == "Refund"]
    assert len(shipments) == len(refunds) == 25
    kinds = Counter(r["charge_kind"] for r in shipments)
    assert kinds == {"charge": 8, "fee": 8, "promotion": 4, "amount": 5}  # 5: points, direct pay
    # item-level amounts keep the event id formula the lake already holds
    from amzigo_lab.source.streams.finances import _event_id

    item = shipment["ShipmentItemList"][0]
    first = item["ItemChargeList"][0]
    legacy = _event_id(
        "Shipment", shipment["AmazonOrderId"], "2020-02-05T13:56:00Z", item["OrderItemId"],
        "charge", first["ChargeType"], 0,
    )  # fmt: skip
    assert legacy in {r["event_id"] for r in shipments}


def test_unknown_lists_and_dateless_kinds_are_quarantined_with_their_kind() -> None:
    (chargeback,) = _all_events()["ChargebackEventList"]
    counts, collector = _parse(
        {"BrandNewEventList": [{"PostedDate": "2026-11-01T00:00:00Z"}, {}],
         "DebtRecoveryEventList": [{"DebtRecoveryType": "DebtPayment"}],
         "ShipmentEventList": [{**chargeback, "PostedDate": None}]}
    )  # fmt: skip
    assert counts == {"BrandNewEventList": 2, "DebtRecoveryEventList": 1, "ShipmentEventList": 1}
    assert _bad_by_kind(collector) == counts
    assert "financial_events" not in collector.rows
    reasons = sorted(reason for _, _, reason in collector.bad)
    assert reasons[0].startswith("BrandNewEventList: unknown event list")


@pytest.mark.parametrize("events", [None, {}, {"ShipmentEventList": [], "RefundEventList": []}])
def test_empty_pages_are_no_data(events: Any) -> None:
    counts, collector = _parse(events)
    assert not collector.rows and not collector.bad
    assert sum(counts.values()) == 0


def test_a_non_object_page_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        _parse(["ShipmentEventList"])


class _Finances:
    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.queries: list[dict[str, Any]] = []

    def list_financial_events(self, **query: Any) -> Any:
        self.queries.append(query)
        return api_response(self.pages.pop(0) if self.pages else {})


@pytest.mark.parametrize("operation", OPERATIONS)
def test_stream_writes_every_example_kind(operation: str) -> None:
    (body,) = responses(MODEL, operation)
    body = copy.deepcopy(body)
    body["payload"].pop("NextToken", None)
    store = FakeStore()
    res = result("finances")
    FinancesStream().run(fake_context(_Finances([body]), store), res)
    events_per_list, rows_per_type, bad_per_list = EXPECTED[operation]
    assert res.status == "ok"
    assert res.events == events_per_list
    assert dict(Counter(r["event_type"] for r in store.written["financial_events"])) == (
        rows_per_type
    )
    assert res.quarantined == sum(bad_per_list.values())
    assert store.state["cursor"] == "2026-11-20T12:00:00Z"


def test_stream_treats_an_empty_204_page_as_no_data() -> None:
    store = FakeStore()
    res = result("finances")
    FinancesStream().run(fake_context(_Finances([{}]), store), res)
    assert res.status == "ok" and res.quarantined == 0 and not store.written


@pytest.mark.skipif(not SHARED_MODELS.exists(), reason="the shared model copy is not here")
def test_fixture_copies_match_the_official_models() -> None:
    spec = importlib.util.spec_from_file_location("extract", EXAMPLES / "extract.py")
    assert spec is not None and spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    for name, text in extract.render(SHARED_MODELS).items():
        assert (EXAMPLES / name).read_text() == text, name


def test_examples_cover_the_operations() -> None:
    assert set(OPERATIONS) <= set(examples(MODEL))


def test_amount_kinds_and_types_of_a_generic_event() -> None:
    usd = {"CurrencyCode": "USD", "CurrencyAmount": -2.5}
    _, collector = _parse(
        {
            "CouponPaymentEventList": [
                {
                    "PostedDate": "2026-11-19T10:00:00Z",
                    "CouponId": "C1",
                    "FeeComponent": {"FeeType": "CouponClipFee", "FeeAmount": usd},
                    "ChargeComponent": {"ChargeType": "Principal", "ChargeAmount": usd},
                    "TotalAmount": usd,
                }
            ],
            "SAFETReimbursementEventList": [
                {"PostedDate": "2026-11-19T10:00:00Z", "ReimbursedAmount": usd, "FeeAmount": usd}
            ],
        }
    )
    rows = {
        (r["event_type"], r["charge_kind"], r["charge_type"])
        for r in collector.rows["financial_events"]
    }
    assert rows == {
        ("CouponPayment", "fee", "CouponClipFee"),
        ("CouponPayment", "charge", "Principal"),
        ("CouponPayment", "amount", "TotalAmount"),
        ("SAFETReimbursement", "amount", "ReimbursedAmount"),
        ("SAFETReimbursement", "fee", "FeeAmount"),
    }
