"""catalogItems 2022-04-01 `searchCatalogItems` (by ASIN, 20 per call) -> catalog_items."""

# mypy cannot type lambdas that bind loop variables through default arguments
# mypy: disable-error-code="misc"

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from amzigo_lab.source.streams.base import Collector, StreamContext, StreamResult, page_list


def seller_asins(ctx: StreamContext) -> dict[str, list[str]]:
    """ASINs per marketplace that the tenant sold or stocks (from the lake)."""
    pairs: set[tuple[str, str]] = set()
    for dataset in ("order_items", "inventory_snapshots"):
        table = ctx.store.column(dataset, ctx.tenant, ["marketplace_id", "asin"])
        table = table.filter(pc.is_valid(table.column("asin")))
        unique = (
            table.group_by(["marketplace_id", "asin"]).aggregate([])
            if table.num_rows
            else pa.table({})
        )
        if unique.num_rows:
            pairs.update(
                zip(
                    unique.column("marketplace_id").to_pylist(),
                    unique.column("asin").to_pylist(),
                    strict=True,
                )
            )
    out: dict[str, list[str]] = {}
    for mp, asin in sorted(pairs):
        if mp in ctx.marketplaces:
            out.setdefault(mp, []).append(asin)
    return out


def _for(entries: Any, mp: str) -> dict[str, Any]:
    return next((e for e in entries or [] if e.get("marketplaceId") == mp), {})


def map_item(item: dict[str, Any], mp: str, ctx: StreamContext) -> dict[str, list[dict[str, Any]]]:
    """The row of one catalog Item in one marketplace."""
    summary = _for(item.get("summaries"), mp)
    product_type = _for(item.get("productTypes"), mp).get("productType")
    classification = (summary.get("browseClassification") or {}).get("displayName")
    return {
        "catalog_items": [
            {
                "asin": item["asin"],
                "marketplace_id": mp,
                "fetched_at": ctx.now,
                "title": summary.get("itemName"),
                "brand": summary.get("brand"),
                "product_type": product_type,
                "classification": classification,
            }
        ]
    }


class CatalogStream:
    """Catalog attributes of the tenant's ASINs; unchanged items add no version."""

    name = "catalog"
    datasets = ("catalog_items",)

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Look the ASINs up 20 at a time per marketplace."""
        from sp_api.api import CatalogItemsV20220401

        collector = Collector(ctx, self.name, result)
        for mp, asins in seller_asins(ctx).items():
            client = ctx.client(CatalogItemsV20220401, mp)
            for i in range(0, len(asins), 20):
                query = {
                    "identifiers": ",".join(asins[i : i + 20]),
                    "identifiersType": "ASIN",
                    "includedData": ["summaries", "productTypes", "classifications"],
                    "marketplaceIds": [mp],
                    "pageSize": 20,
                }
                response = ctx.call(
                    "searchCatalogItems", lambda q=query, c=client: c.search_catalog_items(**q)
                )
                result.pages += 1
                for item in page_list(response.payload, "items"):
                    collector.add(
                        "catalog_items", item, lambda it=item, mp=mp: map_item(it, mp, ctx)
                    )
        collector.flush(force=True)
        ctx.store.update_state(ctx.tenant, self.name, {"fetched_on": ctx.today.isoformat()})
