"""The record of processing activities (GDPR Art. 30 style), built from the declarations
and from the installation's facts.

Every dataset and column comes from `amzigo_lab.datasets.REGISTRY` (data class, origin,
retention rule), the PII purposes from `amzigo_lab.config.PII_PURPOSES`; nothing is typed twice.
`installation_facts` adds what this home actually holds: rows per dataset and tenant counts
from the catalog (counts only, never a value), the purposes the access policy lets anyone read
PII for, and every place derived copies live (reports, DSR exports, quarantine, DSR staging,
the audit log, the user store, grants, campaign state, the alert ledger) with its retention.
The stores other layers own (users, grants, campaign state, alert ledger) are counted by their
owners and passed in as `StoreCounts` (the gateway's ROPA action collects them): this module
never opens their databases, and compliance never imports campaigns, which sits above it.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.compliance.common import tool_version
from amzigo_lab.config import PII_PURPOSES
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.schema import DatasetSpec

if TYPE_CHECKING:
    from amzigo_lab.governance.policy import Policy
    from amzigo_lab.lake.store import Lake

STORAGE = "encrypted Parquet (PME AES-256-GCM, one key per partition, wrapped by the master key)"
DISPOSAL = "cryptographic erase of the partition key + file deletion, verified and certified"
LEGAL_BASIS = {
    "order_fulfilment": "contract (GDPR Art. 6(1)(b)): shipping the buyer's order",
    "tax": "legal obligation (Art. 6(1)(c)): tax invoices and records",
    "legal": "legal obligation / legal claims (Art. 6(1)(c), 17(3)(e))",
}
NON_PII_BASIS = "legitimate interest of the seller (Art. 6(1)(f)) under the Amazon data policy"
#: Processing activities beyond storing and analysing the datasets (each with its own purpose).
ACTIVITIES: tuple[dict[str, Any], ...] = (
    {
        "name": "review-request campaigns",
        "purpose": "review_management",
        "description": "Asks Amazon to send its templated review request for eligible orders "
        "(Solicitations API createProductReviewAndSellerFeedbackSolicitation), once per order, "
        "5-30 days after delivery, per the seller's rules (`amzigo campaign`).",
        "data": "order ids, marketplace, order status, delivery dates, SKUs, refund events, "
        "DSR objection/erasure order lists; no buyer contact data: Amazon, not the seller, "
        "addresses the buyer",
        "personal_data": False,
        "legal_basis": NON_PII_BASIS,
        "recipients": "Amazon (Selling Partner API), which sends the message to the buyer",
        "safeguards": "never for orders whose buyer objected or was erased (DSR); only when "
        "Amazon offers the action; at most once per order (intent before the call, "
        "reconciliation after a crash); every send audited",
        "storage": "<home>/state/campaigns.sqlite (order id, marketplace, state, times)",
        "retention": "kept as the record that an order was asked (no buyer data); removed "
        "with the home",
    },
)


def _dataset(spec: DatasetSpec, configured: tuple[str, ...]) -> dict[str, Any]:
    purposes = list(PII_PURPOSES) if spec.pii else ["seller analytics and reporting"]
    return {
        "dataset": spec.name,
        "description": spec.description,
        "source": "Amazon Selling Partner API" if spec.origin == "amazon" else "internal",
        "origin": spec.origin,
        "personal_data": spec.pii,
        "purposes": purposes,
        "purposes_enabled_here": [p for p in configured if spec.pii],
        "legal_basis": [LEGAL_BASIS[p] for p in PII_PURPOSES] if spec.pii else [NON_PII_BASIS],
        "retention": spec.retention.describe(),
        "retention_rule": spec.retention.name,
        "storage": STORAGE,
        "sharing": "none (no recipients; no transfers outside the deployment)",
        "disposal": DISPOSAL,
        "columns": [
            {
                "name": c.name,
                "data_class": c.data_class,
                "personal": c.data_class.startswith("pii."),
            }
            for c in spec.columns
        ],
    }


@dataclass(frozen=True)
class StoreCounts:
    """Rows in the stores other layers own, each counted by its owner (None: unknown, e.g.
    the store was never created or cannot be read)."""

    users: int | None
    """Staff accounts in the identity store (`IdentityStore.count`)."""
    grants: int | None
    """Tenant grants (`GrantStore.count`)."""
    campaign_orders: int | None
    """Orders with a review-request row (`CampaignStore.count_in`)."""
    alerts: int | None
    """Alerts raised in the delivery ledger (`DeliveryLedger.count_in`)."""


def _audit_records(checkpoint_dir: Path) -> int | None:
    """Records in the audit log per its newest signed checkpoint (no key needed)."""
    from amzigo_lab.governance.audit import checkpoint as ckpt

    try:
        latest = ckpt.latest(checkpoint_dir)
    except Exception:  # a damaged checkpoint folder: `amzigo audit verify` says more
        return None
    return None if latest is None else latest.tree_size - latest.anchor_seq


def installation_facts(
    lake: Lake,
    counts: StoreCounts,
    policy: Policy | None = None,
    policy_version: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What this home holds and where (counts only, never a value): the ROPA's facts.

    `counts` are the rows of the stores other layers own, counted by them. `policy_version`
    is the change-log entry in force (amzigo_lab.governance.policy_log: version, effective
    date, summary, content digest); the record names it."""
    from amzigo_lab.compliance.common import exports_root, reports_root
    from amzigo_lab.compliance.derived import outputs
    from amzigo_lab.governance.audit.log import MIN_RETENTION

    settings = lake.settings
    held: dict[str, dict[str, Any]] = {}
    tenants: set[str] = set()
    for part in lake.catalog.partitions():
        d = held.setdefault(
            part.dataset,
            {"rows": 0, "partitions": 0, "tenants": set(), "next_purge": None, "oldest": None},
        )
        d["rows"] += part.row_count
        d["partitions"] += 1
        d["tenants"].add(part.tenant)
        tenants.add(part.tenant)
        d["next_purge"] = min(filter(None, (d["next_purge"], part.purge_date)))
        d["oldest"] = min(filter(None, (d["oldest"], part.ingest_date)))
    datasets = {
        name: {
            "rows": d["rows"],
            "partitions": d["partitions"],
            "tenants": len(d["tenants"]),
            "oldest_ingest": d["oldest"].isoformat(),
            "next_purge": d["next_purge"].isoformat(),
        }
        for name, d in sorted(held.items())
    }
    pii_names = {n for n, spec in REGISTRY.items() if spec.pii}
    pii_rows = sum(v["rows"] for n, v in datasets.items() if n in pii_names)
    derived: dict[str, dict[str, Any]] = {}
    for o in outputs(lake):
        k = derived.setdefault(o.kind, {"files": 0, "pii_files": 0, "next_purge": None})
        k["files"] += 1
        k["pii_files"] += o.dataset in pii_names
        k["next_purge"] = min(filter(None, (k["next_purge"], o.purge_date)))
    for k in derived.values():
        k["next_purge"] = k["next_purge"].isoformat() if k["next_purge"] else None
    home = settings.home
    follows = "follows its source: deleted with the earliest purge date of the partitions it "
    follows += "was built from (derived-output registry; purge, deletion notices, erasures)"
    quarantine = datasets.get("quarantine", {})
    locations: list[dict[str, Any]] = [
        {
            "name": "reports",
            "path": str(reports_root(lake)),
            "holds": "report files built from the lake (registered derived outputs)",
            "personal_data": bool(derived.get("report", {}).get("pii_files")),
            "count": derived.get("report", {}).get("files", 0)
            + derived.get("cache", {}).get("files", 0),
            "retention": follows,
        },
        {
            "name": "DSR and other exports",
            "path": str(exports_root(lake)),
            "holds": "encrypted data-subject exports (buyer PII of one subject) and exports",
            "personal_data": bool(
                derived.get("dsr_export", {}).get("files")
                or derived.get("export", {}).get("pii_files")
            ),
            "count": derived.get("dsr_export", {}).get("files", 0)
            + derived.get("export", {}).get("files", 0),
            "retention": follows,
        },
        {
            "name": "quarantine",
            "path": f"{settings.lake_dir} (dataset quarantine)",
            "holds": "ingested records that failed validation (buyer PII sub-objects removed)",
            "personal_data": False,
            "count": quarantine.get("rows", 0),
            "retention": REGISTRY["quarantine"].retention.describe(),
        },
        {
            "name": "DSR staging",
            "path": str(settings.state_dir / "dsr-staging"),
            "holds": "encrypted scratch copies while a rectification or erasure runs",
            "personal_data": True,
            "count": len(list((settings.state_dir / "dsr-staging").glob("*")))
            if (settings.state_dir / "dsr-staging").exists()
            else 0,
            "retention": "deleted when the request completes (resumed after a crash)",
        },
        {
            "name": "audit log",
            "path": str(settings.audit_path),
            "holds": "who did what: staff user ids, actions, datasets, tenants, purposes, row "
            "counts; no buyer PII values (the event schema refuses them)",
            "personal_data": True,
            "count": _audit_records(settings.checkpoint_path),
            "retention": f"at least {MIN_RETENTION.days} days, then crypto-shredded by the "
            "purge (12 months); checkpoints kept apart in " + str(settings.checkpoint_path),
        },
        {
            "name": "user store",
            "path": str(home / "identity.sqlite"),
            "holds": "staff accounts: user id, roles, password hash, encrypted TOTP secret, "
            "login times, sessions",
            "personal_data": True,
            "count": counts.users,
            "retention": "while the account exists (disabled accounts stay for the access "
            "review and the audit trail until an administrator removes them)",
        },
        {
            "name": "tenant grants",
            "path": str(home / "grants.sqlite"),
            "holds": "which staff user may read which tenant",
            "personal_data": True,
            "count": counts.grants,
            "retention": "until revoked",
        },
        {
            "name": "campaign state",
            "path": str(settings.state_dir / "campaigns.sqlite"),
            "holds": "review-request intents and outcomes: order id, marketplace, state, times "
            "(purpose review_management; no buyer data)",
            "personal_data": False,
            "count": counts.campaign_orders,
            "retention": "while the home exists (the record that an order was asked once)",
        },
        {
            "name": "alert delivery ledger",
            "path": str(home / "alerts.sqlite"),
            "holds": "raised alerts (rule, staff user id, event ids, counts) and their delivery",
            "personal_data": True,
            "count": counts.alerts,
            "retention": "no automatic deletion yet (see docs/compliance.md)",
        },
    ]
    pii_purposes = list(policy.pii_purposes) if policy is not None else []
    readers = (
        sorted(r.name for r in policy.roles.values() if r.pii and r.datasets & pii_names)
        if policy is not None
        else []
    )
    warnings = []
    if pii_rows and not settings.pii_purposes:
        warnings.append(
            f"{pii_rows} buyer PII rows are held although no PII ingestion purpose is configured "
            "(pii_purposes in config.toml): find where they came from, or purge them"
        )
    return {
        "home": str(home),
        "tenants": len(tenants),
        "datasets": datasets,
        "pii_rows": pii_rows,
        "pii_datasets_with_rows": sorted(n for n in pii_names if datasets.get(n, {}).get("rows")),
        "policy": None if policy is None else {"source": policy.source, "sha256": policy.sha256},
        "policy_version": policy_version,
        "policy_pii_purposes": pii_purposes,
        "policy_pii_roles": readers,
        "derived_outputs": derived,
        "locations": locations,
        "warnings": warnings,
    }


def build_ropa(
    configured_purposes: tuple[str, ...] = (), facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The record as data; with `facts` (see `installation_facts`), what this home holds."""
    datasets = [_dataset(s, configured_purposes) for s in REGISTRY.values()]
    if facts is not None:
        for d in datasets:
            here = facts["datasets"].get(d["dataset"], {})
            d["held_here"] = {
                "rows": here.get("rows", 0),
                "tenants": here.get("tenants", 0),
                "partitions": here.get("partitions", 0),
                "next_purge": here.get("next_purge"),
            }
            if d["personal_data"]:
                d["purposes_enabled_here"] = sorted(
                    set(configured_purposes) | set(facts["policy_pii_purposes"])
                )
    ropa: dict[str, Any] = {
        "title": "Record of processing activities",
        "generated": dt.datetime.now(dt.UTC).date().isoformat(),
        "tool": tool_version(),
        "controller": "the seller operating this deployment (see docs/compliance.md)",
        "pii_purposes": list(PII_PURPOSES),
        "pii_purposes_enabled": list(configured_purposes),
        "data_subjects": "Amazon buyers of merchant-fulfilled orders (PII datasets only)",
        "security": "encryption at rest, role- and purpose-based access, tamper-evident audit "
        "log, MFA (see docs/architecture.md and governance)",
        "datasets": datasets,
        "activities": [dict(a) for a in ACTIVITIES],
    }
    if facts is not None:
        ropa["pii_purposes_enabled"] = sorted(
            set(configured_purposes) | set(facts["policy_pii_purposes"])
        )
        ropa["pii_ingestion_purposes"] = list(configured_purposes)
        ropa["installation"] = facts
        ropa["policy_version"] = facts.get("policy_version")  # the data policy in force
        ropa["data_subjects"] += (
            f"; here: {facts['pii_rows']} buyer PII rows in "
            f"{', '.join(facts['pii_datasets_with_rows']) or 'no dataset'}"
        )
        ropa["staff_data_subjects"] = (
            "staff users of this deployment (user store, grants, audit log, alert ledger)"
        )
    return ropa


def render_html(ropa: dict[str, Any]) -> str:
    """The record as a readable HTML page."""
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(ropa['title'])}"
        "</title><style>body{font-family:sans-serif;max-width:75em;margin:2em auto}"
        "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #bbb;"
        "padding:.2em .5em;text-align:left;font-size:.9em}</style></head><body>",
        f"<h1>{e(ropa['title'])}</h1><p>Generated {e(ropa['generated'])} by "
        f"{e(ropa['tool'])}. Controller: {e(ropa['controller'])}.</p>",
        f"<p>PII purposes: {e(', '.join(ropa['pii_purposes']))} (enabled here: "
        f"{e(', '.join(ropa['pii_purposes_enabled']) or 'none')}).</p>",
    ]
    facts = ropa.get("installation")
    if facts is not None:
        parts.append(
            f"<h2>This installation</h2><p>{facts['pii_rows']} buyer PII rows held in "
            f"{e(', '.join(facts['pii_datasets_with_rows']) or 'no dataset')}; "
            f"{facts['tenants']} tenant(s). PII ingestion purposes configured: "
            f"{e(', '.join(ropa['pii_ingestion_purposes']) or 'none')}. Policy lets roles "
            f"{e(', '.join(facts['policy_pii_roles']) or '(none)')} read PII for "
            f"{e(', '.join(facts['policy_pii_purposes']) or '(none)')}.</p>"
        )
        pv = facts.get("policy_version")
        parts.append(
            f"<p id='policy-version'>Data policy in force: version {pv['version']}, effective "
            f"{e(str(pv['effective']))} ({e(str(pv['summary']))}; content "
            f"{e(str(pv['sha256'])[:16])}; see <code>amzigo policy log</code>).</p>"
            if pv
            else "<p id='policy-version'>Data policy in force: no version recorded in the "
            "change log.</p>"
        )
        for w in facts["warnings"]:
            parts.append(f"<p><strong>Warning:</strong> {e(w)}</p>")
        parts.append(
            "<h3>Where data and derived copies live</h3><table><tr><th>copy</th><th>path</th>"
            "<th>holds</th><th>personal data</th><th>count</th><th>retention</th></tr>"
        )
        for loc in facts["locations"]:
            parts.append(
                f"<tr><td>{e(loc['name'])}</td><td>{e(loc['path'])}</td><td>{e(loc['holds'])}"
                f"</td><td>{'yes' if loc['personal_data'] else 'no'}</td>"
                f"<td>{'' if loc['count'] is None else loc['count']}</td>"
                f"<td>{e(loc['retention'])}</td></tr>"
            )
        parts.append("</table>")
    for a in ropa.get("activities", []):
        parts.append(f"<h2>Activity: {e(a['name'])} (purpose {e(a['purpose'])})</h2><table>")
        for k in ("description", "data", "legal_basis", "recipients", "safeguards", "storage",
                  "retention"):  # fmt: skip
            parts.append(f"<tr><th>{e(k)}</th><td>{e(str(a[k]))}</td></tr>")
        parts.append("</table>")
    for d in ropa["datasets"]:
        parts.append(
            f"<h2>{e(d['dataset'])}{' (personal data)' if d['personal_data'] else ''}</h2>"
        )
        parts.append(f"<p>{e(d['description'])}</p><table>")
        if "held_here" in d:
            h = d["held_here"]
            parts.append(
                f"<tr><th>held here</th><td>{h['rows']} rows, {h['tenants']} tenant(s), "
                f"{h['partitions']} partition(s); next purge {e(str(h['next_purge'] or '-'))}"
                "</td></tr>"
            )
        for k in (
            "source",
            "purposes",
            "legal_basis",
            "retention",
            "storage",
            "sharing",
            "disposal",
        ):
            v = d[k]
            parts.append(
                f"<tr><th>{e(k)}</th><td>{e('; '.join(v) if isinstance(v, list) else v)}</td></tr>"
            )
        parts.append("</table><table><tr><th>column</th><th>data class</th><th>personal</th></tr>")
        for c in d["columns"]:
            parts.append(
                f"<tr><td>{e(c['name'])}</td><td>{e(c['data_class'])}</td>"
                f"<td>{'yes' if c['personal'] else ''}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_ropa(
    out_dir: Path, configured_purposes: tuple[str, ...] = (), facts: dict[str, Any] | None = None
) -> list[Path]:
    """Write `ropa.json` and `ropa.html` into `out_dir` (with the installation's `facts`)."""
    ropa = build_ropa(configured_purposes, facts)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "ropa.json", out_dir / "ropa.html"]
    paths[0].write_text(json.dumps(ropa, indent=2), encoding="utf-8")
    paths[1].write_text(render_html(ropa), encoding="utf-8")
    return paths
