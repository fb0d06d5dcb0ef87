"""FBA `getInventorySummaries` (details=true) -> inventory_snapshots, one snapshot per day."""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

from typing import Any

from amzigo_lab.source.streams.base import (
    Collector,
    StreamContext,
    StreamResult,
    integer,
    page_list,
    ts,
)


def map_summary(
    s: dict[str, Any], marketplace_id: str, ctx: StreamContext
) -> dict[str, list[dict[str, Any]]]:
    """The row of one InventorySummary."""
    details = s.get("inventoryDetails") or {}
    reserved = (details.get("reservedQuantity") or {}).get("totalReservedQuantity")
    unfulfillable = (details.get("unfulfillableQuantity") or {}).get("totalUnfulfillableQuantity")
    return {
        "inventory_snapshots": [
            {
                "snapshot_date": ctx.today,
                "marketplace_id": marketplace_id,
                "asin": s.get("asin"),
                "fn_sku": s.get("fnSku"),
                "seller_sku": s.get("sellerSku"),
                "product_name": s.get("productName"),
                "fulfillable_quantity": integer(details.get("fulfillableQuantity")),
                "inbound_working": integer(details.get("inboundWorkingQuantity")),
                "inbound_shipped": integer(details.get("inboundShippedQuantity")),
                "inbound_receiving": integer(details.get("inboundReceivingQuantity")),
                "reserved_quantity": integer(reserved),
                "unfulfillable_quantity": integer(unfulfillable),
                "total_quantity": integer(s.get("totalQuantity")),
                # Amazon sometimes sends "" here: the snapshot time stands in for it
                "last_updated_time": ts(s.get("lastUpdatedTime")) or ctx.now,
            }
        ]
    }


class InventoryStream:
    """A full snapshot per marketplace (the API has no useful incremental mode for this)."""

    name = "inventory"
    datasets = ("inventory_snapshots",)

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Page through every summary of every marketplace."""
        from sp_api.api import Inventories

        for mp in ctx.marketplaces:
            client = ctx.client(Inventories, mp)
            collector = Collector(ctx, self.name, result)
            token: str | None = None
            while True:
                query: dict[str, Any] = {
                    "details": "true",
                    "granularityType": "Marketplace",
                    "granularityId": mp,
                    "marketplaceIds": mp,
                }
                if token:
                    query["nextToken"] = token
                response = ctx.call(
                    "getInventorySummaries",
                    lambda q=query, c=client: c.get_inventory_summary_marketplace(**q),
                )
                summaries = page_list(response.payload, "inventorySummaries")
                result.pages += 1
                for s in summaries:
                    collector.add(
                        "inventory_snapshots", s, lambda s=s, mp=mp: map_summary(s, mp, ctx)
                    )
                token = response.next_token
                if not token:
                    break
            collector.flush({"inventory_snapshots": ctx.today}, force=True)
        ctx.store.update_state(ctx.tenant, self.name, {"snapshot_date": ctx.today.isoformat()})
