"""The access review: per user, what they can read under the current policy and what they
actually read (from the audit stream), with the reviewer's flags; written as CSV and HTML."""

from __future__ import annotations

import csv
import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.governance.context import Governance

REVIEW_COLUMNS = (
    "user", "roles", "tenant", "grants", "status", "last_login", "password_age_days",
    "mfa_enrolled", "can_read", "pii_readable", "last_data_read", "unused_grants", "flags",
)  # fmt: skip
#: A grant or a PII right not used for this long is flagged for the reviewer.
UNUSED_AFTER = dt.timedelta(days=90)
FLAG_TEXT = {
    "stale": "no login for 90 days",
    "over_privileged": "role combination wider than needed",
    "password_expired": "password expired or must change",
    "unknown_role": "a role the policy does not know",
    "pii_access": "can read buyer PII under the current policy",
    "pii_access_unused": "can read buyer PII but read none in 90 days",
    "unused_grants": "tenant grants not read in 90 days",
    "mfa_missing": "no MFA enrolled",
    "usage_unknown": "audit log unreadable: usage not checked",
}


@dataclass
class _Usage:
    """Allowed reads per user in the review window (from the audit stream)."""

    last: dict[str, str]
    tenants: dict[str, set[str]]
    pii: set[str]
    known: bool


def _usage(gov: Governance, since: dt.datetime, pii: set[str], all_tenants: set[str]) -> _Usage:
    """Who read what since `since` (allowed `data.read`/`data.export` events)."""
    usage = _Usage({}, {}, set(), True)
    try:
        events = gov.audit_log.search(since=since)
    except Exception:  # a damaged log is an alert; the review says usage is unknown
        usage.known = False
        return usage
    for ev in events:
        if ev.action not in ("data.read", "data.export") or ev.decision != "allow":
            continue
        usage.last[ev.actor] = max(usage.last.get(ev.actor, ""), ev.time)
        scope = ev.tenant
        if not scope and "tenants " in ev.reason:
            scope = ev.reason.rsplit("tenants ", 1)[1].split(";")[0].strip()
        read = (
            all_tenants if scope == "all" else {t for t in scope.split(",") if t not in ("", "-")}
        )
        usage.tenants.setdefault(ev.actor, set()).update(read)
        names = ev.resource.removeprefix("dataset:").split("+")
        if ev.resource.startswith("dataset:") and any(n in pii for n in names):
            usage.pii.add(ev.actor)
    return usage


def effective_access(
    gov: Governance, user_id: str, all_tenants: set[str]
) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """dataset -> (tenants, purposes) `user_id` can read under the current policy ("all
    tenants" resolved to the tenants the catalog holds)."""
    policy = gov.policy
    who = gov.principal(user_id)
    purposes = {p for r in policy.effective_roles(who) for p in r.purposes}
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for spec in gov.lake.registry.values():
        tenants: set[str] = set()
        why: set[str] = set()
        for purpose in sorted(purposes):
            access = policy.access(who, spec, purpose)
            if access.allowed:
                tenants |= all_tenants if access.tenants is None else set(access.tenants)
                why.add(purpose)
        if why:
            out[spec.name] = (frozenset(tenants), frozenset(why))
    return out


def review_rows(gov: Governance, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per user: identity's review row, tenant grants, what the user can actually
    read under the current policy (datasets, tenants, PII), and the reviewer's flags."""
    now = now or dt.datetime.now(dt.UTC)
    grants = gov.grants.all_grants()
    pii = {n for n, spec in gov.lake.registry.items() if spec.pii}
    all_tenants = {p.tenant for p in gov.lake.catalog.partitions()}
    usage = _usage(gov, now - UNUSED_AFTER, pii, all_tenants)
    rows = []
    for base in gov.identity.access_review_rows():
        row: dict[str, Any] = dict(base)
        user = str(row["user"])
        row["grants"] = grants.get(user, [])
        flags = list(row["flags"])
        roles: list[str] = list(row["roles"])
        if [r for r in roles if r not in gov.policy.roles]:
            flags.append("unknown_role")
        if "seller" in roles and len(roles) > 1:
            flags.append("over_privileged")
        if not row["mfa_enrolled"]:
            flags.append("mfa_missing")
        access = {} if row["status"] == "disabled" else effective_access(gov, user, all_tenants)
        row["can_read"] = [
            f"{name}[{','.join(sorted(t)) or '-'}]" for name, (t, _p) in sorted(access.items())
        ]
        row["pii_readable"] = [
            f"{name}[{','.join(sorted(t)) or '-'}] for {','.join(sorted(p))}"
            for name, (t, p) in sorted(access.items())
            if name in pii
        ]
        row["last_data_read"] = usage.last.get(user)
        unused = sorted(set(row["grants"]) - usage.tenants.get(user, set()))
        row["unused_grants"] = unused if usage.known else []
        if row["pii_readable"]:
            flags.append("pii_access")
        if not usage.known:
            flags.append("usage_unknown")
        else:
            if row["pii_readable"] and user not in usage.pii:
                flags.append("pii_access_unused")
            if unused and row["status"] != "disabled":
                flags.append("unused_grants")
        row["flags"] = sorted(set(flags))
        rows.append(row)
    return rows


def write_access_review(gov: Governance, out_dir: Path, today: dt.date) -> tuple[Path, Path, int]:
    """Write access-review-<date>.csv and .html (0600); return their paths and the row count."""
    rows = review_rows(gov)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"access-review-{today.isoformat()}.csv"
    html_path = out_dir / f"access-review-{today.isoformat()}.html"

    def cell(v: object) -> str:
        if isinstance(v, list | tuple):
            return ";".join(map(str, v))
        return "" if v is None else str(v)

    with _private(csv_path) as fh:
        writer = csv.writer(fh)
        writer.writerow(REVIEW_COLUMNS)
        for r in rows:
            writer.writerow([cell(r.get(c)) for c in REVIEW_COLUMNS])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in REVIEW_COLUMNS)
    body = "".join(
        "<tr{}>{}</tr>".format(
            ' class="flag"' if r["flags"] else "",
            "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in REVIEW_COLUMNS),
        )
        for r in rows
    )
    flagged = sum(1 for r in rows if r["flags"])
    legend = "; ".join(f"{k}: {v}" for k, v in FLAG_TEXT.items())
    page = (
        "<!doctype html><meta charset='utf-8'><title>Access review</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
        "tr.flag{background:#fee}</style>"
        f"<h1>Access review {today.isoformat()}</h1>"
        f"<p>{len(rows)} users, {flagged} flagged ({html.escape(legend)}). "
        f"Policy {html.escape(gov.policy.source)} sha256 "
        f"{gov.policy.sha256[:16]}; password preset {gov.identity.policy.name}.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
    )
    with _private(html_path) as fh:
        fh.write(page)
    return csv_path, html_path, len(rows)


class _private:
    """Open a text file for writing with mode 0600."""

    def __init__(self, path: Path) -> None:
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def __enter__(self) -> Any:
        return self._fh

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
