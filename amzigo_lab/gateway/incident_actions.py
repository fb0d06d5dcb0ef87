"""`amzigo incident ...`, served by the gateway (amzigo_lab.governance.incidents does the work).

Every action acts as the session's user, who must hold the compliance or security_officer role
(a denial is audited naming them; break-glass cannot stand in: an incident is run by a named
person). Isolation acts on the gateway's own live state: its kernel and service token tables,
the identity store, its mode.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError
from amzigo_lab.gateway.calls import Calls, Handler, moment_of, text_of
from amzigo_lab.governance.incidents import (
    Isolator,
    Scope,
    collect_evidence,
    custody_entry,
    notify_draft,
    responder,
)


def handlers(calls: Calls) -> dict[str, Handler]:
    """The incident actions, by name, acting through `calls`."""
    gov = calls.gov
    store = calls.incidents

    def who(token: str, body: dict[str, Any], action: str) -> str:
        if calls.is_operator(token):
            calls.deny(f"{action} needs a named responder; break-glass cannot stand in", action)
        if token.startswith("knl_"):
            calls.deny(f"{action}: a kernel token reads data only", action)
        return responder(gov, calls.user_session(token, action), action)

    def ident(body: dict[str, Any]) -> str:
        value = text_of(body, "id")
        if value is None:
            raise GatewayProtocolError("name the incident (its id, from `amzigo incident list`)")
        return value

    def open_(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_OPEN)
        detected = moment_of(body, "detected_at")
        inc = store.open(
            title=str(body.get("title", "")), severity=str(body.get("severity", "")),
            actor=actor, detected_at=detected, source="manual",
        )  # fmt: skip
        return {"incident": inc}

    def list_(token: str, body: dict[str, Any]) -> dict[str, Any]:
        who(token, body, protocol.INCIDENT_LIST)
        return {"incidents": store.incidents(include_closed=body.get("all", True) is not False),
                "mode": store.mode()}  # fmt: skip

    def show(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_SHOW)
        incident_id = ident(body)
        inc, timeline = store.get(incident_id), store.timeline(incident_id)
        gov.emit(
            "incident.viewed", actor=actor, resource=f"incident:{incident_id}",
            purpose="security", row_count=len(timeline),
        )  # fmt: skip
        return {"incident": inc, "timeline": timeline, "mode": store.mode()}

    def close(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_CLOSE)
        return {"incident": store.close_incident(ident(body), actor, str(body.get("note", "")))}

    def isolate(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_ISOLATE)
        incident_id = ident(body)
        scope_text = text_of(body, "scope")
        scope = Scope.parse(scope_text) if scope_text else None
        before = len(store.timeline(incident_id))
        Isolator(store, calls).isolate(incident_id, actor, scope, text_of(body, "mode"))
        calls.deliver_alerts()
        return {"actions": store.timeline(incident_id)[before:], "mode": store.mode()}

    def restore(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_RESTORE)
        seqs = [int(s) for s in body.get("actions") or []]
        done = Isolator(store, calls).restore(ident(body), actor, seqs or None)
        return {"restored": done, "mode": store.mode()}

    def evidence(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_EVIDENCE)
        return collect_evidence(store, ident(body), actor)

    def custody(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_CUSTODY)
        to, reason = text_of(body, "to"), text_of(body, "reason")
        if not to or not reason:
            raise GatewayProtocolError("a hand-over needs --to and --reason")
        entry = custody_entry(
            store, ident(body), actor, str(body.get("manifest_sha256", "")),
            prev=str(body.get("prev", "")), event="handed_over", to=to, reason=reason,
        )  # fmt: skip
        return {"entry": entry}

    def draft(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_NOTIFY_DRAFT)
        return notify_draft(store, ident(body), actor)

    def notified(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = who(token, body, protocol.INCIDENT_NOTIFIED)
        at: dt.datetime | None = moment_of(body, "at")
        note = str(body.get("note", ""))
        return {"incident": store.mark_notified(ident(body), actor, at, note)}

    return {
        protocol.INCIDENT_OPEN: open_,
        protocol.INCIDENT_LIST: list_,
        protocol.INCIDENT_SHOW: show,
        protocol.INCIDENT_CLOSE: close,
        protocol.INCIDENT_ISOLATE: isolate,
        protocol.INCIDENT_RESTORE: restore,
        protocol.INCIDENT_EVIDENCE: evidence,
        protocol.INCIDENT_CUSTODY: custody,
        protocol.INCIDENT_NOTIFY_DRAFT: draft,
        protocol.INCIDENT_NOTIFIED: notified,
    }
