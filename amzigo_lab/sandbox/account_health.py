"""The seller-performance report (`GET_V2_SELLER_PERFORMANCE_REPORT`, account health, JSON).

Like Amazon's, the report takes no dates: every metric covers its own trailing window ending the
last complete day before the world's ``now`` (order defect rate 60 days, late shipment, valid
tracking and on-time delivery 30 days, pre-fulfilment cancellation 7 days, policy violations
and the account health rating 180 days). Order counts are the world's orders of the window
(split AFN/MFN for the order defect rate); the rates come from a per-(seller, marketplace,
metric) profile that is a function of the window's end DAY (seed + date), so a report of the
world as of another day continues the same history and consecutive windows trend.

Profiles: most are comfortably within Amazon's targets. Two are not, so the demo shows warnings:
Cobalt Tech in DE has a valid tracking rate below 95 % (a breach) and a late shipment rate that
climbs through 4 % on a 60-day cycle; Bluebird Home in the US has an MFN order defect rate that
climbs towards 1 % on the same cycle (a trend towards a breach).

The document validates against Amazon's JSON Schema (`accountHealthReport-2020-11-18.json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .seeding import rng_for
from .tenants import Marketplace
from .world import World

SELLER_PERFORMANCE = "GET_V2_SELLER_PERFORMANCE_REPORT"

#: Window length in days per metric (Amazon's Account Health windows).
WINDOWS = {
    "orderDefectRate": 60,
    "lateShipmentRate": 30,
    "preFulfillmentCancellationRate": 7,
    "validTrackingRate": 30,
    "onTimeDeliveryRate": 30,
    "unitOnTimeDeliveryRate": 30,
    "invoiceDefectRate": 7,
    "policy": 180,
}
#: Amazon's published targets: (value, condition).
TARGETS = {
    "orderDefectRate": (0.01, "LESS_THAN"),
    "lateShipmentRate": (0.04, "LESS_THAN"),
    "preFulfillmentCancellationRate": (0.025, "LESS_THAN"),
    "validTrackingRate": (0.95, "GREATER_THAN"),
    "onTimeDeliveryRate": (0.9, "GREATER_THAN"),
    "unitOnTimeDeliveryRate": (0.9, "GREATER_THAN"),
    "invoiceDefectRate": (0.05, "LESS_THAN"),
}
VIOLATIONS = (
    "listingPolicyViolations",
    "productAuthenticityCustomerComplaints",
    "productConditionCustomerComplaints",
    "productSafetyCustomerComplaints",
    "receivedIntellectualPropertyComplaints",
    "restrictedProductPolicyViolations",
    "suspectedIntellectualPropertyViolations",
    "foodAndProductSafetyIssues",
    "otherPolicyViolations",
    "documentRequests",
)
#: The cycle (days) of the drifting profiles, and the days of it spent worsening.
CYCLE = 60
RISING = 45


@dataclass(frozen=True, slots=True)
class Profile:
    """A metric's rate between `low` and `high`: constant-ish, or drifting on the cycle."""

    low: float
    high: float
    drifting: bool = False

    def rate(self, seed: int, key: tuple[str, ...], day: date) -> float:
        """The rate of the window ending `day`."""
        noise = rng_for(seed, "health", *key, day.isoformat()).uniform(-1.0, 1.0)
        if not self.drifting:
            mid = (self.low + self.high) / 2
            return mid + noise * (self.high - self.low) / 2
        phase = (day.toordinal() + _offset(seed, key)) % CYCLE
        frac = phase / RISING if phase < RISING else (CYCLE - phase) / (CYCLE - RISING)
        step = (self.high - self.low) / RISING
        return self.low + (self.high - self.low) * frac + noise * step * 0.3


def _offset(seed: int, key: tuple[str, ...]) -> int:
    return rng_for(seed, "health-phase", *key).randrange(CYCLE)


_GOOD: dict[str, Profile] = {
    "orderDefectRate": Profile(0.001, 0.004),
    "lateShipmentRate": Profile(0.005, 0.018),
    "preFulfillmentCancellationRate": Profile(0.0, 0.008),
    "validTrackingRate": Profile(0.975, 0.995),
    "onTimeDeliveryRate": Profile(0.93, 0.975),
    "unitOnTimeDeliveryRate": Profile(0.93, 0.975),
    "invoiceDefectRate": Profile(0.0, 0.01),
}
#: The profiles that differ from `_GOOD`: (tenant, marketplace code) -> metric -> profile.
_AT_RISK: dict[tuple[str, str], dict[str, Profile]] = {
    ("cobalt-tech", "DE"): {
        "validTrackingRate": Profile(0.925, 0.94),
        "lateShipmentRate": Profile(0.03, 0.055, drifting=True),
    },
    ("bluebird-home", "US"): {"orderDefectRate": Profile(0.004, 0.0115, drifting=True)},
}


def profile(tenant: str, marketplace: Marketplace, metric: str) -> Profile:
    """The rate profile of one metric of a seller in a marketplace."""
    return _AT_RISK.get((tenant, marketplace.code), {}).get(metric, _GOOD[metric])


def _range(end: date, days: int) -> dict[str, str]:
    """A reportingDateRange of `days` days ending `end` (inclusive)."""
    start = end - timedelta(days=days - 1)
    return {
        "reportingDateFrom": f"{start.isoformat()}T00:00Z",
        "reportingDateTo": f"{end.isoformat()}T23:59Z",
    }


def _status(rate: float, target: tuple[float, str]) -> str:
    value, condition = target
    ok = rate < value if condition == "LESS_THAN" else rate > value
    return "GOOD" if ok else "BAD"


def _order_counts(world: World, tenant: str, market: Marketplace, end: date, days: int
                  ) -> tuple[int, int]:  # fmt: skip
    """(AFN, MFN) orders of the window."""
    afn = mfn = 0
    for day in world.days(end - timedelta(days=days - 1), end):
        for order in world.day_orders(tenant, market, day):
            if order.fulfillment_channel == "AFN":
                afn += 1
            else:
                mfn += 1
    return afn, mfn


def _count(rate: float, total: int) -> int:
    return max(0, min(total, round(rate * total)))


def _ratio(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def marketplace_metrics(world: World, tenant: str, market: Marketplace, end: date
                        ) -> dict[str, Any]:  # fmt: skip
    """The performanceMetrics entry of one marketplace for windows ending `end`."""
    seed = world.seed

    def rate(metric: str, channel: str = "") -> float:
        key = (tenant, market.code, metric, channel)
        return profile(tenant, market, metric).rate(seed, key, end)

    def rated(metric: str, total: int, value: float) -> tuple[int, float, dict[str, Any]]:
        count = _count(value, total)
        r = _ratio(count, total)
        target = TARGETS[metric]
        return (
            count,
            r,
            {
                "status": _status(r, target) if total else "NONE",
                "rate": r,
                "targetValue": target[0],
                "targetCondition": target[1],
            },
        )

    odr: dict[str, Any] = {}
    afn60, mfn60 = _order_counts(world, tenant, market, end, WINDOWS["orderDefectRate"])
    for channel, total in (("afn", afn60), ("mfn", mfn60)):
        value = rate("orderDefectRate", channel) if channel == "mfn" else rate("orderDefectRate")
        defects, _, tail = rated("orderDefectRate", total, value)
        rng = rng_for(seed, "health-odr", tenant, market.code, channel, end.isoformat())
        claims = round(defects * rng.uniform(0.3, 0.5))
        chargebacks = min(defects - claims, round(defects * rng.uniform(0.0, 0.1)))
        negative = defects - claims - chargebacks
        odr[channel] = {
            "reportingDateRange": _range(end, WINDOWS["orderDefectRate"]),
            "orderCount": total,
            "orderWithDefects": {"count": defects, "status": tail["status"]},
            "claims": {"count": claims, "status": "NONE"},
            "chargebacks": {"count": chargebacks, "status": "NONE"},
            "negativeFeedback": {"count": negative, "status": "NONE"},
            "fulfillmentType": channel,
            **tail,
        }
    afn30, mfn30 = _order_counts(world, tenant, market, end, 30)
    mfn7 = _order_counts(world, tenant, market, end, 7)[1]
    late, _, late_tail = rated("lateShipmentRate", mfn30, rate("lateShipmentRate"))
    cancels, _, cancel_tail = rated(
        "preFulfillmentCancellationRate", mfn7, rate("preFulfillmentCancellationRate")
    )
    tracked, _, vtr_tail = rated("validTrackingRate", mfn30, rate("validTrackingRate"))
    on_time, _, otdr_tail = rated("onTimeDeliveryRate", tracked, rate("onTimeDeliveryRate"))
    units = round((mfn30 + afn30) * 1.3)
    unit_on_time, _, uotdr_tail = rated(
        "unitOnTimeDeliveryRate", units, rate("unitOnTimeDeliveryRate")
    )
    invoice, _, invoice_tail = rated("invoiceDefectRate", mfn7, rate("invoiceDefectRate"))
    policy_end = _range(end, WINDOWS["policy"])
    rng = rng_for(seed, "health-policy", tenant, market.code, end.isoformat())
    at_risk = (tenant, market.code) in _AT_RISK
    violations = {}
    for name in VIOLATIONS:
        count = rng.choice((0, 0, 0, 1, 2)) if at_risk and name == "listingPolicyViolations" else 0
        violations[name] = {
            "reportingDateRange": policy_end,
            "defectsCount": count,
            "status": "BAD" if count else "GOOD",
            "targetValue": 0,
            "targetCondition": "EQUALS",
        }
    statuses = [odr["afn"]["status"], odr["mfn"]["status"], late_tail["status"],
                cancel_tail["status"], vtr_tail["status"]]  # fmt: skip
    return {
        "marketplaceId": market.marketplace_id,
        "invoiceDefectRate": {
            "reportingDateRange": _range(end, WINDOWS["invoiceDefectRate"]),
            "orderCount": mfn7,
            "invoiceDefect": {"count": invoice, "status": invoice_tail["status"]},
            "missingInvoice": {"count": invoice, "status": "NONE"},
            "lateInvoice": {"count": 0, "status": "NONE"},
            **invoice_tail,
        },
        "lateShipmentRate": {
            "reportingDateRange": _range(end, WINDOWS["lateShipmentRate"]),
            "orderCount": mfn30,
            "lateShipmentCount": late,
            **late_tail,
        },
        "orderDefectRate": odr,
        "onTimeDeliveryRate": {
            "reportingDateRange": _range(end, WINDOWS["onTimeDeliveryRate"]),
            "shipmentCountWithValidTracking": tracked,
            "onTimeDeliveryCount": on_time,
            **otdr_tail,
        },
        "unitOnTimeDeliveryRate": {
            "reportingDateRange": _range(end, WINDOWS["unitOnTimeDeliveryRate"]),
            **uotdr_tail,
            "unitOnTimeDeliveryCount": unit_on_time,
            "totalUnitCount": units,
        },
        "validTrackingRate": {
            "reportingDateRange": _range(end, WINDOWS["validTrackingRate"]),
            "shipmentCount": mfn30,
            "validTrackingCount": tracked,
            **vtr_tail,
        },
        "preFulfillmentCancellationRate": {
            "reportingDateRange": _range(end, WINDOWS["preFulfillmentCancellationRate"]),
            "orderCount": mfn7,
            "cancellationCount": cancels,
            **cancel_tail,
        },
        "warningStates": [
            {"warningType": "spammingSellerMessaging", "status": "GOOD"},
        ],
        "accountHealthRating": {
            "ahrStatus": "WARNED" if "BAD" in statuses else "GREAT",
            "reportingDateRange": policy_end,
        },
        **violations,
    }


def seller_performance(world: World, tenant: str, marketplace_ids: list[str]) -> dict[str, Any]:
    """The account-health document of `tenant` for the requested marketplaces."""
    end = world.last_day
    metrics = []
    statuses = []
    for market in world.seller(tenant).marketplaces:
        if market.marketplace_id not in marketplace_ids:
            continue
        entry = marketplace_metrics(world, tenant, market, end)
        metrics.append(entry)
        bad = entry["accountHealthRating"]["ahrStatus"] == "WARNED"
        statuses.append(
            {"marketplaceId": market.marketplace_id, "status": "AT_RISK" if bad else "NORMAL"}
        )
    return {"accountStatuses": statuses, "performanceMetrics": metrics}
