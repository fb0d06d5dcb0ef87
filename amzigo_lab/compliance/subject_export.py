"""Right of access: everything held about a subject, per tenant, in AES-256-GCM files."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.compliance.blind_index import (
    PII_DATASET,
    filter_orders,
    find_subject,
    read_partition,
)
from amzigo_lab.compliance.common import EventLog, exports_root
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.compliance.subject_requests import open_request, update_request
from amzigo_lab.lake.catalog import iso

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

EXPORT_FORMAT = "amzigo-dsr-export/1"


def export_subject(
    lake: Lake, *, actor: str, tenant: str | None = None, **ident: str | None
) -> list[dict[str, Any]]:
    """Write everything held about the subject, per tenant, to AES-256-GCM files.

    Returns one entry per file with its path and the one-time key (base64url), which is shown to
    the operator once and never stored: hand it to the subject through another channel.
    """
    from amzigo_lab.compliance.derived import derived_purge_date, register_output

    require_role(actor, COMPLIANCE, lake.settings.home)
    subject = find_subject(lake, tenant=tenant, **ident)
    req_id = open_request(lake, "export", subject, actor)
    out = []
    for t in sorted({h[0] for h in subject.hits}):
        parts = [lake.catalog.partition(pid) for pid in subject.partitions()]
        parts = [p for p in parts if p.tenant == t]
        orders = {h[2] for h in subject.hits if h[0] == t}
        data: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "request_id": req_id,
            "subject_id": subject.subject_id,
            "tenant": t,
            "generated_at": iso(lake.clock()),
            "records": {},
        }
        pii = pa.concat_tables([filter_orders(read_partition(lake, p), orders) for p in parts])
        data["records"][PII_DATASET] = pii.to_pylist()
        for ds_name in ("orders", "order_items", "solicitation_eligibility"):
            table = lake.scan(ds_name, [t]).to_arrow()
            data["records"][ds_name] = filter_orders(table, orders).to_pylist()
        key = secrets.token_bytes(32)
        path = exports_root(lake) / f"{req_id}-{t}.amzdsr"
        write_encrypted(path, data, key, req_id)
        register_output(
            lake,
            path,
            kind="dsr_export",
            tenant=t,
            dataset=PII_DATASET,
            purge_date=derived_purge_date(parts),
            subject_id=subject.subject_id,
        )
        out.append(
            {
                "request_id": req_id,
                "tenant": t,
                "path": str(path),
                "rows": pii.num_rows,
                "key": base64.urlsafe_b64encode(key).decode(),
            }
        )
    update_request(lake, req_id, "completed", files=len(out))
    EventLog(lake, actor).emit(
        "dsr.exported",
        resource=f"dsr:{req_id}",
        reason=f"subject={subject.subject_id} files={len(out)}",
        row_count=sum(int(o["rows"]) for o in out),
    )
    return out


def write_encrypted(path: Path, data: dict[str, Any], key: bytes, req_id: str) -> None:
    """`header-json \\n nonce ciphertext` with AES-256-GCM, AAD = header (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = json.dumps({"format": EXPORT_FORMAT, "request_id": req_id}).encode()
    nonce = os.urandom(12)
    blob = AESGCM(key).encrypt(nonce, json.dumps(data, default=str).encode(), header)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(header + b"\n" + nonce + blob)


def read_export(path: Path, key_b64: str) -> dict[str, Any]:
    """Decrypt a DSR export with its one-time key."""
    raw = path.read_bytes()
    header, _, rest = raw.partition(b"\n")
    key = base64.urlsafe_b64decode(key_b64)
    return dict(json.loads(AESGCM(key).decrypt(rest[:12], rest[12:], header)))
