"""Catalog Items API 2022-04-01: searchCatalogItems and getCatalogItem."""

from __future__ import annotations

from ..catalog import Product
from ..errors import invalid_input, not_found
from ..protocol import Call, JsonObject, Response, Route
from ..seeding import stable_int
from ..tenants import Marketplace, Seller
from ._common import requested_marketplaces

INCLUDED_DATA = (
    "attributes",
    "classifications",
    "dimensions",
    "identifiers",
    "images",
    "productTypes",
    "relationships",
    "salesRanks",
    "summaries",
    "vendorDetails",
)
IDENTIFIER_TYPES = ("ASIN", "EAN", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC")
_PRODUCT_TYPE = {"outdoor": "OUTDOOR_RECREATION_PRODUCT", "home": "HOME", "tech": "ELECTRONICS"}


def ean(product: Product) -> str:
    """A fictitious 13-digit EAN of ``product`` (prefix 200, reserved for in-store use)."""
    return f"200{stable_int('ean', product.asin) % 10**10:010d}"


def item_json(product: Product, markets: list[Marketplace], included: list[str]) -> JsonObject:
    """An ``Item`` with the requested datasets for ``markets``."""
    item: JsonObject = {"asin": product.asin}
    ids = [m.marketplace_id for m in markets]
    if "summaries" in included:
        item["summaries"] = [
            {
                "marketplaceId": mid,
                "brand": product.brand,
                "browseClassification": {
                    "displayName": product.browse_node_name,
                    "classificationId": product.browse_node_id,
                },
                "itemClassification": "BASE_PRODUCT",
                "itemName": product.title,
                "manufacturer": product.brand,
                "packageQuantity": 1,
            }
            for mid in ids
        ]
    if "identifiers" in included:
        item["identifiers"] = [
            {
                "marketplaceId": mid,
                "identifiers": [{"identifierType": "EAN", "identifier": ean(product)}],
            }
            for mid in ids
        ]
    if "salesRanks" in included:
        rank = 1 + stable_int("rank", product.asin) % 50_000
        item["salesRanks"] = [
            {
                "marketplaceId": mid,
                "classificationRanks": [
                    {
                        "classificationId": product.browse_node_id,
                        "title": product.browse_node_name,
                        "rank": rank,
                    }
                ],
            }
            for mid in ids
        ]
    if "productTypes" in included:
        item["productTypes"] = [
            {"marketplaceId": mid, "productType": _PRODUCT_TYPE[product.category]} for mid in ids
        ]
    if "classifications" in included:
        item["classifications"] = [
            {
                "marketplaceId": mid,
                "classifications": [
                    {
                        "displayName": product.browse_node_name,
                        "classificationId": product.browse_node_id,
                    }
                ],
            }
            for mid in ids
        ]
    if "attributes" in included:
        item["attributes"] = {
            "item_name": [{"value": product.title, "marketplace_id": mid} for mid in ids],
            "brand": [{"value": product.brand, "marketplace_id": mid} for mid in ids],
        }
    if "images" in included:
        item["images"] = [
            {
                "marketplaceId": mid,
                "images": [
                    {
                        "variant": "MAIN",
                        "link": f"https://images.invalid/{product.asin}.jpg",
                        "height": 500,
                        "width": 500,
                    }
                ],
            }
            for mid in ids
        ]
    return item


def _all_products(call: Call) -> list[tuple[Seller, Product]]:
    """Every product of every seller (the catalogue is public)."""
    world = call.services.world
    return [(s, p) for s in world.sellers for p in world.catalog(s.tenant)]


def _included(call: Call) -> list[str]:
    """Validated ``includedData`` (default ``summaries``)."""
    included = call.request.params("includedData") or ["summaries"]
    if any(i not in INCLUDED_DATA for i in included):
        raise invalid_input("Invalid includedData value.")
    return included


def search_catalog_items(call: Call) -> Response:
    """``GET /catalog/2022-04-01/items``."""
    request, services = call.request, call.services
    seller_id = call.seller.seller_id
    token = request.param("pageToken")
    if token:
        state = services.paginator.resolve(token, "searchCatalogItems", seller_id)
    else:
        identifiers = request.params("identifiers")
        keywords = request.params("keywords")
        if bool(identifiers) == bool(keywords):
            raise invalid_input("Exactly one of identifiers and keywords must be provided.")
        if len(identifiers) > 20:
            raise invalid_input("At most 20 identifiers are allowed.")
        id_type = request.param("identifiersType")
        if identifiers and id_type not in IDENTIFIER_TYPES:
            raise invalid_input("identifiersType is required with identifiers.")
        if id_type == "SKU" and request.param("sellerId") != seller_id:
            raise invalid_input("sellerId of the caller is required for SKU identifiers.")
        state = {
            "identifiers": identifiers,
            "type": id_type,
            "keywords": [k.lower() for k in keywords],
            "brands": request.params("brandNames"),
            "included": _included(call),
            "ids": [m.marketplace_id for m in requested_marketplaces(call)],
            "size": request.int_param("pageSize", 10, 1, 20),
            "offset": 0,
        }
    matches: list[Product] = []
    for seller, product in _all_products(call):
        if state["brands"] and product.brand not in state["brands"]:
            continue
        if state["identifiers"]:
            key = {
                "ASIN": product.asin,
                "EAN": ean(product),
                "GTIN": ean(product),
                "SKU": product.sku if seller.seller_id == seller_id else None,
            }
            if key.get(state["type"]) not in state["identifiers"]:
                continue
        else:
            text = f"{product.title} {product.brand}".lower()
            if not all(word in text for word in state["keywords"]):
                continue
        matches.append(product)
    markets = [services.world.marketplace(i) for i in state["ids"]]
    offset, size = int(state["offset"]), int(state["size"])
    brands: dict[str, int] = {}
    for product in matches:
        brands[product.brand] = brands.get(product.brand, 0) + 1
    body: JsonObject = {
        "numberOfResults": len(matches),
        "items": [
            item_json(p, markets, state["included"]) for p in matches[offset : offset + size]
        ],
        "refinements": {
            "brands": [{"numberOfResults": n, "brandName": b} for b, n in sorted(brands.items())],
            "classifications": [],
        },
    }
    pagination: JsonObject = {}
    if offset + size < len(matches):
        pagination["nextToken"] = services.paginator.issue(
            "searchCatalogItems", seller_id, {**state, "offset": offset + size}
        )
    if offset > 0:
        pagination["previousToken"] = services.paginator.issue(
            "searchCatalogItems", seller_id, {**state, "offset": max(0, offset - size)}
        )
    if pagination:
        body["pagination"] = pagination
    return Response.json(body)


def get_catalog_item(call: Call) -> Response:
    """``GET /catalog/2022-04-01/items/{asin}``."""
    asin = call.request.path_params["asin"]
    product = next((p for _, p in _all_products(call) if p.asin == asin), None)
    if product is None:
        raise not_found(f"Requested item '{asin}' not found in marketplace(s).")
    return Response.json(item_json(product, requested_marketplaces(call), _included(call)))


ROUTES = (
    Route.of("GET", "/catalog/2022-04-01/items", "searchCatalogItems", search_catalog_items),
    Route.of("GET", "/catalog/2022-04-01/items/{asin}", "getCatalogItem", get_catalog_item),
)
