"""`amzigo policy ...`, served by the gateway (amzigo_lab.governance.policy_log does the work).

Reading the change log (`policy.log`, `policy.diff`, `policy.verify`) needs a live login
session, any role: every user may read the policy that applies to them. Changing it
(`policy.change`) needs a named person with the compliance or security_officer role; the
operator credential (break-glass) and kernel tokens cannot stand in. A refusal (role, missing
summary, bad date, invalid TOML) is audited and changes nothing.
"""

from __future__ import annotations

from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError
from amzigo_lab.errors import ConfigError
from amzigo_lab.gateway.calls import Calls, Handler, date_of
from amzigo_lab.governance import policy_log
from amzigo_lab.governance.incidents import responder

MAX_POLICY_BYTES = 256 * 1024


def handlers(calls: Calls) -> dict[str, Handler]:
    """The policy change-log actions, by name, acting through `calls`."""
    gov = calls.gov

    def reader(token: str, action: str) -> str:
        if calls.is_operator(token):
            calls.deny(f"{action} needs a login session (amzigo login NAME)", action)
        return str(calls.user_session(token, action).user_id)

    def version(body: dict[str, Any], key: str) -> int:
        try:
            return int(body[key])
        except (KeyError, TypeError, ValueError):
            raise GatewayProtocolError(f"{key} must be a version number") from None

    def log(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = reader(token, protocol.POLICY_LOG)
        entries = [policy_log.summary_of(e) for e in policy_log.gov_log(gov).entries()]
        gov.emit(protocol.POLICY_LOG, actor=actor, resource="policy", row_count=len(entries))
        return {"versions": entries}

    def diff(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = reader(token, protocol.POLICY_DIFF)
        a, b = version(body, "a"), version(body, "b")
        answer = policy_log.diff(policy_log.gov_log(gov), a, b)
        gov.emit(protocol.POLICY_DIFF, actor=actor, resource="policy", reason=f"v{a} -> v{b}")
        return answer

    def verify(token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = reader(token, protocol.POLICY_VERIFY)
        from amzigo_lab.compliance.certificates import signing_key

        report = policy_log.gov_log(gov).verify(signing_key(gov.lake).public_key(), gov.policy)
        gov.emit(
            protocol.POLICY_VERIFY, actor=actor, resource="policy",  # info: not a refusal
            reason="intact" if report["ok"] else ("FAILED: " + "; ".join(report["problems"]))[:480],
        )  # fmt: skip
        return report

    def change(token: str, body: dict[str, Any]) -> dict[str, Any]:
        action = protocol.POLICY_CHANGE
        if calls.is_operator(token):
            calls.deny(f"{action} needs a named person; break-glass cannot stand in", action)
        if token.startswith("knl_"):
            calls.deny(f"{action}: a kernel token reads data only", action)
        session = calls.user_session(token, action)
        actor = responder(gov, session, action)  # compliance or security_officer; audited
        text = body.get("policy_toml")
        if not isinstance(text, str) or not text.strip():
            raise GatewayProtocolError("policy.change needs the new policy file's text")
        if len(text.encode()) > MAX_POLICY_BYTES:
            raise GatewayProtocolError(f"the policy file is larger than {MAX_POLICY_BYTES} bytes")
        try:
            entry = policy_log.change_policy(
                gov, text, summary=str(body.get("summary") or ""),
                effective=date_of(body, "effective"), actor=actor,
            )  # fmt: skip
        except ConfigError as exc:
            gov.emit(action, actor=actor, session=f"s{session.session_id}", resource="policy",
                     decision="deny", reason=str(exc)[:480])  # fmt: skip
            raise
        calls.deliver_alerts()  # the policy_changed rule fires now
        return {"version": entry}

    return {
        protocol.POLICY_LOG: log,
        protocol.POLICY_DIFF: diff,
        protocol.POLICY_VERIFY: verify,
        protocol.POLICY_CHANGE: change,
    }
