"""The CLI's client commands, served by the gateway (`amzigo lake ls`, `hold ...`, `dsr ...`).

Each action runs on the gateway's home thread, as the person whose login session the CLI
presents, checked for a policy right or the compliance role by `Calls.admin_actor` in
`amzigo_lab.gateway.calls` (a denial is audited naming the user). Rights-based actions also
accept the operator credential with a `--break-glass` reason (audited, alerted); compliance
actions never do: they need a named person with the compliance role, as the in-process
commands did.

The bodies carry no secret but a DSR's subject and a credential's value, which stay in memory:
the gateway's log names the action and the error class only, never a body or a message.
Results are JSON; files a command writes (certificate export, ROPA, access review) come back as
their text, and the CLI writes them where its user asked.

Product costs (`costs.import`, `costs.list`) are tenant data, not administration: they need the
least right that already reaches the tenant's sales figures, the policy's `sales_analysis`
access to the tenant's `product_costs` (an analyst granted the tenant: `amzigo users grant`).
manage_users is not used (admins read no seller data and it spans every tenant). Importing
also refuses a seller account (an exclusive, dashboard-only role); listing allows it for its
own tenant. The operator may use both with --break-glass (audited, alerted).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError
from amzigo_lab.errors import InvalidName, UnknownTenant
from amzigo_lab.gateway.calls import Calls, Handler, date_of, moment_of, text_of
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from amzigo_lab.compliance.ropa import StoreCounts
    from amzigo_lab.governance.context import Governance

COMPLIANCE = "compliance"  # the role (amzigo_lab.compliance.roles.COMPLIANCE)
COSTS = "product_costs"
COSTS_PURPOSE = "sales_analysis"
LIST_TENANTS = "list the lake's tenants with `amzigo lake ls`"


def _files(paths: list[Path]) -> list[dict[str, str]]:
    return [{"name": p.name, "text": p.read_text(encoding="utf-8")} for p in paths]


def store_counts(gov: Governance) -> StoreCounts:
    """The ROPA's counts of the stores other layers own, each asked of its owner (counts only):
    users and grants of the open governance, campaign state and the alert ledger read-only."""
    from amzigo_lab.campaigns.store import CampaignStore
    from amzigo_lab.compliance.ropa import StoreCounts
    from amzigo_lab.governance.alerting import DeliveryLedger

    return StoreCounts(
        users=gov.identity.count(),
        grants=gov.grants.count(),
        campaign_orders=CampaignStore.count_in(gov.settings.state_dir),
        alerts=DeliveryLedger.count_in(gov.settings.home),
    )


def handlers(calls: Calls) -> dict[str, Handler]:
    """The CLI's client actions, by name, acting through `calls`."""
    gov = calls.gov

    def person(token: str, body: dict[str, Any], action: str) -> str:
        return calls.admin_actor(token, body, action, role=COMPLIANCE)

    def right(token: str, body: dict[str, Any], action: str, name: str) -> str:
        return calls.admin_actor(token, body, action, right=name)

    # -- the lake ------------------------------------------------------------------------------
    def lake_ls(token: str, body: dict[str, Any]) -> dict[str, Any]:
        right(token, body, protocol.LAKE_LS, "read_audit")
        lake = gov.lake
        dataset, tenant = text_of(body, "dataset"), text_of(body, "tenant")
        if tenant is not None:
            try:
                tenant_id(tenant)
            except InvalidName:
                raise UnknownTenant(
                    f"invalid tenant {tenant!r} (a-z, 0-9, '-', '_'): {LIST_TENANTS}"
                ) from None
            if not lake.catalog.partitions(tenants=[tenant]):
                raise UnknownTenant(
                    f"unknown tenant {tenant!r}: no data in the lake; {LIST_TENANTS}"
                )
        if dataset is not None:
            dataset = lake.spec(dataset).name  # UnknownDataset names the known ones
        parts = lake.catalog.partitions(dataset, [tenant] if tenant else None)
        from amzigo_lab.source.mode import describe

        return {
            "mode": describe(lake),
            "partitions": [
                {"id": p.id, "dataset": p.dataset, "tenant": p.tenant,
                 "ingest_date": p.ingest_date.isoformat(), "purge_date": p.purge_date.isoformat(),
                 "rows": p.row_count, "bytes": p.bytes}
                for p in parts
            ]
        }  # fmt: skip

    def lake_verify(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.recovery import uncovered_partitions
        from amzigo_lab.lake.integrity import Problem

        right(token, body, protocol.LAKE_VERIFY, "read_audit")
        report = gov.lake.verify()
        report.problems.extend(  # destroyed, but no destruction certificate covers it
            Problem("uncertified", f"partition {u.partition_id}", u.message())
            for u in uncovered_partitions(gov.lake)
        )
        return report.to_dict()

    # -- people and the audit log --------------------------------------------------------------
    def users_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.access_review import review_rows

        right(token, body, protocol.USERS_LIST, "access_review")
        return {"users": review_rows(gov)}

    def access_review(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.access_review import write_access_review

        actor = right(token, body, protocol.ACCESS_REVIEW, "access_review")
        today = date_of(body, "today") or dt.date.today()
        with tempfile.TemporaryDirectory(prefix="amzigo-review-") as tmp:
            csv_path, html_path, n = write_access_review(gov, Path(tmp), today)
            files = _files([csv_path, html_path])
        gov.emit("access.review", actor=actor, resource="identity", row_count=n, reason="csv+html")
        return {"files": files, "users": n}

    def audit_search(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = right(token, body, protocol.AUDIT_SEARCH, "read_audit")
        events = gov.audit_log.search(
            actor=text_of(body, "actor"),
            action=text_of(body, "action"),
            resource=text_of(body, "resource"),
            since=moment_of(body, "since"),
            until=moment_of(body, "until"),
        )
        glass = actor.startswith("break-glass:")
        session = None if glass else calls.user_session(token, "audit.search", touch=False)
        gov.emit(
            "audit.search",
            actor=actor,
            session="" if session is None else f"s{session.session_id}",
            resource="audit:log",
            purpose="compliance",
            row_count=len(events),
            decision="allow",
        )
        limit = max(int(body.get("limit", 200)), 0)
        return {"total": len(events), "events": [e.to_dict() for e in events[-limit:]]}

    def alerts_run(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.alerting import (
            DeliveryReport,
            alert_rules,
            audit_delivery,
            collect_alerts,
            deliver,
        )

        actor = right(token, body, protocol.ALERTS_RUN, "read_audit")
        alerts = collect_alerts(gov, moment_of(body, "since"))
        _rules, sinks = alert_rules(gov)
        report = DeliveryReport()
        if sinks and body.get("send", True) is not False:  # once per (alert, sink); failed
            report = deliver(gov, alerts, sinks, retry_now=True)  # ones are retried now
            audit_delivery(gov, report, actor)
        failures = [
            f"{alert.rule} {alert.alert_id} to {sink}: {error}"
            for alert, sink, error in report.failed
        ]
        return {
            "alerts": [a.to_dict() for a in alerts],
            "failures": failures,
            "failed_sinks": report.failed_sinks,
        }

    def credentials_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.spapi_credentials import WARN_AGE_DAYS, list_credentials

        right(token, body, protocol.CREDENTIALS_LIST, "manage_users")
        items = list_credentials(gov, dt.datetime.now(dt.UTC))
        return {
            "warn_age_days": WARN_AGE_DAYS,
            "credentials": [
                {"name": c.name, "created_at": c.created_at, "rotated_at": c.rotated_at,
                 "age_days": c.age_days, "rotate": c.stale}
                for c in items
            ],
        }  # fmt: skip

    def credentials_set(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.spapi_credentials import set_credentials

        actor = right(token, body, protocol.CREDENTIALS_SET, "manage_users")
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise GatewayProtocolError("credentials.set takes values as an object")
        clean = {str(k): str(v) for k, v in values.items()}
        return {"names": set_credentials(gov, text_of(body, "tenant"), clean, actor)}

    # -- product costs (tenant data: the tenant's sales_analysis access) ------------------------
    def costs_actor(
        token: str, body: dict[str, Any], action: str, *, write: bool
    ) -> tuple[str, str]:
        """(actor, tenant): a person with sales_analysis access to the tenant's product_costs
        (not a seller account when `write`), or break-glass; denials audited naming the user."""
        raw = text_of(body, "tenant")
        if raw is None:
            raise GatewayProtocolError(f"{action} needs a tenant")
        try:
            tenant = tenant_id(raw)
        except InvalidName:
            raise UnknownTenant(
                f"invalid tenant {raw!r} (a-z, 0-9, '-', '_'): {LIST_TENANTS}"
            ) from None
        if calls.is_operator(token):
            actor = right(token, body, action, "manage_users")  # break-glass path only
        else:
            if token.startswith("knl_"):
                calls.deny(f"{action}: a kernel token reads data only; use `amzigo login`", action)
            session = calls.user_session(token, action)
            who = gov.principal_of(session)
            decision = gov.policy.decide(who, gov.lake.spec(COSTS), tenant, COSTS_PURPOSE)
            if not decision:
                gov._refuse(
                    session, who, action,
                    f"{action} needs {COSTS_PURPOSE} access to tenant {tenant!r} "
                    f"({decision.reason})",
                    "an analyst needs a grant: amzigo users grant NAME --tenant TENANT",
                )  # fmt: skip
            roles = gov.policy.effective_roles(who)
            if write and any(r.exclusive for r in roles):
                gov._refuse(
                    session, who, action,
                    f"{action} is for staff with {COSTS_PURPOSE} access: a seller account "
                    "reads its dashboard",
                    "ask an analyst granted the tenant to import the costs",
                )  # fmt: skip
            actor = str(session.user_id)
        if not gov.lake.catalog.partitions(tenants=[tenant]):
            raise UnknownTenant(f"unknown tenant {tenant!r}: no data in the lake; {LIST_TENANTS}")
        return actor, tenant

    def costs_import(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.analysis.cost_file import (
            CostFileError,
            cost_table,
            digest,
            parse_cost_file,
        )

        actor, tenant = costs_actor(token, body, protocol.COSTS_IMPORT, write=True)
        name = os.path.basename(str(body.get("name") or "costs.csv"))[:200]
        try:
            data = base64.b64decode(str(body.get("data_b64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise GatewayProtocolError("costs.import takes the file as base64 (data_b64)") from None
        default = date_of(body, "valid_from")
        sha = digest(data)
        try:
            rows = parse_cost_file(name, data, default)
        except CostFileError as exc:
            gov.emit(
                "costs.import_failed", actor=actor, tenant=tenant,
                resource=f"dataset:{COSTS}", decision="error",
                reason=f"file sha256 {sha[:16]}: {str(exc).splitlines()[0][:300]}",
            )  # fmt: skip
            raise
        now = calls.clock()
        table = cost_table(rows, sha, now)
        batch = f"costs-{sha[:40]}-{default.isoformat() if default else 'file'}"
        result = gov.lake.write(COSTS, tenant, now.date(), table, batch)
        gov.emit(
            "costs.imported", actor=actor, tenant=tenant, resource=f"dataset:{COSTS}",
            row_count=0 if result.already_committed else len(rows),
            reason=f"file sha256 {sha[:16]}"
            + ("; already imported, nothing written" if result.already_committed else ""),
        )  # fmt: skip
        return {
            "tenant": tenant, "rows": len(rows), "skus": len({r.sku for r in rows}),
            "sha256": sha, "already_imported": result.already_committed,
            "imported_at": now.isoformat(), "actor": actor,
        }  # fmt: skip

    def costs_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.analysis.money import marketplace_code

        actor, tenant = costs_actor(token, body, protocol.COSTS_LIST, write=False)
        scan = gov.lake.scan(COSTS, [tenant])
        rows = scan.latest(calls.con).to_pylist() if scan.paths else []
        today = date_of(body, "today") or calls.clock().date()
        in_effect: dict[tuple[Any, ...], dt.date] = {}
        for r in rows:
            key = (r["sku"], r["marketplace_id"], r["currency"])
            if r["valid_from"] <= today and r["valid_from"] > in_effect.get(key, dt.date.min):
                in_effect[key] = r["valid_from"]
        rows.sort(
            key=lambda r: (r["sku"], r["marketplace_id"] or "", r["currency"], r["valid_from"])
        )
        gov.emit(
            "data.read", actor=actor, tenant=tenant, resource=f"dataset:{COSTS}",
            purpose=COSTS_PURPOSE, decision="allow", row_count=len(rows), reason="amzigo costs ls",
        )  # fmt: skip
        return {
            "tenant": tenant,
            "today": today.isoformat(),
            "costs": [
                {"sku": r["sku"],
                 "marketplace": marketplace_code(r["marketplace_id"] or "ALL"),
                 "currency": r["currency"], "unit_cost": str(r["unit_cost"]),
                 "valid_from": r["valid_from"].isoformat(),
                 "in_effect": in_effect.get((r["sku"], r["marketplace_id"], r["currency"]))
                 == r["valid_from"],
                 "imported_at": r["imported_at"].isoformat(), "source_sha256": r["source_sha256"]}
                for r in rows
            ],
        }  # fmt: skip

    # -- compliance ----------------------------------------------------------------------------
    def hold_add(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.holds import add_hold

        actor = person(token, body, protocol.HOLD_ADD)
        until = date_of(body, "until")
        if until is None:
            raise GatewayProtocolError("hold.add needs until")
        hold = add_hold(
            gov.lake,
            tenant=str(body.get("tenant", "")),
            dataset=text_of(body, "dataset"),
            from_date=date_of(body, "from_date"),
            to_date=date_of(body, "to_date"),
            reason=str(body.get("reason", "")),
            until=until,
            actor=actor,
        )
        return {"hold": hold.to_dict(), "scope": hold.scope}

    def hold_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.holds import list_holds

        person(token, body, protocol.HOLD_LIST)
        holds = list_holds(gov.lake, include_inactive=body.get("all") is True)
        return {"holds": [h.to_dict() for h in holds], "scopes": [h.scope for h in holds]}

    def hold_release(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.holds import release_hold

        actor = person(token, body, protocol.HOLD_RELEASE)
        hold = release_hold(gov.lake, str(body.get("hold_id", "")), actor=actor)
        return {"id": hold.id, "scope": hold.scope}

    def notice_delete(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.notices import delete_scope

        actor = person(token, body, protocol.NOTICE_DELETE)
        datasets = [str(d) for d in body.get("datasets") or []]
        result = delete_scope(
            gov.lake,
            tenant=str(body.get("tenant", "")),
            notice=str(body.get("notice", "")),
            actor=actor,
            datasets=datasets or None,
        )
        return {"result": result.to_dict()}

    def certificate_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import certificates as certs

        person(token, body, protocol.CERTIFICATE_LIST)
        return {
            "certificates": [
                {
                    "id": c.id,
                    "kind": c.body["kind"],
                    "reference": c.body["reference"],
                    "date": c.body["date"],
                    "items": len(c.body["items"]),
                    "result": c.body["sanitization"]["verification_result"],
                    "validated_by": (c.validation or {}).get("validated_by"),
                }
                for c in certs.list_certificates(gov.lake)
            ]
        }

    def certificate_show(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import certificates as certs

        person(token, body, protocol.CERTIFICATE_SHOW)
        return {"json": certs.get_certificate(gov.lake, str(body.get("id", ""))).to_json()}

    def certificate_export(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import certificates as certs

        person(token, body, protocol.CERTIFICATE_EXPORT)
        with tempfile.TemporaryDirectory(prefix="amzigo-cert-") as tmp:
            paths = certs.export_certificate(gov.lake, str(body.get("id", "")), Path(tmp))
            return {"files": _files(paths)}

    def certificate_verify(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import certificates as certs

        person(token, body, protocol.CERTIFICATE_VERIFY)
        return {"report": certs.verify_certificate(gov.lake, str(body.get("id", "")))}

    def certificate_validate(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import certificates as certs

        actor = person(token, body, protocol.CERTIFICATE_VALIDATE)
        cert = certs.validate_certificate(gov.lake, str(body.get("id", "")), actor)
        return {"id": cert.id, "actor": actor}

    def ropa(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance.ropa import installation_facts, write_ropa
        from amzigo_lab.governance.policy_log import in_force

        person(token, body, protocol.ROPA)
        facts = installation_facts(gov.lake, store_counts(gov), gov.policy, in_force(gov))
        with tempfile.TemporaryDirectory(prefix="amzigo-ropa-") as tmp:
            return {"files": _files(write_ropa(Path(tmp), calls.settings.pii_purposes, facts))}

    # -- data-subject requests (the subject is in the body; never logged or echoed) ------------
    def subject(body: dict[str, Any]) -> dict[str, Any]:
        who = body.get("subject") or {}
        if not isinstance(who, dict):
            raise GatewayProtocolError("the subject must be an object")
        ident = {k: (str(who[k]) if who.get(k) else None) for k in ("email", "name", "postcode")}
        return {"tenant": text_of(body, "tenant"), **ident}

    def dsr_export(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        actor = person(token, body, protocol.DSR_EXPORT)
        return {"files": dsr.export_subject(gov.lake, actor=actor, **subject(body))}

    def dsr_rectify(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        actor = person(token, body, protocol.DSR_RECTIFY)
        changes = body.get("changes") or {}
        if not isinstance(changes, dict):
            raise GatewayProtocolError("the changes must be an object")
        clean = {str(k): str(v) for k, v in changes.items()}
        return {
            "records": dsr.rectify_subject(gov.lake, actor=actor, changes=clean, **subject(body))
        }

    def dsr_erase(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        actor = person(token, body, protocol.DSR_ERASE)
        cert = dsr.erase_subject(gov.lake, actor=actor, **subject(body))
        return {"certificate_id": cert.id if cert else None}

    def dsr_object(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        actor = person(token, body, protocol.DSR_OBJECT)
        return {"orders": dsr.object_subject(gov.lake, actor=actor, **subject(body))}

    def dsr_resume(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        person(token, body, protocol.DSR_RESUME)
        return {"done": dsr.resume_requests(gov.lake)}

    def dsr_list(token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.compliance import dsr

        person(token, body, protocol.DSR_LIST)
        return {"requests": dsr.list_requests(gov.lake)}

    return {
        protocol.LAKE_LS: lake_ls,
        protocol.LAKE_VERIFY: lake_verify,
        protocol.USERS_LIST: users_list,
        protocol.ACCESS_REVIEW: access_review,
        protocol.AUDIT_SEARCH: audit_search,
        protocol.ALERTS_RUN: alerts_run,
        protocol.CREDENTIALS_LIST: credentials_list,
        protocol.CREDENTIALS_SET: credentials_set,
        protocol.HOLD_ADD: hold_add,
        protocol.HOLD_LIST: hold_list,
        protocol.HOLD_RELEASE: hold_release,
        protocol.NOTICE_DELETE: notice_delete,
        protocol.CERTIFICATE_LIST: certificate_list,
        protocol.CERTIFICATE_SHOW: certificate_show,
        protocol.CERTIFICATE_EXPORT: certificate_export,
        protocol.CERTIFICATE_VERIFY: certificate_verify,
        protocol.CERTIFICATE_VALIDATE: certificate_validate,
        protocol.ROPA: ropa,
        protocol.DSR_EXPORT: dsr_export,
        protocol.DSR_RECTIFY: dsr_rectify,
        protocol.DSR_ERASE: dsr_erase,
        protocol.DSR_OBJECT: dsr_object,
        protocol.DSR_RESUME: dsr_resume,
        protocol.DSR_LIST: dsr_list,
        protocol.COSTS_IMPORT: costs_import,
        protocol.COSTS_LIST: costs_list,
    }
