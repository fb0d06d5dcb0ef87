"""FBA Inventory API v1: getInventorySummaries."""

from __future__ import annotations

from ..errors import invalid_input
from ..protocol import Call, JsonObject, Response, Route
from ..stock import InventoryLevel
from ._common import iso

PAGE_SIZE = 50


def summary_json(level: InventoryLevel, details: bool, updated: str) -> JsonObject:
    """One ``InventorySummary``."""
    body: JsonObject = {
        "asin": level.asin,
        "fnSku": "X00" + level.asin[3:],
        "sellerSku": level.sku,
        "condition": "NewItem",
        "lastUpdatedTime": updated,
        "productName": level.title,
        "totalQuantity": level.total,
    }
    if details:
        body["inventoryDetails"] = {
            "fulfillableQuantity": level.fulfillable,
            "inboundWorkingQuantity": level.inbound_working,
            "inboundShippedQuantity": level.inbound_shipped,
            "inboundReceivingQuantity": level.inbound_receiving,
            "reservedQuantity": {
                "totalReservedQuantity": level.reserved,
                "pendingCustomerOrderQuantity": level.reserved_customer_orders,
                "pendingTransshipmentQuantity": 0,
                "fcProcessingQuantity": level.reserved_fc_processing,
            },
            "researchingQuantity": {
                "totalResearchingQuantity": 0,
                "researchingQuantityBreakdown": [],
            },
            "unfulfillableQuantity": {
                "totalUnfulfillableQuantity": level.unfulfillable,
                "customerDamagedQuantity": level.unfulfillable,
                "warehouseDamagedQuantity": 0,
                "distributorDamagedQuantity": 0,
                "carrierDamagedQuantity": 0,
                "defectiveQuantity": 0,
                "expiredQuantity": 0,
            },
        }
    return body


def get_inventory_summaries(call: Call) -> Response:
    """``GET /fba/inventory/v1/summaries``."""
    request, services = call.request, call.services
    seller_id = call.seller.seller_id
    token = request.param("nextToken")
    if token:
        state = services.paginator.resolve(token, "getInventorySummaries", seller_id)
    else:
        if request.param("granularityType") != "Marketplace":
            raise invalid_input("granularityType must be Marketplace.")
        granularity_id = request.param("granularityId")
        if granularity_id is None or not call.seller.sells_in(granularity_id):
            raise invalid_input("granularityId must be a marketplace of the seller.")
        skus = request.params("sellerSkus") + request.params("sellerSku")
        state = {
            "marketplace": granularity_id,
            "details": (request.param("details") or "false").lower() == "true",
            "skus": skus,
            "offset": 0,
        }
    market = services.world.marketplace(state["marketplace"])
    levels = [
        level
        for level in services.world.inventory(call.seller.tenant, market)
        if not state["skus"] or level.sku in state["skus"]
    ]
    offset = int(state["offset"])
    updated = iso(services.world.now)
    page = [
        summary_json(level, state["details"], updated)
        for level in levels[offset : offset + PAGE_SIZE]
    ]
    body: JsonObject = {
        "payload": {
            "granularity": {
                "granularityType": "Marketplace",
                "granularityId": market.marketplace_id,
            },
            "inventorySummaries": page,
        }
    }
    if offset + PAGE_SIZE < len(levels):
        next_state = {**state, "offset": offset + PAGE_SIZE}
        body["pagination"] = {
            "nextToken": services.paginator.issue("getInventorySummaries", seller_id, next_state)
        }
    return Response.json(body)


ROUTES = (
    Route.of(
        "GET", "/fba/inventory/v1/summaries", "getInventorySummaries", get_inventory_summaries
    ),
)
