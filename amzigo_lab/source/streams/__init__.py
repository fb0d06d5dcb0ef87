"""Stream families: each maps SP-API pages to Arrow tables in the declared dataset schemas.

`STREAMS` is in run order: catalog and reviews read the ASINs the orders and inventory streams
wrote; solicitations read the orders. Account health (seller-performance reports) reads nothing.
"""

from __future__ import annotations

from amzigo_lab.source.streams.account_health import AccountHealthStream
from amzigo_lab.source.streams.ads import CAMPAIGNS, PRODUCTS, AdsProfilesStream
from amzigo_lab.source.streams.base import ProgressEvent, Stream, StreamContext, StreamResult
from amzigo_lab.source.streams.catalog import CatalogStream
from amzigo_lab.source.streams.finances import FinancesStream
from amzigo_lab.source.streams.inventory import InventoryStream
from amzigo_lab.source.streams.orders import OrdersStream
from amzigo_lab.source.streams.reviews import ReviewsStream
from amzigo_lab.source.streams.sales_traffic import SalesTrafficStream
from amzigo_lab.source.streams.solicitations import SolicitationsStream

STREAMS: dict[str, Stream] = {
    s.name: s
    for s in (
        OrdersStream(),
        FinancesStream(),
        SalesTrafficStream(),
        InventoryStream(),
        CatalogStream(),
        ReviewsStream(),
        SolicitationsStream(),
        AccountHealthStream(),
        CAMPAIGNS,
        PRODUCTS,
        AdsProfilesStream(),
    )
}

__all__ = ["STREAMS", "ProgressEvent", "Stream", "StreamContext", "StreamResult"]
