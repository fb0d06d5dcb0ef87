"""Erasure and rectification: rewrite only the partitions the blind index points to.

The remaining rows are staged (encrypted under a one-off lake secret), the old partition is
dropped through `Lake.drop_partitions` (its key destroyed, the subject's values used as
canaries), the rows are written back as a new partition under a new key, and the stage is
destroyed. A crash at any step is resumed by `resume_requests` (called by every erasure and
rectification, or by `amzigo dsr resume`): an interrupted erasure is completed and certified.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.compliance.blind_index import (
    PII_DATASET,
    Subject,
    filter_orders,
    find_subject,
    forget_partitions,
    index_buyers,
    read_partition,
    subject_of,
)
from amzigo_lab.compliance.common import ComplianceError, EventLog, run_records
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.compliance.subject_requests import open_request, update_request
from amzigo_lab.errors import KeyProviderError
from amzigo_lab.lake.records import SubjectRequests

if TYPE_CHECKING:
    from amzigo_lab.compliance.certificates import DestructionCertificate
    from amzigo_lab.lake.store import Lake

RECTIFIABLE = (
    "buyer_name",
    "buyer_email",
    "ship_name",
    "ship_address_line1",
    "ship_city",
    "ship_state",
    "ship_postal_code",
    "ship_country",
    "ship_phone",
)


Transform = Callable[[pa.Table, set[str]], pa.Table]


def _stage_path(lake: Lake, req_id: str, pid: int) -> Path:
    return lake.settings.state_dir / "dsr-staging" / f"{req_id}-{pid}.bin"


def _stage(lake: Lake, req_id: str, pid: int, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    key = lake.put_secret(f"dsr-stage-{req_id}-{pid}", secrets.token_bytes(32))
    nonce = os.urandom(12)
    path = _stage_path(lake, req_id, pid)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(nonce + AESGCM(key).encrypt(nonce, sink.getvalue().to_pybytes(), None))
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, path)


def _unstage(lake: Lake, req_id: str, pid: int) -> pa.Table:
    raw = _stage_path(lake, req_id, pid).read_bytes()
    key = lake.secret(f"dsr-stage-{req_id}-{pid}", create=False)
    data = AESGCM(key).decrypt(raw[:12], raw[12:], None)
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _rewrite(
    lake: Lake,
    req_id: str,
    subject: Subject,
    transform: Transform,
    canaries: list[str],
    events: EventLog,
) -> list[int]:
    """Rewrite each partition holding the subject; the new partition ids."""
    new_ids: list[int] = []
    for pid in subject.partitions():
        p = lake.catalog.partition(pid)
        stage = _stage_path(lake, req_id, pid)
        if p.state == "live" and not stage.exists():
            table = read_partition(lake, p)
            _stage(lake, req_id, pid, transform(table, subject.orders(pid)))
            lake.fault_hook("dsr_staged")
        if not stage.exists():
            continue  # finished by an earlier attempt
        remaining = _unstage(lake, req_id, pid)
        if p.state != "dropped":  # else an earlier attempt dropped it (and recorded that)
            lake.drop_partitions([p], canaries=canaries, reason=f"dsr [{req_id}]")
        forget_partitions(lake, [pid])
        lake.fault_hook("dsr_dropped")
        if remaining.num_rows:
            res = lake.write(PII_DATASET, p.tenant, p.ingest_date, remaining, f"dsr-{req_id}-{pid}")
            new_ids.extend(res.partition_ids)
        stage.unlink()
        lake.delete_secret(f"dsr-stage-{req_id}-{pid}")
        events.emit(
            "dsr.partition_rewritten",
            resource=f"partition:{pid}",
            tenant=p.tenant,
            row_count=remaining.num_rows,
            reason=f"partition {pid} rewritten without the subject's old values",
        )
    if new_ids:
        index_buyers(lake, [lake.catalog.partition(i) for i in sorted(set(new_ids))])
    return new_ids


def _subject_values(lake: Lake, subject: Subject, columns: tuple[str, ...]) -> list[str]:
    values: set[str] = set()
    for pid in subject.partitions():
        p = lake.catalog.partition(pid)
        if p.state != "live":
            continue
        rows = filter_orders(read_partition(lake, p), subject.orders(pid)).to_pylist()
        values.update(str(r[c]) for r in rows for c in columns if r.get(c))
    return sorted(v for v in values if len(v) >= 6)


def _erase_orders(table: pa.Table, orders: set[str]) -> pa.Table:
    return table.filter(
        pc.invert(pc.is_in(table.column("amazon_order_id"), value_set=pa.array(sorted(orders))))
    )


def erase_subject(
    lake: Lake, *, actor: str, tenant: str | None = None, **ident: str | None
) -> DestructionCertificate | None:
    """Erase the subject: rewrite their PII partitions without them, delete their exports."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    resume_requests(lake)
    subject = find_subject(lake, tenant=tenant, **ident)
    req_id = open_request(lake, "erasure", subject, actor)
    # the token (a keyed hash, not PII) lets a crashed erasure be finished and certified later;
    # the order ids (not PII) keep review requests away from the erased buyer's orders
    update_request(
        lake,
        req_id,
        partitions=subject.partitions(),
        tenant=tenant,
        token=subject.token,
        orders=sorted([h[0], h[2]] for h in subject.hits),
    )
    return _complete_erasure(lake, req_id, subject, actor)


def _complete_erasure(
    lake: Lake, req_id: str, subject: Subject, actor: str
) -> DestructionCertificate | None:
    """Rewrite the subject's partitions (resuming staged ones), delete their outputs, certify
    every destruction of the request (this attempt's and any earlier one's), complete it."""
    from amzigo_lab.compliance.certificates import (
        existing_certificate,
        get_certificate,
        issue_certificate,
    )
    from amzigo_lab.compliance.derived import delete_outputs, outputs

    events = EventLog(lake, actor)
    canaries = _subject_values(
        lake,
        subject,
        ("buyer_email", "buyer_name", "ship_name", "ship_address_line1", "ship_phone"),
    )
    _rewrite(lake, req_id, subject, _erase_orders, canaries, events)
    delete_outputs(lake, outputs(lake, subject_id=subject.subject_id), f"dsr [{req_id}]")
    records = run_records(lake, req_id)
    events.emit(
        "dsr.erased",
        resource=f"dsr:{req_id}",
        reason=f"subject={subject.subject_id}",
        row_count=len(subject.hits),
    )
    cert = None
    done = existing_certificate(lake, "dsr_erasure", req_id, records) if records else None
    if done is not None:
        cert = get_certificate(lake, done)
    elif records:
        cert = issue_certificate(
            lake,
            kind="dsr_erasure",
            reference=req_id,
            actor=actor,
            records=records,
            event_ids=events.ids,
            notes=f"subject {subject.subject_id}",
        )
    update_request(lake, req_id, "completed", certificate=cert.id if cert else None)
    return cert


def rectify_subject(
    lake: Lake,
    *,
    actor: str,
    changes: dict[str, str],
    tenant: str | None = None,
    **ident: str | None,
) -> int:
    """Correct the subject's PII fields (rewrite + drop of the old partitions); rows changed."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    bad = [c for c in changes if c not in RECTIFIABLE]
    if bad or not changes:
        raise ComplianceError(f"rectifiable fields are {', '.join(RECTIFIABLE)}; got {bad}")
    resume_requests(lake)
    subject = find_subject(lake, tenant=tenant, **ident)
    req_id = open_request(lake, "rectification", subject, actor, fields=sorted(changes))
    update_request(
        lake, req_id, partitions=subject.partitions(), tenant=tenant, token=subject.token
    )
    # the new values are PII: kept only as a lake secret (wrapped by the master key) until the
    # request completes, so that a crashed rectification can be finished
    lake.put_secret(_changes_secret(req_id), json.dumps(changes, sort_keys=True).encode())
    return _complete_rectification(lake, req_id, subject, actor, changes)


def _changes_secret(req_id: str) -> str:
    return f"dsr-changes-{req_id}"


def _rectifier(changes: dict[str, str]) -> Transform:
    def fix(table: pa.Table, orders: set[str]) -> pa.Table:
        hit = pc.is_in(table.column("amazon_order_id"), value_set=pa.array(sorted(orders)))
        for col, value in changes.items():
            i = table.schema.get_field_index(col)
            new = pc.if_else(hit, pa.scalar(value, pa.string()), table.column(col))
            table = table.set_column(i, col, new)
        return table

    return fix


def _complete_rectification(
    lake: Lake, req_id: str, subject: Subject, actor: str, changes: dict[str, str]
) -> int:
    """Rewrite the subject's partitions with `changes` (resuming staged ones), complete the
    request and destroy the stored new values; the rows changed."""
    events = EventLog(lake, actor)
    old = [v for v in _subject_values(lake, subject, tuple(changes)) if v not in changes.values()]
    _rewrite(lake, req_id, subject, _rectifier(changes), old, events)
    events.emit(
        "dsr.rectified",
        resource=f"dsr:{req_id}",
        row_count=len(subject.hits),
        reason=f"subject={subject.subject_id} fields={','.join(sorted(changes))}",
    )
    update_request(lake, req_id, "completed")
    lake.delete_secret(_changes_secret(req_id))
    return len(subject.hits)


def resume_requests(lake: Lake) -> list[str]:
    """Finish requests interrupted by a crash; the request ids resumed.

    Staged partitions are dropped and written back first (whatever the request). Erasures and
    rectifications still in progress are then completed from their stored blind-index token:
    the subject's partitions that are still live are rewritten too (a rectification with its
    new values, kept as a lake secret until it completes); an erasure also deletes the
    subject's outputs and certifies every destruction of the request.
    """
    stage_dir = lake.settings.state_dir / "dsr-staging"
    requests = SubjectRequests(lake.catalog)
    done = []
    for path in sorted(stage_dir.glob("*.bin")) if stage_dir.exists() else []:
        req_id, _, pid = path.stem.rpartition("-")
        opened_by = requests.actor(req_id)
        if opened_by is None:
            continue
        subject = Subject("resume", [("", int(pid), "")])
        _rewrite(lake, req_id, subject, lambda t, _o: t, [], EventLog(lake, opened_by))
        done.append(req_id)
    for req_id, kind, actor, detail in requests.interrupted_changes():
        if not detail.get("token"):
            continue  # opened by an older version: repeat the command
        subject = subject_of(lake, detail["token"], detail.get("tenant"))
        if kind == "erasure":
            _complete_erasure(lake, req_id, subject, actor)
        else:
            try:
                stored = lake.secret(_changes_secret(req_id), create=False)
            except KeyProviderError:
                continue  # its new values are gone: repeat the command
            _complete_rectification(lake, req_id, subject, actor, json.loads(stored))
        done.append(req_id)
    return sorted(set(done))
