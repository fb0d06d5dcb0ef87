"""Verify an exported destruction certificate offline: a JSON file and a public key, no home.

`amzigo certificate export ID --out DIR` writes `<id>.json`, `<id>.html` and
`certificate-signing.pub.pem`; anyone holding those can check, without the home, its catalog or
its audit log:

- the format, and that the public key is the one that signed (`signing_key_id`);
- the Ed25519 signature over the certificate body (any edited field breaks it);
- the destruction records' consistency: every item names a record the certificate covers, each
  record has a SHA-256 digest, the verification summary counts those records, and the recorded
  verification result is "pass" and agrees with its details;
- the second-person validation: its signature, that the validator is not the performer, and
  that a required validation is present. A certificate whose required validation is still
  pending is "not yet valid", not OK.

What it cannot check offline (the catalog's destruction records themselves, the audit events)
is said in `notes`; `amzigo certificate verify ID` in the home checks those.

This module imports neither the lake, the home nor governance, so CLI clients can use it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "amzigo-destruction-certificate/1"
PUBLIC_KEY_NAME = "certificate-signing.pub.pem"
VALID, NOT_YET_VALID, INVALID = "valid", "not yet valid", "invalid"
#: Exit codes of `amzigo certificate verify FILE.json`.
EXIT_CODES = {VALID: 0, INVALID: 1, NOT_YET_VALID: 3}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def looks_like_file(argument: str) -> bool:
    """Tell whether a `certificate verify` argument is an exported file, not a certificate id."""
    return argument.endswith(".json") or "/" in argument


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes of a certificate body (as compliance/certificates.py signs them)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def public_key_id(public: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key (the body's `signing_key_id`)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def validation_statement(body: dict[str, Any], validation: dict[str, Any]) -> bytes:
    """The bytes a validation signature covers."""
    return canonical(
        {
            "certificate_sha256": hashlib.sha256(canonical(body)).hexdigest(),
            "validated_by": validation["validated_by"],
            "validated_at": validation["validated_at"],
        }
    )


def _load_public_key(path: Path) -> tuple[Ed25519PublicKey | None, str | None]:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        return None, f"cannot read public key {path}: {exc.strerror or exc}"
    except ValueError:
        return None, f"{path} is not a PEM public key"
    if not isinstance(key, Ed25519PublicKey):
        return None, f"{path} is not an Ed25519 public key"
    return key, None


def _records_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    records = body.get("destruction_records")
    if not isinstance(records, dict) or not records:
        return ["destruction_records: the certificate covers no destruction record"]
    for record_id, digest in sorted(records.items()):
        if not isinstance(digest, str) or not _HEX64.match(digest):
            problems.append(f"destruction_records: record {record_id} has no SHA-256 digest")
    items = body.get("items")
    if not isinstance(items, list):
        return [*problems, "items: missing or not a list"]
    for n, item in enumerate(items):
        rid = item.get("record_id") if isinstance(item, dict) else None
        if rid not in records:
            problems.append(
                f"items[{n}]: names destruction record {rid!r}, which the certificate does not "
                "cover (destruction_records)"
            )
    sanitization = body.get("sanitization")
    if not isinstance(sanitization, dict):
        return [*problems, "sanitization: missing"]
    verification = sanitization.get("verification")
    if not isinstance(verification, dict):
        return [*problems, "sanitization.verification: missing"]
    if verification.get("records") != len(records):
        problems.append(
            f"sanitization.verification.records is {verification.get('records')!r} but "
            f"{len(records)} destruction record(s) are covered"
        )
    result = sanitization.get("verification_result")
    if result != "pass":
        problems.append(
            f"sanitization.verification_result is {result!r}: the destruction was not verified"
        )
    elif verification.get("all_ok") is not True:
        problems.append("sanitization: verification_result says pass but verification.all_ok not")
    return problems


def verify_certificate_file(path: Path, public_key: Path | None = None) -> dict[str, Any]:
    """Check an exported certificate JSON offline; a report dict (see the module doc).

    `public_key` defaults to `certificate-signing.pub.pem` beside the file (where `export`
    puts it). The report's `status` is "valid", "not yet valid" or "invalid"."""
    problems: list[str] = []
    notes = [
        "offline: the home's destruction records and audit events were not consulted "
        "(`amzigo certificate verify ID` in the home checks them)"
    ]
    report: dict[str, Any] = {
        "file": str(path),
        "certificate_id": None,
        "status": INVALID,
        "ok": False,
        "signature_ok": False,
        "public_key": None,
        "validation": None,
        "destruction_records": 0,
        "problems": problems,
        "notes": notes,
    }
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"cannot read {path}: {exc.strerror or exc}")
        return report
    except ValueError as exc:
        problems.append(f"{path} is not JSON ({exc})")
        return report
    if not isinstance(doc, dict):
        problems.append(f"{path} is not a certificate (not a JSON object)")
        return report
    signature = doc.pop("signature", None)
    validation = doc.pop("validation", None)
    body: dict[str, Any] = doc
    report["certificate_id"] = body.get("certificate_id")
    if body.get("format") != FORMAT:
        problems.append(f"format is {body.get('format')!r}, expected {FORMAT!r}")
    records = body.get("destruction_records")
    report["destruction_records"] = len(records) if isinstance(records, dict) else 0

    key_path = public_key or path.with_name(PUBLIC_KEY_NAME)
    report["public_key"] = str(key_path)
    public, key_problem = _load_public_key(key_path)
    if key_problem is not None:
        hint = "" if public_key else " (pass --public-key PEM)"
        problems.append(key_problem + hint)
    elif public is not None and body.get("signing_key_id") != public_key_id(public):
        problems.append(
            f"signing_key_id is {body.get('signing_key_id')!r} but the public key's id is "
            f"{public_key_id(public)}: signed by another key, or the wrong public key"
        )
    if not isinstance(signature, dict):
        problems.append("signature: missing")
    else:
        if signature.get("algorithm") != "Ed25519":
            problems.append(f"signature.algorithm is {signature.get('algorithm')!r}, not Ed25519")
        if signature.get("key_id") != body.get("signing_key_id"):
            problems.append("signature.key_id does not match signing_key_id")
        if public is not None:
            try:
                public.verify(base64.b64decode(str(signature.get("value", ""))), canonical(body))
                report["signature_ok"] = True
            except (InvalidSignature, ValueError):
                problems.append(
                    "signature does not match the certificate body: a signed field was changed "
                    "after signing"
                )
    problems += _records_problems(body)

    required = body.get("validation_required") is True
    validated = isinstance(validation, dict) and bool(validation.get("validated_by"))
    if validated:
        assert isinstance(validation, dict)
        performer = (body.get("performed_by") or {}).get("name")
        if validation.get("validated_by") == performer:
            problems.append("validation: validated by the performer, not a second person")
        if validation.get("required") is not None and validation.get("required") != required:
            problems.append("validation.required disagrees with validation_required")
        if public is not None:
            try:
                public.verify(
                    base64.b64decode(str(validation.get("signature", ""))),
                    validation_statement(body, validation),
                )
            except (InvalidSignature, ValueError, KeyError):
                problems.append(
                    "validation signature does not match (validated_by or validated_at edited, "
                    "or the validation belongs to another certificate)"
                )
        report["validation"] = (
            f"validated by {validation.get('validated_by')} at {validation.get('validated_at')}"
        )
    elif required:
        report["validation"] = "pending: a second person must validate it"
    else:
        report["validation"] = "not required"

    if problems:
        report["status"] = INVALID
    elif required and not validated:
        report["status"] = NOT_YET_VALID
        notes.append(
            "not yet valid: the required second-person validation is pending "
            "(`amzigo certificate validate ID` by another compliance user, then export again)"
        )
    else:
        report["status"] = VALID
    report["ok"] = report["status"] == VALID
    return report
