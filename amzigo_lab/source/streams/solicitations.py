"""Solicitations `getSolicitationActionsForOrder` -> solicitation_eligibility (no PII).

Candidates are the tenant's shipped orders (latest state in the lake) whose review-request
window (5 days after the earliest delivery date to 30 days after the latest) is open now and
that were not checked before. Each order costs one call (1 rps), so at most
`max_solicitation_checks` are checked per run, oldest window first; the rest wait for the next
run. Ingest never sends a solicitation: `requested` is always false here.
"""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from amzigo_lab.source.streams.base import Collector, StreamContext, StreamResult

OPENS = dt.timedelta(days=5)
CLOSES = dt.timedelta(days=30)
ACTION = "productReviewAndSellerFeedback"


def candidates(ctx: StreamContext) -> list[dict[str, Any]]:
    """Orders to check, oldest window first."""
    orders = ctx.store.latest("orders", ctx.tenant)
    if orders.num_rows == 0:
        return []
    now = pa.scalar(ctx.now, pa.timestamp("us", tz="UTC"))
    opens = pc.add(orders.column("earliest_delivery_date"), pa.scalar(OPENS))
    closes = pc.add(orders.column("latest_delivery_date"), pa.scalar(CLOSES))
    mask = pc.and_(
        pc.equal(orders.column("order_status"), "Shipped"),
        pc.and_(pc.less_equal(opens, now), pc.greater_equal(closes, now)),
    )
    chosen = orders.filter(pc.fill_null(mask, False))
    checked = ctx.store.column("solicitation_eligibility", ctx.tenant, ["amazon_order_id"])
    if checked.num_rows:
        seen = pc.is_in(
            chosen.column("amazon_order_id"),
            value_set=checked.column("amazon_order_id").combine_chunks(),
        )
        chosen = chosen.filter(pc.invert(seen))
    chosen = chosen.sort_by(
        [("earliest_delivery_date", "ascending"), ("amazon_order_id", "ascending")]
    )
    cols = ["amazon_order_id", "marketplace_id", "earliest_delivery_date", "latest_delivery_date"]
    return chosen.select(cols).slice(0, ctx.max_solicitation_checks).to_pylist()


def eligible(body: dict[str, Any]) -> bool:
    """Whether the response offers the review-request action."""
    links = (body.get("_links") or {}).get("actions") or []
    embedded = (body.get("_embedded") or {}).get("actions") or []
    names = [a.get("name") for a in links] + [
        (a.get("payload") or {}).get("name") for a in embedded
    ]
    return ACTION in names


class SolicitationsStream:
    """Review-request eligibility of orders whose window is open."""

    name = "solicitations"
    datasets = ("solicitation_eligibility",)

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """One call per candidate order."""
        from sp_api.api import Solicitations

        collector = Collector(ctx, self.name, result)
        todo = candidates(ctx)
        for order in todo:
            mp = order["marketplace_id"]
            client = ctx.client(Solicitations, mp)
            body = ctx.call(
                "getSolicitationActionsForOrder",
                lambda o=order["amazon_order_id"], c=client, m=mp: (
                    c.get_solicitation_actions_for_order(o, marketplaceIds=[m])
                ),
            ).payload
            result.pages += 1

            def build(o: dict[str, Any] = order, b: Any = body) -> dict[str, list[dict[str, Any]]]:
                return {
                    "solicitation_eligibility": [
                        {
                            "amazon_order_id": o["amazon_order_id"],
                            "marketplace_id": o["marketplace_id"],
                            "checked_at": ctx.now,
                            "earliest_delivery_date": o["earliest_delivery_date"],
                            "latest_delivery_date": o["latest_delivery_date"],
                            "eligible": eligible(b),
                            "requested": False,
                        }
                    ]
                }

            collector.add("solicitation_eligibility", body, build)
            collector.flush()
        collector.flush(force=True)
        ctx.store.update_state(
            ctx.tenant, self.name, {"checked_on": ctx.today.isoformat(), "last_checked": len(todo)}
        )
