"""Finances v0 `listFinancialEvents` -> financial_events (every amount of every event kind).

Each of the 34 event lists of the v0 model maps to rows, one per money amount of an event
(`KINDS`; `event_type` is the list name without `EventList`); a page may hold any subset of
them. Kinds the model gives no posted date (service fees, debt recovery, loan servicing) and
lists this code does not know are counted in `StreamResult.events` and quarantined with their
kind, never dropped.

Windows are cut into 7-day chunks (page tokens expire; keep windows short) and the cursor moves
after each complete chunk. Each run starts `LOOKBACK` before the cursor for late postings.
Event ids are hashes of what identifies a posting, so re-fetched events de-duplicate.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from amzigo_lab.source.client import MalformedResponse
from amzigo_lab.source.streams.base import (
    Collector,
    InvalidRecord,
    StreamContext,
    StreamResult,
    iso_z,
    money,
    ts,
)

LOOKBACK = dt.timedelta(days=2)
CHUNK = dt.timedelta(days=7)


def _event_id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _amount(node: dict[str, Any] | None) -> tuple[Any, Any]:
    node = node or {}
    return money(node.get("CurrencyAmount")), node.get("CurrencyCode")


#: Every event list of the Finances v0 model: list name -> (event_type, posted-date field).
#: A date field of None: the model gives this kind no posted date, so it is not modelled as
#: rows; its events are counted and quarantined with their kind.
KINDS: dict[str, tuple[str, str | None]] = {
    "ShipmentEventList": ("Shipment", "PostedDate"),
    "ShipmentSettleEventList": ("ShipmentSettle", "PostedDate"),
    "RefundEventList": ("Refund", "PostedDate"),
    "GuaranteeClaimEventList": ("GuaranteeClaim", "PostedDate"),
    "EBTRefundReimbursementOnlyEventList": ("EBTRefundReimbursementOnly", "PostedDate"),
    "ChargebackEventList": ("Chargeback", "PostedDate"),
    "PayWithAmazonEventList": ("PayWithAmazon", "TransactionPostedDate"),
    "ServiceProviderCreditEventList": ("ServiceProviderCredit", "TransactionCreationDate"),
    "RetrochargeEventList": ("Retrocharge", "PostedDate"),
    "RentalTransactionEventList": ("RentalTransaction", "PostedDate"),
    "ProductAdsPaymentEventList": ("ProductAdsPayment", "postedDate"),
    "ServiceFeeEventList": ("ServiceFee", None),
    "SellerDealPaymentEventList": ("SellerDealPayment", "postedDate"),
    "DebtRecoveryEventList": ("DebtRecovery", None),
    "LoanServicingEventList": ("LoanServicing", None),
    "AdjustmentEventList": ("Adjustment", "PostedDate"),
    "SAFETReimbursementEventList": ("SAFETReimbursement", "PostedDate"),
    "SellerReviewEnrollmentPaymentEventList": ("SellerReviewEnrollmentPayment", "PostedDate"),
    "FBALiquidationEventList": ("FBALiquidation", "PostedDate"),
    "CouponPaymentEventList": ("CouponPayment", "PostedDate"),
    "ImagingServicesFeeEventList": ("ImagingServicesFee", "PostedDate"),
    "NetworkComminglingTransactionEventList": ("NetworkComminglingTransaction", "PostedDate"),
    "AffordabilityExpenseEventList": ("AffordabilityExpense", "PostedDate"),
    "AffordabilityExpenseReversalEventList": ("AffordabilityExpenseReversal", "PostedDate"),
    "RemovalShipmentEventList": ("RemovalShipment", "PostedDate"),
    "RemovalShipmentAdjustmentEventList": ("RemovalShipmentAdjustment", "PostedDate"),
    "TrialShipmentEventList": ("TrialShipment", "PostedDate"),
    "TDSReimbursementEventList": ("TDSReimbursement", "PostedDate"),
    "AdhocDisbursementEventList": ("AdhocDisbursement", "PostedDate"),
    "TaxWithholdingEventList": ("TaxWithholding", "PostedDate"),
    "ChargeRefundEventList": ("ChargeRefund", "PostedDate"),
    "FailedAdhocDisbursementEventList": ("FailedAdhocDisbursement", "PostedDate"),
    "ValueAddedServiceChargeEventList": ("ValueAddedServiceCharge", "PostedDate"),
    "CapacityReservationBillingEventList": ("CapacityReservationBilling", "PostedDate"),
}
#: The item amounts read before every amount was kept, whose event ids stay as they were:
#: (item list, item id field, (kind, amount list, type field, amount field)...) for a Refund
#: and for every other shipment-like event.
_LEGACY_REFUND = ("ShipmentItemAdjustmentList", "OrderAdjustmentItemId", (
    ("charge", "ItemChargeAdjustmentList", "ChargeType", "ChargeAmount"),
    ("fee", "ItemFeeAdjustmentList", "FeeType", "FeeAmount"),
    ("promotion", "PromotionAdjustmentList", "PromotionType", "PromotionAmount"),
))  # fmt: skip
_LEGACY_SHIPMENT = ("ShipmentItemList", "OrderItemId", (
    ("charge", "ItemChargeList", "ChargeType", "ChargeAmount"),
    ("fee", "ItemFeeList", "FeeType", "FeeAmount"),
    ("promotion", "PromotionList", "PromotionType", "PromotionAmount"),
))  # fmt: skip
_ITEM_LISTS = ("ShipmentItemList", "ShipmentItemAdjustmentList")
_SKU_FIELDS = ("SellerSKU", "SKU", "sku")
_MARKET_FIELDS = ("MarketplaceName", "MarketplaceId")


def _is_money(node: Any) -> bool:
    return isinstance(node, dict) and ("CurrencyAmount" in node or "CurrencyCode" in node)


def _kind_of(container: str) -> str:
    """charge_kind of an amount from the name of the list/field that holds its component."""
    if "Fee" in container:
        return "fee"
    if "Promotion" in container:
        return "promotion"
    if "Charge" in container or "TaxesWithheld" in container:
        return "charge"
    return "amount"


def _row(
    event_type: str, event_id: str, posted: dt.datetime, event: dict[str, Any],
    sku: Any, kind: str, charge_type: Any, node: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    amount, currency = _amount(node)
    return {
        "event_id": event_id,
        "event_type": event_type,
        "posted_date": posted,
        "amazon_order_id": event.get("AmazonOrderId"),
        "marketplace_name": next((event[f] for f in _MARKET_FIELDS if event.get(f)), None),
        "seller_sku": sku,
        "charge_kind": kind,
        "charge_type": charge_type,
        "amount": amount,
        "currency": currency,
    }


def _amounts(
    node: Any, path: tuple[Any, ...], container: str, sku: Any, skip: frozenset[tuple[Any, ...]]
) -> list[tuple[tuple[Any, ...], str, Any, Any, dict[str, Any]]]:
    """Every money amount under `node`: (path, kind, charge type, sku, money object).

    The charge type of an amount is the `...Type` field of the object holding it when that
    object holds only this amount (a ChargeComponent, FeeComponent, ...), else its field name.
    """
    found: list[tuple[tuple[Any, ...], str, Any, Any, dict[str, Any]]] = []
    if path in skip:
        return found
    if isinstance(node, list):
        for index, entry in enumerate(node):
            found += _amounts(entry, (*path, index), container, sku, skip)
        return found
    if not isinstance(node, dict):
        return found
    sku = next((node[f] for f in _SKU_FIELDS if isinstance(node.get(f), str)), sku)
    moneys = [k for k, v in node.items() if _is_money(v)]
    types = [v for k, v in node.items() if k.lower().endswith("type") and isinstance(v, str)]
    for key, value in node.items():
        if key in moneys:
            charge_type = types[0] if len(moneys) == 1 and len(types) == 1 else key
            # a component's kind comes from its list (FeeList...), else from the field's name
            kind = _kind_of(container) if len(moneys) == 1 else "amount"
            kind = _kind_of(key) if kind == "amount" else kind
            found.append(((*path, key), kind, charge_type, sku, value))
        elif isinstance(value, dict | list):
            found += _amounts(value, (*path, key), key, sku, skip)
    return found


def map_event(event: dict[str, Any], event_type: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of one ShipmentEvent (of the shipment, refund, claim, chargeback... lists).

    Item charges, fees and promotions keep the event ids they always had; every other amount
    of the event (order-level charges and fees, shipment fees, direct payments, taxes withheld,
    points...) becomes a row too, identified by its path in the event.
    """
    order_id = event.get("AmazonOrderId")
    posted = ts(event["PostedDate"])
    if posted is None:
        raise InvalidRecord(f"{event_type}: PostedDate is missing")
    rows: list[dict[str, Any]] = []
    covered: set[tuple[Any, ...]] = set()
    list_name, id_field, amounts = _LEGACY_REFUND if event_type == "Refund" else _LEGACY_SHIPMENT
    for i, item in enumerate(event.get(list_name) or []):
        item_id = item.get(id_field)
        for kind, name, type_field, amount_field in amounts:
            covered.add((list_name, i, name))
            for index, entry in enumerate(item.get(name) or []):
                rows.append(_row(
                    event_type,
                    _event_id(event_type, order_id, iso_z(posted), item_id, kind,
                              entry.get(type_field), index),
                    posted, event, item.get("SellerSKU"), kind, entry.get(type_field),
                    entry[amount_field],
                ))  # fmt: skip
    rows += _other_rows(event, event_type, posted, frozenset(covered))
    return {"financial_events": rows}


def _other_rows(
    event: dict[str, Any], event_type: str, posted: dt.datetime, skip: frozenset[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    text = json.dumps(event, sort_keys=True, default=str)
    rows = []
    for path, kind, charge_type, sku, node in _amounts(event, (), "", None, skip):
        where = "/".join(str(p) for p in path)
        rows.append(_row(
            event_type, _event_id(event_type, text, where), posted, event, sku, kind,
            charge_type, node,
        ))  # fmt: skip
    return rows


def map_kind(list_name: str, event: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows of one event of the list `list_name` (InvalidRecord names the kind)."""
    event_type, date_field = KINDS[list_name]
    try:
        if not isinstance(event, dict):
            raise InvalidRecord("event is not an object")
        if date_field is None:
            raise InvalidRecord("kind not modelled (the model gives it no posted date)")
        if date_field == "PostedDate" and any(event.get(n) for n in _ITEM_LISTS):
            built = map_event(event, event_type)
        else:
            posted = ts(event.get(date_field))
            if posted is None:
                raise InvalidRecord(f"{date_field} is missing")
            built = {"financial_events": _other_rows(event, event_type, posted, frozenset())}
        if not built["financial_events"]:
            raise InvalidRecord("event holds no amount")
        return built
    except InvalidRecord as e:
        raise InvalidRecord(f"{list_name}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
        raise InvalidRecord(f"{list_name}: {type(e).__name__}: {e}") from None


def parse_page(events: Any, collector: Collector) -> dict[str, int]:
    """Rows (or quarantined records) of every event of one page; return events per list.

    A page may hold any subset of the event lists, empty or absent; a list this code does not
    know is counted and its events quarantined with their list name.
    """
    if events is None:
        return {}
    if not isinstance(events, dict):
        raise MalformedResponse("page field FinancialEvents is not an object")
    counts: dict[str, int] = {}
    for list_name, value in events.items():
        if value is None:
            continue
        entries = value if isinstance(value, list) else [value]
        counts[list_name] = counts.get(list_name, 0) + len(entries)
        for event in entries:
            raw = {"kind": list_name, "event": event}
            if list_name not in KINDS or not isinstance(value, list):
                reason = "not a list" if list_name in KINDS else "unknown event list"
                collector.bad.append(("financial_events", raw, f"{list_name}: {reason}"))
                continue
            collector.add("financial_events", raw, lambda n=list_name, e=event: map_kind(n, e))
    return counts


class FinancesStream:
    """Financial events of every kind by posted date."""

    name = "finances"
    datasets = ("financial_events",)

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Fetch chunk by chunk from cursor - look-back to now."""
        from sp_api.api import FinancesV0

        state = ctx.store.get_state(ctx.tenant, self.name)
        start = ctx.start(ts(state.get("cursor")), LOOKBACK)
        end = ctx.now
        client = ctx.client(FinancesV0)
        while start < end:
            stop = min(start + CHUNK, end)
            collector = Collector(ctx, self.name, result)
            token: str | None = None
            while True:
                if token is None:
                    query = {
                        "PostedAfter": iso_z(start),
                        "PostedBefore": iso_z(stop),
                        "MaxResultsPerPage": 100,
                    }
                else:
                    query = {"NextToken": token}
                response = ctx.call(
                    "listFinancialEvents", lambda q=query: client.list_financial_events(**q)
                )
                payload = response.payload
                if not isinstance(payload, dict):
                    raise MalformedResponse("listFinancialEvents payload is not an object")
                result.pages += 1
                for kind, n in parse_page(payload.get("FinancialEvents"), collector).items():
                    result.events[kind] = result.events.get(kind, 0) + n
                token = response.next_token
                if not token:
                    break
            collector.flush({"financial_events": start.date()}, force=True)
            ctx.store.update_state(ctx.tenant, self.name, {"cursor": iso_z(stop)})
            start = stop
