"""Plan and run review-request campaigns.

`plan` decides, for each recent order of each tenant, whether a review request is due now and
why it is in or out (offline: the lake, the DSR tables, the campaign state and the rules).
`run` sends what the plan says, one order at a time, each one:

1. asks `getSolicitationActionsForOrder` (the action must be offered *now*);
2. commits an **intent** row (`store.record_intent`, synchronous=FULL);
3. calls `createProductReviewAndSellerFeedbackSolicitation` once: a 429 (not processed) is
   waited out by the rate-limit scheduler and retried, a transport error or 5xx is *not*
   retried (the request may have been processed): the intent stays and the next run
   reconciles it;
4. commits the **outcome** (`sent` on 201, `refused` on 400/403) and audits it.

Before planning, `run` reconciles every intent left without outcome by a crash: it asks
`getSolicitationActionsForOrder`; if the action is no longer offered the request went out
(`sent`, how = reconciled); if it is still offered the call never took effect at Amazon (a sent
request withdraws the action), so the intent is cleared and the order planned again. Create is
therefore never called for an order that may already have been sent.

Every call goes through the project's rate-limit scheduler (`source.ratelimit.Scheduler`) with
the operations' documented limits (1 request/s, burst 5). Buyers who objected or were erased
(DSR) are never asked. Nothing here reads or writes buyer data: order ids, marketplaces, SKUs
and dates only.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc

from amzigo_lab.campaigns.rules import MIN_DELAY_DAYS, Rules, load_rules, rules_for
from amzigo_lab.campaigns.store import CampaignStore
from amzigo_lab.errors import ConfigError
from amzigo_lab.source.client import (
    ClientFactory,
    Connection,
    SourceError,
    amazon_connection,
    sandbox_connection,
)
from amzigo_lab.source.ratelimit import DOCUMENTED_LIMITS, Scheduler, is_transient

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.lake.store import Lake
    from amzigo_lab.sandbox import SandboxServer

PURPOSE = "review_management"
ACTOR = "svc:campaigns"
ACTION = "productReviewAndSellerFeedback"
GET_OP = "getSolicitationActionsForOrder"
CREATE_OP = "createProductReviewAndSellerFeedbackSolicitation"
#: Documented limits of both Solicitations operations (1 request/s, burst 5).
LIMITS = {**DOCUMENTED_LIMITS, GET_OP: (1.0, 5), CREATE_OP: (1.0, 5)}
OPENS = dt.timedelta(days=MIN_DELAY_DAYS)  # after the earliest delivery date
CLOSES = dt.timedelta(days=30)  # after the latest delivery date
#: Orders whose window closed longer ago than this are not listed by the plan.
SHOWN_AFTER_CLOSE = dt.timedelta(days=30)
#: The embedded sandbox's clock speed-up (as `amzigo ingest`).
SANDBOX_TIME_SCALE = 1000.0

FaultHook = Callable[[str, str], None]


@dataclass
class Decision:
    """Whether one order gets a review request now, and why."""

    tenant: str
    amazon_order_id: str
    marketplace_id: str
    decision: str  # send | skip | sent | refused | pending
    reason: str
    window_opens: str | None = None
    window_closes: str | None = None
    send_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class TenantPlan:
    """One tenant's rules and decisions."""

    tenant: str
    rules: Rules
    now: dt.datetime
    decisions: list[Decision] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Decisions per kind."""
        return dict(Counter(d.decision for d in self.decisions))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "tenant": self.tenant,
            "now": self.now.isoformat(),
            "rules": self.rules.to_dict(),
            "counts": self.counts(),
            "decisions": [d.to_dict() for d in self.decisions],
        }


@dataclass
class RunReport:
    """What one `campaign run` did."""

    run_id: str
    source: str
    now: str
    sent: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    uncertain: list[dict[str, str]] = field(default_factory=list)
    not_offered: list[dict[str, str]] = field(default_factory=list)
    reconciled: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    planned: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    throttled_429: int = 0
    marked_in_lake: int = 0  # solicitation_eligibility rows written with requested = true
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No error and no send left uncertain."""
        return not self.errors and not self.uncertain

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (order ids and outcomes only)."""
        return {**asdict(self), "ok": self.ok}


# -- time and sources ------------------------------------------------------------------------
def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def default_now(
    lake: Lake, settings: Settings, env: Mapping[str, str] | None = None
) -> dt.datetime:
    """The API's now: the real clock with Amazon credentials, else the sandbox world's now."""
    if amazon_connection(lake, env) is not None:
        return dt.datetime.now(dt.UTC)
    day = settings.sandbox_today or dt.datetime.now(dt.UTC).date()
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def lake_tenants(lake: Lake) -> list[str]:
    """Tenants holding orders in the lake."""
    return sorted({p.tenant for p in lake.catalog.partitions("orders")})


# -- planning --------------------------------------------------------------------------------
def _excluded_orders(lake: Lake, tenant: str) -> tuple[set[str], set[str]]:
    from amzigo_lab.compliance.dsr import erased_order_ids, objected_order_ids

    return objected_order_ids(lake, tenant), erased_order_ids(lake, tenant)


def _refunded(lake: Lake, tenant: str) -> set[str]:
    scan = lake.scan("financial_events", [tenant])
    if not scan.files:
        return set()
    table = scan.arrow_dataset().to_table(columns=["event_type", "amazon_order_id"])
    hits = table.filter(pc.equal(table.column("event_type"), "Refund"))
    return {o for o in hits.column("amazon_order_id").to_pylist() if o}


def _skus(lake: Lake, tenant: str) -> dict[str, set[str]]:
    scan = lake.scan("order_items", [tenant])
    out: dict[str, set[str]] = {}
    if not scan.files:
        return out
    table = scan.arrow_dataset().to_table(columns=["amazon_order_id", "seller_sku"])
    for order_id, sku in zip(
        table.column("amazon_order_id").to_pylist(),
        table.column("seller_sku").to_pylist(),
        strict=True,
    ):
        if sku:
            out.setdefault(order_id, set()).add(sku)
    return out


def _orders(lake: Lake, tenant: str) -> list[dict[str, Any]]:
    scan = lake.scan("orders", [tenant])
    if not scan.files:
        return []
    cols = [
        "amazon_order_id", "marketplace_id", "order_status", "earliest_delivery_date",
        "latest_delivery_date", "delivered_date",
    ]  # fmt: skip
    return scan.latest().select(cols).to_pylist()


def decide(
    order: Mapping[str, Any],
    rules: Rules,
    now: dt.datetime,
    *,
    state: Any = None,
    objected: set[str] | frozenset[str] = frozenset(),
    erased: set[str] | frozenset[str] = frozenset(),
    refunded: set[str] | frozenset[str] = frozenset(),
    skus: set[str] | frozenset[str] = frozenset(),
) -> Decision:
    """The decision for one order (the first reason that keeps it out, else send)."""
    oid, mp = order["amazon_order_id"], order["marketplace_id"]
    earliest = _utc(order.get("earliest_delivery_date"))
    latest = _utc(order.get("latest_delivery_date"))
    delivered = _utc(order.get("delivered_date"))
    opens = earliest + OPENS if earliest else None
    closes = latest + CLOSES if latest else None
    base = delivered or earliest
    send_from = None
    if base is not None and opens is not None:
        send_from = max(opens, base + dt.timedelta(days=rules.delay_days))
    d = Decision(rules.tenant, oid, mp, "skip", "", _iso(opens), _iso(closes), _iso(send_from))
    if state is not None:
        d.decision = {"intent": "pending"}.get(state.state, state.state)
        d.reason = {
            "sent": f"already sent ({state.how}) at {state.outcome_at}",
            "refused": f"refused by Amazon at {state.outcome_at}: {state.how}",
            "intent": f"intent of {state.intent_at} without outcome: the next run reconciles it",
        }[state.state]
        return d
    if rules.marketplaces and mp not in rules.marketplaces:
        d.reason = f"marketplace {mp} is not in the campaign's marketplaces"
    elif oid in objected:
        d.reason = "buyer objected (DSR objection)"
    elif oid in erased:
        d.reason = "buyer's data erased (DSR erasure)"
    elif order.get("order_status") != "Shipped":
        d.reason = f"order status is {order.get('order_status')}, not Shipped"
    elif rules.exclude_refunded and oid in refunded:
        d.reason = "refunded or returned (exclude_refunded)"
    elif skus & rules.exclude_skus:
        d.reason = f"contains excluded SKU {sorted(skus & rules.exclude_skus)[0]}"
    elif send_from is None or closes is None:
        d.reason = "no delivery dates yet"
    elif now < send_from:
        why = "Amazon's window opens" if send_from == opens else f"delay_days {rules.delay_days}"
        d.reason = f"too early: due from {send_from.date()} ({why})"
    elif now > closes:
        d.reason = f"too late: Amazon's window closed on {closes.date()}"
    else:
        d.decision = "send"
        d.reason = (
            f"in window ({opens.date() if opens else '?'} to {closes.date()}), "
            f"{rules.delay_days} days after delivery {(base or now).date()}"
        )
    return d


def plan_tenant(lake: Lake, store: CampaignStore, rules: Rules, now: dt.datetime) -> TenantPlan:
    """One tenant's decisions: every order whose window is open, due or recently closed."""
    out = TenantPlan(rules.tenant, rules, now)
    if not rules.enable:
        return out
    states = store.by_order(rules.tenant)
    objected, erased = _excluded_orders(lake, rules.tenant)
    refunded = _refunded(lake, rules.tenant) if rules.exclude_refunded else set()
    skus = _skus(lake, rules.tenant) if rules.exclude_skus else {}
    for order in _orders(lake, rules.tenant):
        latest = _utc(order.get("latest_delivery_date"))
        oid = order["amazon_order_id"]
        if oid not in states and latest is not None and latest + CLOSES + SHOWN_AFTER_CLOSE < now:
            continue  # long closed: not worth listing
        out.decisions.append(
            decide(
                order, rules, now,
                state=states.get(oid), objected=objected, erased=erased, refunded=refunded,
                skus=frozenset(skus.get(oid, ())),
            )
        )  # fmt: skip
    # due orders whose window closes first go first (a run with --limit, or cut short)
    out.decisions.sort(
        key=lambda d: (d.decision != "send", d.window_closes or "", d.amazon_order_id)
    )
    return out


def plan(
    lake: Lake,
    settings: Settings,
    tenants: list[str] | None = None,
    now: dt.datetime | None = None,
    store: CampaignStore | None = None,
) -> list[TenantPlan]:
    """Every chosen tenant's plan (default: tenants with rules or orders). Sends nothing."""
    rules = load_rules(settings)
    known = sorted(set(rules) | set(lake_tenants(lake)))
    unknown = [t for t in tenants or () if t not in known]
    if unknown:
        raise ConfigError(
            f"unknown tenant {unknown[0]!r}: no [campaigns] rules and no data; tenants: "
            f"{', '.join(known) or 'none'}"
        )
    chosen = tenants or known
    now = now or default_now(lake, settings)
    own = store is None
    store = store or CampaignStore.for_home(settings.state_dir)
    try:
        return [plan_tenant(lake, store, rules_for(rules, t), now) for t in chosen]
    finally:
        if own:
            store.close()


def status(lake: Lake, settings: Settings) -> dict[str, Any]:
    """Rules, rows per tenant and state, pending intents and the latest runs."""
    rules = load_rules(settings)
    with CampaignStore.for_home(settings.state_dir) as store:
        return {
            "rules": [r.to_dict() for r in rules.values()],
            "counts": store.counts(),
            "pending_intents": [s.to_dict() for s in store.sends(state="intent")],
            "recent": [s.to_dict() for s in store.sends()][-20:],
            "runs": store.runs(),
            "state_file": str(store.path),
        }


# -- sending ---------------------------------------------------------------------------------
class UncertainOutcome(SourceError):
    """The create call failed in a way that leaves open whether Amazon processed it."""


def offered(body: Mapping[str, Any]) -> bool:
    """Whether a getSolicitationActionsForOrder answer offers the review request."""
    links = (body.get("_links") or {}).get("actions") or []
    embedded = (body.get("_embedded") or {}).get("actions") or []
    names = [a.get("name") for a in links] + [
        (a.get("payload") or {}).get("name") for a in embedded
    ]
    return ACTION in names


def _status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


class Sender:
    """Rate-limited Solicitations calls for one tenant."""

    def __init__(self, factory: ClientFactory, scheduler: Scheduler, tenant: str) -> None:
        self.factory = factory
        self.scheduler = scheduler
        self.tenant = tenant
        self._clients: dict[str, Any] = {}

    def _client(self, marketplace_id: str) -> Any:
        from sp_api.api import Solicitations

        if marketplace_id not in self._clients:
            self._clients[marketplace_id] = self.factory.client(
                Solicitations, self.tenant, marketplace_id
            )
        return self._clients[marketplace_id]

    def _refresh(self) -> None:
        self.factory.forget_token(self.tenant)

    def is_offered(self, order_id: str, marketplace_id: str) -> bool:
        """getSolicitationActionsForOrder (retried on 429/5xx: it changes nothing)."""
        client = self._client(marketplace_id)
        res = self.scheduler.call(
            self.tenant,
            GET_OP,
            lambda: client.get_solicitation_actions_for_order(
                order_id, marketplaceIds=[marketplace_id]
            ),
            self._refresh,
        )
        return offered(res.payload or {})

    def create(self, order_id: str, marketplace_id: str) -> None:
        """createProductReviewAndSellerFeedbackSolicitation, at most one request that Amazon
        may have processed: only 429 and an expired token (both refused before processing)
        are retried; a transport error or 5xx raises `UncertainOutcome`."""
        client = self._client(marketplace_id)

        def once() -> Any:
            try:
                return client.create_product_review_and_seller_feedback_solicitation(
                    order_id, marketplaceIds=[marketplace_id]
                )
            except Exception as exc:
                if is_transient(exc):
                    raise UncertainOutcome(f"{type(exc).__name__}: {exc}"[:200]) from exc
                raise

        self.scheduler.call(self.tenant, CREATE_OP, once, self._refresh)


@contextmanager
def _connection(
    lake: Lake,
    settings: Settings,
    tenants: list[str] | None,
    server: SandboxServer | None,
    connection: Connection | None,
    env: Mapping[str, str] | None,
) -> Iterator[tuple[Connection, dt.datetime]]:
    """The connection to use and the API's now (as `ingest` chooses them)."""
    if server is not None:
        scale = float(server.limiter.time_scale or SANDBOX_TIME_SCALE)
        yield sandbox_connection(server, scale), server.world.now
        return
    if connection is None:
        connection = amazon_connection(lake, env, tenants)
    if connection is not None:
        yield connection, dt.datetime.now(dt.UTC)
        return
    from amzigo_lab.sandbox.services import SolicitationLedger
    from amzigo_lab.source.ingest import embedded_sandbox

    with embedded_sandbox(settings, SANDBOX_TIME_SCALE) as running:
        # Amazon remembers a sent request: so does the embedded sandbox, across runs
        path = settings.state_dir / "sandbox" / f"solicitations-{settings.sandbox_seed}.sent"
        running.services.solicitations = SolicitationLedger(path)
        yield sandbox_connection(running, SANDBOX_TIME_SCALE), running.world.now


def run(
    lake: Lake,
    settings: Settings,
    tenants: list[str] | None = None,
    *,
    server: SandboxServer | None = None,
    connection: Connection | None = None,
    env: Mapping[str, str] | None = None,
    scheduler: Scheduler | None = None,
    limit: int | None = None,
    fault_hook: FaultHook | None = None,
) -> RunReport:
    """Reconcile, plan and send for the chosen tenants (default: every enabled tenant)."""
    import time

    rules = load_rules(settings)
    chosen = tenants or sorted(t for t, r in rules.items() if r.enable)
    hook = fault_hook or (lambda _step, _order: None)
    started = time.monotonic()
    with _connection(lake, settings, tenants, server, connection, env) as (conn, now):
        missing = [t for t in chosen if t not in conn.refresh_tokens]
        if missing:
            raise ConfigError(
                f"tenant {missing[0]!r} has no SP-API credentials; configured: "
                f"{', '.join(conn.tenants) or 'none'}"
            )
        factory = ClientFactory(conn)
        scale = conn.time_scale
        sched = scheduler or Scheduler(limits=LIMITS, backoff=0.5 / scale, max_backoff=30.0 / scale)
        report = RunReport(f"cmp-{secrets.token_hex(6)}", conn.kind, now.isoformat())
        with CampaignStore.for_home(settings.state_dir) as store, store.exclusive():
            store.start_run(report.run_id, conn.kind)
            for tenant in chosen:
                factory.forget_token(tenant)
                _run_tenant(
                    lake, store, factory, sched, rules_for(rules, tenant), now, report,
                    limit, hook,
                )  # fmt: skip
            report.requests = dict(sched.stats.requests)
            report.throttled_429 = sched.stats.throttled
            report.seconds = round(time.monotonic() - started, 3)
            store.finish_run(report.run_id, json.dumps(_summary(report), sort_keys=True))
    lake.audit.emit(
        "campaign.run",
        actor=ACTOR,
        resource=f"campaign-run:{report.run_id}",
        purpose=PURPOSE,
        decision="allow" if report.ok else "info",
        row_count=len(report.sent),
        reason=f"{conn.kind}: " + json.dumps(_summary(report), sort_keys=True)[:200],
    )
    return report


def _summary(report: RunReport) -> dict[str, int]:
    return {
        "sent": len(report.sent),
        "refused": len(report.refused),
        "uncertain": len(report.uncertain),
        "not_offered": len(report.not_offered),
        "reconciled": len(report.reconciled),
        "errors": len(report.errors),
    }


def _audit(lake: Lake, action: str, tenant: str, order_id: str, reason: str, run_id: str) -> None:
    lake.audit.emit(
        action,
        actor=ACTOR,
        resource=f"order:{order_id}",
        tenant=tenant,
        purpose=PURPOSE,
        decision="allow" if action == "campaign.sent" else "info",
        row_count=1,
        reason=f"run {run_id}: {reason}",
    )


def mark_requested_in_lake(
    lake: Lake, store: CampaignStore, tenant: str, now: dt.datetime, run_id: str
) -> int:
    """Write `solicitation_eligibility` rows with `requested` true for every order the state
    says was sent and the lake does not show as requested yet (so the reviews report and
    dashboard count them as already_requested); the rows written. Self-healing: a run killed
    before this step leaves them to the next run."""
    import pyarrow as pa

    from amzigo_lab.datasets import REGISTRY

    sent = {s.amazon_order_id for s in store.sends(tenant, "sent")}
    if not sent:
        return 0
    scan = lake.scan("solicitation_eligibility", [tenant])
    if scan.files:
        done = scan.arrow_dataset().to_table(columns=["amazon_order_id", "requested"])
        done = done.filter(done.column("requested"))
        sent -= set(done.column("amazon_order_id").to_pylist())
    if not sent:
        return 0
    rows = [
        {
            "amazon_order_id": o["amazon_order_id"],
            "marketplace_id": o["marketplace_id"],
            # after ingestion's check at the same API time, so this version wins
            "checked_at": now + dt.timedelta(seconds=1),
            "earliest_delivery_date": o["earliest_delivery_date"],
            "latest_delivery_date": o["latest_delivery_date"],
            "eligible": False,  # no longer offered: the request went out
            "requested": True,
        }
        for o in _orders(lake, tenant)
        if o["amazon_order_id"] in sent
    ]
    if not rows:
        return 0
    table = pa.Table.from_pylist(rows, schema=REGISTRY["solicitation_eligibility"].schema)
    lake.write("solicitation_eligibility", tenant, now.date(), table, f"{run_id}-{tenant}")
    return len(rows)


def _still_offered(sender: Sender, order_id: str, marketplace_id: str) -> bool:
    """Whether the action is still offered after a 4xx (False if that cannot be asked)."""
    try:
        return sender.is_offered(order_id, marketplace_id)
    except Exception:
        return False


def _run_tenant(
    lake: Lake,
    store: CampaignStore,
    factory: ClientFactory,
    scheduler: Scheduler,
    rules: Rules,
    now: dt.datetime,
    report: RunReport,
    limit: int | None,
    hook: FaultHook,
) -> None:
    tenant = rules.tenant
    sender = Sender(factory, scheduler, tenant)
    # 1. reconcile intents a crash left without outcome
    for intent in store.sends(tenant, "intent"):
        oid, mp = intent.amazon_order_id, intent.marketplace_id
        try:
            still = sender.is_offered(oid, mp)
        except Exception as exc:
            report.errors.append(f"{tenant} {oid}: reconcile failed: {type(exc).__name__}")
            continue
        entry = {"tenant": tenant, "amazon_order_id": oid}
        if still:
            store.clear_intent(tenant, oid)  # the call never took effect: plan it again
            entry["outcome"] = "cleared: still offered, the call never took effect"
        else:
            how = "reconciled: action no longer offered after an unfinished call"
            store.record_outcome(tenant, oid, "sent", how)
            _audit(lake, "campaign.sent", tenant, oid, how, report.run_id)
            entry["outcome"] = "sent"
        report.reconciled.append(entry)
    # 2. plan, 3. send
    try:
        _send_due(lake, store, sender, rules, now, report, limit, hook)
    finally:
        try:
            report.marked_in_lake += mark_requested_in_lake(lake, store, tenant, now, report.run_id)
        except Exception as exc:  # the state file stays the truth; the next run tries again
            report.errors.append(f"{tenant}: marking requests in the lake failed: {exc!r}"[:300])


def _send_due(
    lake: Lake,
    store: CampaignStore,
    sender: Sender,
    rules: Rules,
    now: dt.datetime,
    report: RunReport,
    limit: int | None,
    hook: FaultHook,
) -> None:
    tenant = rules.tenant
    tplan = plan_tenant(lake, store, rules, now)
    report.planned[tenant] = tplan.counts()
    due = [d for d in tplan.decisions if d.decision == "send"]
    if limit is not None:
        due = due[:limit]
    for d in due:
        oid, mp = d.amazon_order_id, d.marketplace_id
        entry = {"tenant": tenant, "amazon_order_id": oid, "marketplace_id": mp}
        objected, erased = _excluded_orders(lake, tenant)  # again: a long run meets new DSRs
        if oid in objected or oid in erased:
            continue
        try:
            if not sender.is_offered(oid, mp):
                report.not_offered.append(entry)
                continue
        except Exception as exc:
            report.errors.append(f"{tenant} {oid}: {GET_OP} failed: {type(exc).__name__}")
            continue
        if not store.record_intent(tenant, oid, mp, report.run_id):
            report.errors.append(f"{tenant} {oid}: already has a campaign row; not sent")
            continue
        hook("intent", oid)
        try:
            sender.create(oid, mp)
        except UncertainOutcome as exc:
            entry["detail"] = str(exc)[:200]
            report.uncertain.append(entry)
            _audit(
                lake, "campaign.send_uncertain", tenant, oid,
                "no answer: the next run reconciles it", report.run_id,
            )  # fmt: skip
            continue
        except Exception as exc:
            status_code = _status_of(exc)
            if status_code is not None and 400 <= status_code < 500:
                how = f"HTTP {status_code} {getattr(exc, 'message', '') or type(exc).__name__}"
                if _still_offered(sender, oid, mp):
                    # refused, yet the order is still eligible: the refusal is about us (a role,
                    # the credentials), not the order. Nothing was sent: clear, stop this tenant.
                    store.clear_intent(tenant, oid)
                    report.errors.append(f"{tenant} {oid}: {how[:150]}; not sent, tenant stopped")
                    break
                store.record_outcome(tenant, oid, "refused", how)
                entry["detail"] = how[:200]
                report.refused.append(entry)
                _audit(lake, "campaign.refused", tenant, oid, how, report.run_id)
            else:  # never reached Amazon as far as we know: the intent is reconciled next run
                entry["detail"] = f"{type(exc).__name__}"
                report.uncertain.append(entry)
            continue
        hook("called", oid)
        store.record_outcome(tenant, oid, "sent", "201 created")
        report.sent.append(entry)
        _audit(lake, "campaign.sent", tenant, oid, "review request sent (201)", report.run_id)
