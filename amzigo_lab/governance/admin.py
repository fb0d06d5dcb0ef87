"""Administrative services behind the CLI: access review files, SP-API credentials, alerts."""

from __future__ import annotations

import csv
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.config import config_sections
from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.audit import (
    Alert,
    AuditVerificationFailed,
    BreakGlassUsed,
    CommandSink,
    LockedAccountAttempts,
    PiiOutsidePurpose,
    RepeatedDenials,
    Rule,
    Sink,
    UnusualVolume,
    WebhookSink,
    evaluate,
)
from amzigo_lab.governance.context import Governance
from amzigo_lab.names import tenant_id

# -- access review ----------------------------------------------------------------------------

REVIEW_COLUMNS = (
    "user", "roles", "tenant", "grants", "status", "last_login", "password_age_days",
    "mfa_enrolled", "flags",
)  # fmt: skip


def review_rows(gov: Governance) -> list[dict[str, Any]]:
    """One row per user: identity's review row plus tenant grants and policy flags."""
    grants = gov.grants.all_grants()
    rows = []
    for row in gov.identity.access_review_rows():
        row = dict(row)
        row["grants"] = grants.get(str(row["user"]), [])
        flags = list(row["flags"])  # type: ignore[call-overload]
        unknown = [r for r in row["roles"] if r not in gov.policy.roles]  # type: ignore[attr-defined]
        if unknown:
            flags.append("unknown_role")
        if "seller" in row["roles"] and len(row["roles"]) > 1:  # type: ignore[arg-type,operator]
            flags.append("over_privileged")
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
    page = (
        "<!doctype html><meta charset='utf-8'><title>Access review</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
        "tr.flag{background:#fee}</style>"
        f"<h1>Access review {today.isoformat()}</h1>"
        f"<p>{len(rows)} users, {flagged} flagged (stale, over-privileged, password expired, "
        f"unknown role). Policy {html.escape(gov.policy.source)} sha256 "
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


# -- SP-API credentials -----------------------------------------------------------------------

WARN_AGE_DAYS = 365


def credential_names(tenant: str | None) -> dict[str, str]:
    """Field -> catalog secret name, matching what the ingestion client reads."""
    from amzigo_lab.source.client import (
        SECRET_CLIENT_ID,
        SECRET_CLIENT_SECRET,
        SECRET_REFRESH_PREFIX,
    )

    names = {"client_id": SECRET_CLIENT_ID, "client_secret": SECRET_CLIENT_SECRET}
    if tenant is not None:
        names["refresh_token"] = SECRET_REFRESH_PREFIX + tenant_id(tenant)
    return names


def set_credentials(
    gov: Governance, tenant: str | None, values: Mapping[str, str], actor: str
) -> list[str]:
    """Store the given credential fields encrypted in the catalog; audit each; return names.

    Connects the home to Amazon for good (source/mode.py): refused on a sandbox home, whose
    lake holds synthetic data."""
    from amzigo_lab.source.mode import mark_amazon, require_not_sandbox

    require_not_sandbox(gov.lake)
    names = credential_names(tenant)
    existing = {n for n, _c, _r in gov.lake.secret_names()}
    stored = []
    for field, value in values.items():
        if field not in names:
            raise ConfigError(f"unknown credential field {field!r}; use {', '.join(names)}")
        if field == "refresh_token" and tenant is None:
            raise ConfigError("a refresh token belongs to a tenant: add --tenant")
        name = names[field]
        gov.lake.put_secret(name, value.encode("utf-8"))
        rotated = name in existing
        gov.emit(
            "credentials.rotated" if rotated else "credentials.set",
            actor=actor,
            resource=f"secret:{name}",
            tenant=tenant or "",
            reason="replaced" if rotated else "created",
        )
        stored.append(name)
    if stored:
        mark_amazon(gov.lake)
    return stored


@dataclass(frozen=True)
class CredentialAge:
    """Name and age of a stored SP-API credential (never its value)."""

    name: str
    created_at: str
    rotated_at: str
    age_days: int

    @property
    def stale(self) -> bool:
        """Older than the yearly rotation rule."""
        return self.age_days >= WARN_AGE_DAYS


def list_credentials(gov: Governance, now: dt.datetime) -> list[CredentialAge]:
    """Stored SP-API credentials and their ages since the last rotation."""
    out = []
    for name, created, rotated in gov.lake.secret_names():
        if not name.startswith("spapi."):
            continue
        when = dt.datetime.fromisoformat(rotated)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        out.append(CredentialAge(name, created, rotated, (now - when).days))
    return out


# -- alerts -----------------------------------------------------------------------------------


def alert_rules(gov: Governance) -> tuple[list[Rule], list[Sink]]:
    """Rules with thresholds from `[alerts]` in config.toml, and the configured sinks."""
    cfg: dict[str, Any] = config_sections(gov.settings).get("alerts", {})

    def num(key: str, default: float) -> float:
        v = cfg.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise ConfigError(f"invalid [alerts] {key} = {v!r} in config.toml: expected > 0")
        return float(v)

    pii = {n for n, spec in gov.lake.registry.items() if spec.pii}

    def is_pii(resource: str) -> bool:
        names = resource.removeprefix("dataset:").split("+")
        return resource.startswith("dataset:") and any(n in pii for n in names)

    rules: list[Rule] = [
        RepeatedDenials(
            count=int(num("denials_count", 5)),
            window=dt.timedelta(minutes=num("denials_window_minutes", 10)),
        ),
        UnusualVolume(
            factor=num("volume_factor", 10), min_history=int(num("volume_min_history", 5))
        ),
        PiiOutsidePurpose(pii_resources=is_pii, allowed_purposes=gov.policy.pii_purposes),
        LockedAccountAttempts(window=dt.timedelta(minutes=num("locked_window_minutes", 60))),
        AuditVerificationFailed(),
        BreakGlassUsed(),
    ]
    sinks: list[Sink] = []
    command = cfg.get("command")
    if command:
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise ConfigError("[alerts] command must be a list of strings (argv, no shell)")
        sinks.append(CommandSink(command))
    if url := cfg.get("webhook_url"):
        try:
            sinks.append(WebhookSink(str(url)))
        except ValueError as exc:
            raise ConfigError(f"[alerts] webhook_url: {exc}") from None
    return rules, sinks


def run_alerts(gov: Governance, since: dt.datetime | None = None) -> list[Alert]:
    """Evaluate every rule over the audit stream (and a fresh verification)."""
    rules, _sinks = alert_rules(gov)
    events = gov.audit_log.search(since=since)
    alerts = evaluate(events, rules)
    report = gov.audit_log.verify()
    alerts += AuditVerificationFailed().check(report)
    return alerts


def new_alerts(gov: Governance, alerts: Sequence[Alert]) -> list[Alert]:
    """Alerts not delivered before (by time and rule), to avoid re-sending on every run."""
    last = gov.grants.get_meta("alerts_sent_until") or ""
    return [a for a in alerts if a.time > last]


def mark_sent(gov: Governance, alerts: Sequence[Alert]) -> None:
    """Remember the newest delivered alert time."""
    if alerts:
        gov.grants.set_meta("alerts_sent_until", max(a.time for a in alerts))
