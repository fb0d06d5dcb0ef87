"""Destruction certificates (NIST SP 800-88 sample fields), signed with Ed25519.

One certificate per purge run, deletion notice and erasure. The body names who performed the
sanitization, what media and data it covered, its classification and backup state, the method
(Purge: cryptographic erase + file deletion), the tool and version, how it was verified and the
result (from the drops' `DestructionRecord`s), the date, the destruction records and audit
event ids it covers, and whether a second person must validate it. The signing key lives in
`<home>/keys/certificate-signing.pem` (0600), its public key is published beside it as
`certificate-signing.pub.pem`; `verify` checks the signature, that the published public key is
the signing key's, that the certificate row's MAC (lake/rowmac.py) matches, that the covered
destruction records are unchanged, and that the audit events exist.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amzigo_lab.compliance.common import (
    ComplianceError,
    EventLog,
    home_config,
    new_id,
    tool_version,
)
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.keys import write_private
from amzigo_lab.lake.records import Certificates, Destructions
from amzigo_lab.lake.rowmac import TamperedRow

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

FORMAT = "amzigo-destruction-certificate/1"
METHOD = "cryptographic erase + file deletion"
KINDS = {
    "purge": "Scheduled retention purge",
    "deletion_notice": "Deletion on Amazon's notice",
    "dsr_erasure": "Data-subject erasure",
}


def key_path(lake: Lake) -> Path:
    """The Ed25519 certificate-signing key of a home."""
    return lake.settings.home / "keys" / "certificate-signing.pem"


def signing_key(lake: Lake) -> Ed25519PrivateKey:
    """Load the signing key, creating it (0600) on first use (`amzigo init` creates it).

    A missing key is never replaced once it has signed anything (a certificate exists, or its
    public key was published): a new key would not verify those certificates and would
    overwrite the published public key. Restore it from backup instead."""
    path = key_path(lake)
    if path.is_symlink() and not path.exists():
        raise ComplianceError(
            f"the certificate-signing key path {path} is a symlink to {os.readlink(path)}, which "
            "does not exist: mount or restore the key's storage (or fix the link)"
        )
    if not path.exists():
        signed = Certificates(lake.catalog).count()
        if signed or published_key_path(lake).exists():
            raise ComplianceError(
                f"the certificate-signing key {path} is missing but has signed {signed} "
                "certificate(s) (its public key is published): restore it from backup; a new "
                "key would not verify them"
            )
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ComplianceError(f"{path} is readable by others: chmod 600 it")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ComplianceError(f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)  # complete or not at all, even on a full disk
    public_pem(key.public_key(), published_key_path(lake))
    return key


def published_key_path(lake: Lake) -> Path:
    """The published public key (`<home>/keys/certificate-signing.pub.pem`) verifiers use."""
    return key_path(lake).with_name("certificate-signing.pub.pem")


def _published_key_problem(lake: Lake, public: Ed25519PublicKey) -> str | None:
    """Why the published public key file does not match the signing key (None if it does)."""
    path = published_key_path(lake)
    fix = (
        "verifiers outside the home would check certificates against the wrong key; find out "
        "who replaced it, then re-publish the right one with `amzigo certificate export`"
    )
    if not path.exists():
        return f"published public key {path} is missing: {fix}"
    try:
        published = serialization.load_pem_public_key(path.read_bytes())
    except ValueError:
        return f"published public key {path} is not a PEM public key: {fix}"
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if not isinstance(published, Ed25519PublicKey) or published.public_bytes(
        *raw
    ) != public.public_bytes(*raw):
        return f"published public key {path} does not match the signing key: {fix}"
    return None


def public_pem(public: Ed25519PublicKey, path: Path) -> None:
    """Write the public key (for verifiers outside the home)."""
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def key_id(public: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes of a body."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class DestructionCertificate:
    """A signed certificate."""

    id: str
    body: dict[str, Any]
    signature: str
    validation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole certificate as JSON-ready data."""
        return {
            **self.body,
            "signature": {
                "algorithm": "Ed25519",
                "key_id": self.body["signing_key_id"],
                "value": self.signature,
            },
            "validation": self.validation
            or {"required": self.body["validation_required"], "validated_by": None},
        }

    def to_json(self) -> str:
        """Pretty JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_html(self) -> str:
        """A readable HTML page."""
        return render_html(self)


def _summary(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    items: list[dict[str, Any]] = []
    verif = {
        "records": len(records),
        "all_ok": True,
        "keys_present_after": 0,
        "files_present_after": 0,
        "wrapped_key_copies_found": 0,
        "canaries_checked": 0,
        "canary_hits": 0,
    }
    for rec in records:
        v = rec.get("verification", {})
        verif["all_ok"] = bool(verif["all_ok"] and v.get("ok", False))
        for k in (
            "keys_present_after",
            "files_present_after",
            "wrapped_key_copies_found",
            "canaries_checked",
            "canary_hits",
        ):
            verif[k] += int(v.get(k, 0) or 0)
        for p in rec.get("partitions", []):
            items.append(
                {
                    "type": "lake partition",
                    "record_id": rec["record_id"],
                    "dataset": p["dataset"],
                    "tenant": p["tenant"],
                    "ingest_date": p["ingest_date"],
                    "purge_date": p["purge_date"],
                    "key_id": p["key_id"],
                    "files": len(p["files"]),
                    "rows": p["rows"],
                    "bytes": p["bytes"],
                }
            )
        for o in rec.get("outputs", []):
            items.append({"type": f"derived {o['kind']}", "record_id": rec["record_id"], **o})
        for s in rec.get("segments", []):
            items.append({"type": "audit segment", "record_id": rec["record_id"], **s})
    return items, verif


def issue_certificate(
    lake: Lake,
    *,
    kind: str,
    reference: str,
    actor: str,
    records: list[dict[str, Any]],
    event_ids: list[str],
    kept: list[dict[str, Any]] | None = None,
    validation_required: bool = False,
    notes: str = "",
) -> DestructionCertificate:
    """Sign and store a certificate covering `records` (destruction records of one operation)."""
    cfg = home_config(lake)
    items, verif = _summary(records)
    datasets = sorted({i["dataset"] for i in items if "dataset" in i})
    pii = any(lake.registry[d].pii for d in datasets if d in lake.registry)
    key = signing_key(lake)
    cert_id = new_id("cert")
    stored = Destructions(lake.catalog)
    hashes = {}
    for rec in records:
        found = stored.get(rec["record_id"])
        if found is None:
            raise ComplianceError(f"destruction record {rec['record_id']} is not in the catalog")
        hashes[rec["record_id"]] = hashlib.sha256(found[1].encode()).hexdigest()
    body: dict[str, Any] = {
        "format": FORMAT,
        "certificate_id": cert_id,
        "kind": kind,
        "title": KINDS.get(kind, kind),
        "reference": reference,
        "performed_by": {
            "name": actor,
            "title": cfg.get("title", "compliance officer" if ":" not in actor else "system job"),
            "organization": cfg.get("organization", ""),
            "location": cfg.get("location", socket.gethostname()),
            "contact": cfg.get("contact", ""),
        },
        "media": {
            "type": "encrypted Parquet files (PME AES-256-GCM) on local storage; partition keys "
            "wrapped in the SQLite catalog",
            "source": str(lake.settings.home),
            "description": f"{len(items)} item(s) of datasets {', '.join(datasets) or '-'}",
            "data_classification": "Confidential: Amazon buyer PII (personal data)"
            if pii
            else "Confidential: Amazon seller data",
            "backed_up": cfg.get("backups", "unknown"),
            "backup_location": cfg.get("backup_location", ""),
        },
        "sanitization": {
            "method_type": "Purge",
            "method": METHOD,
            "details": "partition key destroyed (overwritten in the catalog with secure_delete, "
            "WAL truncated), then every file deleted and its folder fsynced",
            "tool": tool_version(),
            "verification_method": "read attempt with the catalog's keys must fail; files absent; "
            "wrapped key bytes searched in catalog files; canary PII values searched in the lake",
            "verification_result": "pass" if verif["all_ok"] else "FAIL",
            "verification": verif,
            "post_sanitization_classification": "unclassified (no recoverable data)",
        },
        "items": items,
        "kept_under_legal_hold": kept or [],
        "destruction_records": hashes,
        "audit_event_ids": sorted(set(event_ids)),
        "date": iso(lake.clock()),
        "notes": notes,
        "validation_required": validation_required,
        "signing_key_id": key_id(key.public_key()),
    }
    signature = base64.b64encode(key.sign(canonical(body))).decode()
    Certificates(lake.catalog).add(  # with the row's MAC, in the same transaction
        cert_id,
        kind,
        reference,
        body["date"],
        json.dumps(body, sort_keys=True),
        signature,
        lake.row_mac_key(),
    )
    EventLog(lake, actor).emit(
        "compliance.certificate_issued", resource=f"certificate:{cert_id}", reason=kind
    )
    return DestructionCertificate(cert_id, body, signature)


def existing_certificate(
    lake: Lake, kind: str, reference: str, records: list[dict[str, Any]]
) -> str | None:
    """The id of a certificate of this operation that already covers exactly `records` (a run
    killed after signing but before it was marked finished is not certified twice)."""
    wanted = {r["record_id"] for r in records}
    for cert_id, body in Certificates(lake.catalog).bodies_for(kind, reference):
        if set(json.loads(body).get("destruction_records", {})) == wanted:
            return str(cert_id)
    return None


def _from_row(row: Any) -> DestructionCertificate:
    validation = json.loads(row["validation_json"]) if row["validation_json"] else None
    return DestructionCertificate(
        row["id"], json.loads(row["body_json"]), row["signature"], validation
    )


def list_certificates(lake: Lake) -> list[DestructionCertificate]:
    """Every certificate, oldest first."""
    return [_from_row(r) for r in Certificates(lake.catalog).rows()]


def get_certificate(lake: Lake, cert_id: str) -> DestructionCertificate:
    """One certificate by id."""
    row = Certificates(lake.catalog).row(cert_id)
    if row is None:
        raise ComplianceError(f"no certificate {cert_id!r}; see `amzigo certificate list`")
    return _from_row(row)


def _audit_event_ids(lake: Lake) -> tuple[set[str], str] | None:
    """Ids of the retained audit events and the time of the oldest one ("" if none)."""
    log = getattr(lake.audit, "log", None)
    if log is None or not hasattr(log, "search"):
        return None
    events = log.search()
    return {e.event_id for e in events}, min((e.time for e in events), default="")


def verify_certificate(lake: Lake, cert_id: str) -> dict[str, Any]:
    """Check signature, covered destruction records and audit events; a report dict."""
    cert = get_certificate(lake, cert_id)
    problems: list[str] = []
    public = signing_key(lake).public_key()
    if cert.body.get("signing_key_id") != key_id(public):
        problems.append("signed by another key than this home's certificate-signing key")
    published = _published_key_problem(lake, public)
    if published is not None:
        problems.append(published)
    row_mac = Certificates(lake.catalog).check(lake.row_mac_key(), [cert_id])
    problems += [
        f"{p.check}: the certificate row was edited outside amzigo-lab ({p.detail}); run "
        "`amzigo lake verify` and restore the catalog from backup"
        for p in row_mac
    ]
    try:
        public.verify(base64.b64decode(cert.signature), canonical(cert.body))
        signature_ok = True
    except (InvalidSignature, ValueError):
        signature_ok = False
        problems.append("signature does not match the certificate body (edited?)")
    stored = Destructions(lake.catalog)
    for record_id, digest in cert.body.get("destruction_records", {}).items():
        found = stored.get(record_id)
        if found is None:
            problems.append(f"destruction record {record_id} is missing from the catalog")
        elif hashlib.sha256(found[1].encode()).hexdigest() != digest:
            problems.append(f"destruction record {record_id} was changed")
    retained = _audit_event_ids(lake)
    wanted = cert.body.get("audit_event_ids", [])
    if retained is None:
        audit = "not checked: no audit log is wired to this lake"
    else:
        audit_ids, oldest = retained
        missing = [e for e in wanted if e not in audit_ids]
        audit = f"{len(wanted) - len(missing)}/{len(wanted)} events found in the audit log"
        # ISO-8601 UTC strings compare in time order. Events of a certificate older than every
        # retained record were removed by the audit log's own 12-month retention, not tampering.
        if missing and oldest and cert.body.get("date", "") < oldest:
            audit += f"; {len(missing)} older than the retained log (audit retention)"
        elif missing:
            problems.append(f"{len(missing)} audit event(s) not found in the audit log")
    # the certificates together must cover every destroyed partition: one finished outside its
    # compliance run (an old `doctor --fix`, a raw drop) is named here
    from amzigo_lab.compliance.coverage import uncovered_partitions

    uncovered = uncovered_partitions(lake)
    problems += [u.message() for u in uncovered[:20]]
    if len(uncovered) > 20:
        problems.append(f"... and {len(uncovered) - 20} more destroyed partition(s) uncovered")
    if cert.validation is not None:
        statement = _validation_statement(cert.body, cert.validation)
        try:
            public.verify(base64.b64decode(cert.validation["signature"]), statement)
        except (InvalidSignature, ValueError, KeyError):
            problems.append("validation signature does not match")
    pending = cert.body.get("validation_required") is True and cert.validation is None
    status = "invalid" if problems else "not yet valid" if pending else "valid"
    if pending:  # signed and intact, but not valid until a second person validates it
        problems.append(
            "not yet valid: the required second-person validation is pending "
            f"(`amzigo certificate validate {cert_id}` by another compliance user)"
        )
    return {
        "certificate_id": cert_id,
        "ok": not problems,
        "status": status,
        "signature_ok": signature_ok,
        "row_mac_ok": not row_mac,
        "public_key_ok": published is None,
        "destruction_records": len(cert.body.get("destruction_records", {})),
        "audit": audit,
        "validated_by": (cert.validation or {}).get("validated_by"),
        "uncovered_partitions": [u.partition_id for u in uncovered],
        "problems": problems,
    }


def _validation_statement(body: dict[str, Any], validation: dict[str, Any]) -> bytes:
    digest = hashlib.sha256(canonical(body)).hexdigest()
    return canonical(
        {
            "certificate_sha256": digest,
            "validated_by": validation["validated_by"],
            "validated_at": validation["validated_at"],
        }
    )


def validate_certificate(lake: Lake, cert_id: str, actor: str) -> DestructionCertificate:
    """Record validation by a second person (compliance role, not the performer)."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    cert = get_certificate(lake, cert_id)
    if actor == cert.body["performed_by"]["name"]:
        raise ComplianceError("validation must be done by a second person, not the performer")
    if not verify_certificate(lake, cert_id)["signature_ok"]:
        raise ComplianceError("the certificate's signature does not verify; not validating it")
    validation: dict[str, Any] = {
        "required": cert.body["validation_required"],
        "validated_by": actor,
        "validated_at": iso(lake.clock()),
    }
    sig = signing_key(lake).sign(_validation_statement(cert.body, validation))
    validation["signature"] = base64.b64encode(sig).decode()
    # a row edited outside amzigo-lab is never re-sealed (TamperedRow)
    Certificates(lake.catalog).set_validation(
        cert_id, json.dumps(validation, sort_keys=True), lake.row_mac_key()
    )
    EventLog(lake, actor).emit(
        "compliance.certificate_validated", resource=f"certificate:{cert_id}"
    )
    return get_certificate(lake, cert_id)


def export_certificate(lake: Lake, cert_id: str, out_dir: Path) -> list[Path]:
    """Write `<id>.json`, `<id>.html` and the public key to `out_dir`."""
    cert = get_certificate(lake, cert_id)
    tampered = Certificates(lake.catalog).check(lake.row_mac_key(), [cert_id])
    if tampered:
        raise TamperedRow(tampered, "export")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{cert_id}.json", out_dir / f"{cert_id}.html"]
    paths[0].write_text(cert.to_json(), encoding="utf-8")
    paths[1].write_text(cert.to_html(), encoding="utf-8")
    pub = out_dir / "certificate-signing.pub.pem"
    public_pem(signing_key(lake).public_key(), pub)
    return [*paths, pub]


def _rows(d: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in d.items()
    )


def render_html(cert: DestructionCertificate) -> str:
    """The certificate as a self-contained HTML page."""
    b = cert.body
    d = cert.to_dict()
    items = b["items"]
    cols = sorted({k for i in items for k in i})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(i.get(c, '')))}</td>" for c in cols) + "</tr>"
        for i in items
    )
    general = {
        "certificate": b["certificate_id"],
        "kind": b["title"],
        "reference": b["reference"],
        "date": b["date"],
        "notes": b["notes"] or "-",
    }
    sanit = {k: v for k, v in b["sanitization"].items() if k != "verification"}
    kept = b["kept_under_legal_hold"]
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;font-size:.9em}"
        "th{background:#f3f3f3}"
    )
    kept_rows = "".join(f"<tr><td>{html.escape(json.dumps(k))}</td></tr>" for k in kept)
    validation = {k: v for k, v in d["validation"].items() if k != "signature"}
    sections = [
        ("General", f"<table>{_rows(general)}</table>"),
        ("Person performing sanitization", f"<table>{_rows(b['performed_by'])}</table>"),
        ("Media and data", f"<table>{_rows(b['media'])}</table>"),
        ("Sanitization", f"<table>{_rows(sanit)}</table>"),
        ("Verification", f"<table>{_rows(b['sanitization']['verification'])}</table>"),
        (f"Items ({len(items)})", f"<table><tr>{head}</tr>{body_rows}</table>"),
        (f"Kept under legal hold ({len(kept)})", f"<table>{kept_rows}</table>"),
        ("Audit records covered", f"<p>{html.escape(', '.join(b['audit_event_ids']) or '-')}</p>"),
        (
            "Destruction records",
            f"<p>{html.escape(', '.join(b['destruction_records']) or '-')}</p>",
        ),
        ("Signature", f"<table>{_rows(d['signature'])}</table>"),
        ("Validation", f"<table>{_rows(validation)}</table>"),
    ]
    body = "".join(f"<h2>{html.escape(t)}</h2>{content}" for t, content in sections)
    title = html.escape(b["certificate_id"])
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Destruction certificate {title}</title><style>{style}</style></head><body>"
        f"<h1>Certificate of sanitization</h1><p>NIST SP 800-88 sample fields. Method type "
        f"Purge: {html.escape(METHOD)}.</p>{body}</body></html>\n"
    )
