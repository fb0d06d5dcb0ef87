"""Finances v0 `listFinancialEvents` -> financial_events (charges, fees, promotions, refunds).

Windows are cut into 7-day chunks (page tokens expire; keep windows short) and the cursor moves
after each complete chunk. Each run starts `LOOKBACK` before the cursor for late postings.
Event ids are hashes of what identifies a posting, so re-fetched events de-duplicate.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from amzigo_lab.source.streams.base import (
    Collector,
    StreamContext,
    StreamResult,
    iso_z,
    money,
    page_list,
    ts,
)

LOOKBACK = dt.timedelta(days=2)
CHUNK = dt.timedelta(days=7)


def _event_id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _amount(node: dict[str, Any] | None) -> tuple[Any, Any]:
    node = node or {}
    return money(node.get("CurrencyAmount")), node.get("CurrencyCode")


def map_event(event: dict[str, Any], event_type: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of one ShipmentEvent (of the shipment or the refund list)."""
    order_id = event.get("AmazonOrderId")
    posted = ts(event["PostedDate"])
    market = event.get("MarketplaceName")
    rows: list[dict[str, Any]] = []
    adjusting = event_type == "Refund"
    items = event.get("ShipmentItemAdjustmentList" if adjusting else "ShipmentItemList") or []
    lists = (
        (("charge", "ItemChargeAdjustmentList", "ChargeType", "ChargeAmount"),
         ("fee", "ItemFeeAdjustmentList", "FeeType", "FeeAmount"),
         ("promotion", "PromotionAdjustmentList", "PromotionType", "PromotionAmount"))
        if adjusting
        else (("charge", "ItemChargeList", "ChargeType", "ChargeAmount"),
              ("fee", "ItemFeeList", "FeeType", "FeeAmount"),
              ("promotion", "PromotionList", "PromotionType", "PromotionAmount"))
    )  # fmt: skip
    for item in items:
        item_id = item.get("OrderAdjustmentItemId" if adjusting else "OrderItemId")
        for kind, list_name, type_field, amount_field in lists:
            for index, entry in enumerate(item.get(list_name) or []):
                amount, currency = _amount(entry[amount_field])
                rows.append(
                    {
                        "event_id": _event_id(
                            event_type, order_id, iso_z(posted) if posted else "", item_id,
                            kind, entry.get(type_field), index,
                        ),
                        "event_type": event_type,
                        "posted_date": posted,
                        "amazon_order_id": order_id,
                        "marketplace_name": market,
                        "seller_sku": item.get("SellerSKU"),
                        "charge_kind": kind,
                        "charge_type": entry.get(type_field),
                        "amount": amount,
                        "currency": currency,
                    }
                )  # fmt: skip
    return {"financial_events": rows}


class FinancesStream:
    """Shipment and refund events by posted date."""

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
                events = response.payload.get("FinancialEvents")
                shipments = page_list(events, "ShipmentEventList") if events is not None else None
                if shipments is None:
                    page_list(response.payload, "FinancialEvents")  # raises MalformedResponse
                    shipments = []
                refunds = (events or {}).get("RefundEventList") or []
                result.pages += 1
                for e in shipments:
                    collector.add("financial_events", e, lambda e=e: map_event(e, "Shipment"))
                for e in refunds:
                    collector.add("financial_events", e, lambda e=e: map_event(e, "Refund"))
                token = response.next_token
                if not token:
                    break
            collector.flush({"financial_events": start.date()}, force=True)
            ctx.store.update_state(ctx.tenant, self.name, {"cursor": iso_z(stop)})
            start = stop
