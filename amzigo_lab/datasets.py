"""The dataset registry: every dataset the lake may hold, declared once.

Schema, data classes, origin and retention rule of each dataset live here; the writer refuses
undeclared datasets and tables that do not match. The record of processing activities and the
docs read the same declarations. Buyer PII lives only in `order_buyers`.
"""

from __future__ import annotations

import pyarrow as pa

from amzigo_lab.retention_rules import DaysAfterDelivery, MonthsAfterIngestion, WhileTenantActive
from amzigo_lab.schema import Column, DatasetSpec

AMAZON_NON_PII = MonthsAfterIngestion(18)
BUYER_PII = DaysAfterDelivery(30, delivery_column="delivered_date")

MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")
S = pa.string()


def _c(name: str, typ: pa.DataType, cls: str, nullable: bool = True) -> Column:
    return Column(name, typ, cls, nullable)


ORDERS = DatasetSpec(
    name="orders",
    origin="amazon",
    description="Orders (no buyer PII): status, channel, totals, delivery window.",
    retention=AMAZON_NON_PII,
    natural_key=("amazon_order_id",),
    version_column="last_update_date",
    columns=(
        _c("amazon_order_id", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("purchase_date", TS, "timestamp", False),
        _c("last_update_date", TS, "timestamp", False),
        _c("order_status", S, "category", False),
        _c("fulfillment_channel", S, "category"),
        _c("sales_channel", S, "category"),
        _c("order_total", MONEY, "money"),
        _c("currency", S, "currency"),
        _c("items_shipped", pa.int32(), "count"),
        _c("items_unshipped", pa.int32(), "count"),
        _c("earliest_delivery_date", TS, "timestamp"),
        _c("latest_delivery_date", TS, "timestamp"),
        _c("delivered_date", pa.date32(), "date"),
        _c("is_business_order", pa.bool_(), "flag"),
    ),
)

ORDER_ITEMS = DatasetSpec(
    name="order_items",
    origin="amazon",
    description="Order lines: ASIN, SKU, quantities, prices.",
    retention=AMAZON_NON_PII,
    natural_key=("amazon_order_id", "order_item_id"),
    version_column="last_update_date",
    columns=(
        _c("amazon_order_id", S, "id", False),
        _c("order_item_id", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("purchase_date", TS, "timestamp", False),
        _c("last_update_date", TS, "timestamp", False),
        _c("asin", S, "id", False),
        _c("seller_sku", S, "id"),
        _c("title", S, "text"),
        _c("quantity_ordered", pa.int32(), "count", False),
        _c("quantity_shipped", pa.int32(), "count"),
        _c("item_price", MONEY, "money"),
        _c("item_tax", MONEY, "money"),
        _c("promotion_discount", MONEY, "money"),
        _c("currency", S, "currency"),
    ),
)

ORDER_BUYERS = DatasetSpec(
    name="order_buyers",
    origin="amazon",
    description="Buyer PII of merchant-fulfilled orders, for fulfilment/tax/legal purposes only.",
    retention=BUYER_PII,
    natural_key=("amazon_order_id",),
    version_column="fetched_at",
    columns=(
        _c("amazon_order_id", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("delivered_date", pa.date32(), "date"),
        _c("buyer_name", S, "pii.name"),
        _c("buyer_email", S, "pii.email"),
        _c("ship_name", S, "pii.name"),
        _c("ship_address_line1", S, "pii.address"),
        _c("ship_city", S, "pii.address"),
        _c("ship_state", S, "pii.address"),
        _c("ship_postal_code", S, "pii.address"),
        _c("ship_country", S, "pii.address"),
        _c("ship_phone", S, "pii.phone"),
    ),
)

SALES_TRAFFIC_BY_DATE = DatasetSpec(
    name="sales_traffic_by_date",
    origin="amazon",
    description="Sales & Traffic report, by date and marketplace.",
    retention=AMAZON_NON_PII,
    natural_key=("date", "marketplace_id"),
    version_column="report_id",
    columns=(
        _c("date", pa.date32(), "date", False),
        _c("marketplace_id", S, "category", False),
        _c("report_id", S, "id", False),
        _c("ordered_product_sales", MONEY, "money"),
        _c("currency", S, "currency"),
        _c("units_ordered", pa.int64(), "count"),
        _c("total_order_items", pa.int64(), "count"),
        _c("units_refunded", pa.int64(), "count"),
        _c("refund_rate", pa.float64(), "ratio"),
        _c("sessions", pa.int64(), "count"),
        _c("page_views", pa.int64(), "count"),
        _c("buy_box_percentage", pa.float64(), "ratio"),
        _c("unit_session_percentage", pa.float64(), "ratio"),
    ),
)

SALES_TRAFFIC_BY_ASIN = DatasetSpec(
    name="sales_traffic_by_asin",
    origin="amazon",
    description="Sales & Traffic report, by day, marketplace and child ASIN.",
    retention=AMAZON_NON_PII,
    natural_key=("date", "marketplace_id", "child_asin"),
    version_column="report_id",
    columns=(
        _c("date", pa.date32(), "date", False),
        _c("marketplace_id", S, "category", False),
        _c("report_id", S, "id", False),
        _c("parent_asin", S, "id"),
        _c("child_asin", S, "id", False),
        _c("sku", S, "id"),
        _c("units_ordered", pa.int64(), "count"),
        _c("ordered_product_sales", MONEY, "money"),
        _c("currency", S, "currency"),
        _c("total_order_items", pa.int64(), "count"),
        _c("sessions", pa.int64(), "count"),
        _c("page_views", pa.int64(), "count"),
        _c("buy_box_percentage", pa.float64(), "ratio"),
        _c("unit_session_percentage", pa.float64(), "ratio"),
    ),
)

INVENTORY_SNAPSHOTS = DatasetSpec(
    name="inventory_snapshots",
    origin="amazon",
    description="FBA inventory summaries, one snapshot per day and SKU.",
    retention=AMAZON_NON_PII,
    natural_key=("snapshot_date", "marketplace_id", "seller_sku"),
    version_column="last_updated_time",
    columns=(
        _c("snapshot_date", pa.date32(), "date", False),
        _c("marketplace_id", S, "category", False),
        _c("asin", S, "id"),
        _c("fn_sku", S, "id"),
        _c("seller_sku", S, "id", False),
        _c("product_name", S, "text"),
        _c("fulfillable_quantity", pa.int64(), "count"),
        _c("inbound_working", pa.int64(), "count"),
        _c("inbound_shipped", pa.int64(), "count"),
        _c("inbound_receiving", pa.int64(), "count"),
        _c("reserved_quantity", pa.int64(), "count"),
        _c("unfulfillable_quantity", pa.int64(), "count"),
        _c("total_quantity", pa.int64(), "count"),
        _c("last_updated_time", TS, "timestamp", False),
    ),
)

FINANCIAL_EVENTS = DatasetSpec(
    name="financial_events",
    origin="amazon",
    description="Financial events: charges, fees and refunds per order line.",
    retention=AMAZON_NON_PII,
    natural_key=("event_id",),
    columns=(
        _c("event_id", S, "id", False),
        _c("event_type", S, "category", False),
        _c("posted_date", TS, "timestamp", False),
        _c("amazon_order_id", S, "id"),
        _c("marketplace_name", S, "category"),
        _c("seller_sku", S, "id"),
        _c("charge_kind", S, "category", False),
        _c("charge_type", S, "category", False),
        _c("amount", MONEY, "money", False),
        _c("currency", S, "currency", False),
    ),
)

CATALOG_ITEMS = DatasetSpec(
    name="catalog_items",
    origin="amazon",
    description="Catalog attributes of the seller's ASINs.",
    retention=AMAZON_NON_PII,
    natural_key=("asin", "marketplace_id"),
    version_column="fetched_at",
    columns=(
        _c("asin", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("title", S, "text"),
        _c("brand", S, "text"),
        _c("product_type", S, "category"),
        _c("classification", S, "category"),
    ),
)

REVIEW_TOPICS = DatasetSpec(
    name="review_topics",
    origin="amazon",
    description="Customer-feedback review topics per ASIN (aggregates, no reviewer data).",
    retention=AMAZON_NON_PII,
    natural_key=("asin", "marketplace_id", "sentiment", "topic", "fetched_on"),
    columns=(
        _c("asin", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("fetched_on", pa.date32(), "date", False),
        _c("sentiment", S, "category", False),
        _c("topic", S, "text", False),
        _c("review_count", pa.int64(), "count"),
        _c("occurrence_percentage", pa.float64(), "ratio"),
        _c("star_rating_impact", pa.float64(), "ratio"),
        _c("star_rating", pa.float64(), "ratio"),
    ),
)

REVIEW_TRENDS = DatasetSpec(
    name="review_trends",
    origin="amazon",
    description="Monthly trend of each review topic per ASIN.",
    retention=AMAZON_NON_PII,
    natural_key=("asin", "marketplace_id", "sentiment", "topic", "month"),
    version_column="fetched_on",
    columns=(
        _c("asin", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("fetched_on", pa.date32(), "date", False),
        _c("sentiment", S, "category", False),
        _c("topic", S, "text", False),
        _c("month", pa.date32(), "date", False),
        _c("occurrence_percentage", pa.float64(), "ratio"),
    ),
)

SOLICITATION_ELIGIBILITY = DatasetSpec(
    name="solicitation_eligibility",
    origin="amazon",
    description="Review-request eligibility per order: ids and delivery window only, no PII.",
    retention=AMAZON_NON_PII,
    natural_key=("amazon_order_id",),
    version_column="checked_at",
    columns=(
        _c("amazon_order_id", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("checked_at", TS, "timestamp", False),
        _c("earliest_delivery_date", TS, "timestamp"),
        _c("latest_delivery_date", TS, "timestamp"),
        _c("eligible", pa.bool_(), "flag", False),
        _c("requested", pa.bool_(), "flag", False),
    ),
)

ACCOUNT_HEALTH_METRICS = DatasetSpec(
    name="account_health_metrics",
    origin="amazon",
    description=(
        "Seller-performance report (account health): one rate metric per marketplace, "
        "fulfilment channel and reporting window, with Amazon's target and status. No PII."
    ),
    retention=AMAZON_NON_PII,
    natural_key=("marketplace_id", "metric", "fulfillment_channel", "window_end"),
    version_column="fetched_at",
    columns=(
        _c("marketplace_id", S, "category", False),
        _c("metric", S, "category", False),
        _c("fulfillment_channel", S, "category", False),  # afn, mfn or all
        _c("window_start", TS, "timestamp", False),
        _c("window_end", TS, "timestamp", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("report_id", S, "id", False),
        _c("rate", pa.float64(), "ratio"),
        _c("defects", pa.int64(), "count"),
        _c("total", pa.int64(), "count"),
        _c("claims", pa.int64(), "count"),
        _c("chargebacks", pa.int64(), "count"),
        _c("negative_feedback", pa.int64(), "count"),
        _c("target_value", pa.float64(), "ratio"),
        _c("target_condition", S, "category"),
        _c("status", S, "category"),
    ),
)

ACCOUNT_HEALTH_VIOLATIONS = DatasetSpec(
    name="account_health_violations",
    origin="amazon",
    description=(
        "Seller-performance report: policy-violation and complaint counts and warning states "
        "per marketplace and reporting window. No PII."
    ),
    retention=AMAZON_NON_PII,
    natural_key=("marketplace_id", "violation", "window_end"),
    version_column="fetched_at",
    columns=(
        _c("marketplace_id", S, "category", False),
        _c("violation", S, "category", False),
        _c("window_start", TS, "timestamp"),
        _c("window_end", TS, "timestamp", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("report_id", S, "id", False),
        _c("defects_count", pa.int64(), "count"),
        _c("target_value", pa.float64(), "ratio"),
        _c("target_condition", S, "category"),
        _c("status", S, "category"),
    ),
)

ACCOUNT_HEALTH_RATING = DatasetSpec(
    name="account_health_rating",
    origin="amazon",
    description=(
        "Seller-performance report: account status and account health rating per marketplace "
        "and reporting window. No PII."
    ),
    retention=AMAZON_NON_PII,
    natural_key=("marketplace_id", "window_end"),
    version_column="fetched_at",
    columns=(
        _c("marketplace_id", S, "category", False),
        _c("window_start", TS, "timestamp"),
        _c("window_end", TS, "timestamp", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("report_id", S, "id", False),
        _c("account_status", S, "category"),
        _c("ahr_status", S, "category"),
    ),
)

QUARANTINE = DatasetSpec(
    name="quarantine",
    origin="amazon",
    description=(
        "Ingested records that failed validation: stream, reason and the raw record as JSON "
        "(buyer PII sub-objects removed before quarantining). Amazon data, encrypted like every "
        "lake file."
    ),
    retention=AMAZON_NON_PII,
    natural_key=("record_id",),
    columns=(
        _c("record_id", S, "id", False),
        _c("stream", S, "category", False),
        _c("dataset", S, "category", False),
        _c("quarantined_at", TS, "timestamp", False),
        _c("reason", S, "text", False),
        _c("raw_json", S, "text", False),
    ),
)

#: Unit costs have fractions of a cent (a case of 12 at 10.00 is 0.8333 a unit).
UNIT_COST = pa.decimal128(18, 4)

PRODUCT_COSTS = DatasetSpec(
    name="product_costs",
    origin="internal",
    description=(
        "Cost of goods per SKU, imported by the seller's staff (`amzigo costs import`): "
        "history kept, one row per SKU, marketplace (null = every marketplace), currency and "
        "first day of validity; a later import of the same key corrects it. No PII."
    ),
    retention=WhileTenantActive(),
    natural_key=("sku", "marketplace_id", "currency", "valid_from"),
    version_column="imported_at",
    columns=(
        _c("sku", S, "id", False),
        _c("marketplace_id", S, "category"),
        _c("currency", S, "currency", False),
        _c("unit_cost", UNIT_COST, "money", False),
        _c("valid_from", pa.date32(), "date", False),
        _c("imported_at", TS, "timestamp", False),
        _c("source_sha256", S, "id", False),
    ),
)

ADS_PROFILES = DatasetSpec(
    name="ads_profiles",
    origin="amazon",
    description="Amazon Ads profiles: one per seller account and marketplace (no PII).",
    retention=AMAZON_NON_PII,
    natural_key=("profile_id",),
    version_column="fetched_at",
    columns=(
        _c("profile_id", S, "id", False),
        _c("marketplace_id", S, "category", False),
        _c("fetched_at", TS, "timestamp", False),
        _c("country_code", S, "category"),
        _c("currency", S, "currency"),
        _c("timezone", S, "category"),
        _c("account_type", S, "category"),
        _c("account_id", S, "id"),
    ),
)

_AD_METRICS = (
    _c("impressions", pa.int64(), "count"),
    _c("clicks", pa.int64(), "count"),
    _c("cost", MONEY, "money"),
    _c("currency", S, "currency"),
    _c("purchases_7d", pa.int64(), "count"),
    _c("sales_7d", MONEY, "money"),
    _c("units_sold_7d", pa.int64(), "count"),
)

ADS_CAMPAIGN_DAILY = DatasetSpec(
    name="ads_campaign_daily",
    origin="amazon",
    description="Sponsored Products campaigns per day (spCampaigns, 7-day attribution).",
    retention=AMAZON_NON_PII,
    natural_key=("date", "profile_id", "campaign_id"),
    version_column="retrieved_at",
    columns=(
        _c("date", pa.date32(), "date", False),
        _c("marketplace_id", S, "category", False),
        _c("profile_id", S, "id", False),
        _c("campaign_id", S, "id", False),
        _c("retrieved_at", TS, "timestamp", False),
        _c("campaign_name", S, "text"),
        _c("campaign_status", S, "category"),
        *_AD_METRICS,
    ),
)

ADS_PRODUCT_DAILY = DatasetSpec(
    name="ads_product_daily",
    origin="amazon",
    description="Sponsored Products advertised products (ASIN/SKU) per day (spAdvertisedProduct).",
    retention=AMAZON_NON_PII,
    natural_key=("date", "profile_id", "ad_id"),
    version_column="retrieved_at",
    columns=(
        _c("date", pa.date32(), "date", False),
        _c("marketplace_id", S, "category", False),
        _c("profile_id", S, "id", False),
        _c("ad_id", S, "id", False),
        _c("retrieved_at", TS, "timestamp", False),
        _c("campaign_id", S, "id"),
        _c("ad_group_id", S, "id"),
        _c("asin", S, "id"),
        _c("seller_sku", S, "id"),
        *_AD_METRICS,
    ),
)

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        ORDERS,
        ORDER_ITEMS,
        ORDER_BUYERS,
        SALES_TRAFFIC_BY_DATE,
        SALES_TRAFFIC_BY_ASIN,
        INVENTORY_SNAPSHOTS,
        FINANCIAL_EVENTS,
        CATALOG_ITEMS,
        REVIEW_TOPICS,
        REVIEW_TRENDS,
        SOLICITATION_ELIGIBILITY,
        ACCOUNT_HEALTH_METRICS,
        ACCOUNT_HEALTH_VIOLATIONS,
        ACCOUNT_HEALTH_RATING,
        ADS_PROFILES,
        ADS_CAMPAIGN_DAILY,
        ADS_PRODUCT_DAILY,
        QUARANTINE,
        PRODUCT_COSTS,
    )
}
