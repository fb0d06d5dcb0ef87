"""Data-subject requests: access (export), rectification, erasure, objection.

A buyer is found through a keyed blind index, never by scanning plaintext: each `order_buyers`
row contributes HMAC-SHA256 tokens (key: the lake secret `dsr-blind-index`) of its normalised
e-mail and of each normalised name + postcode, stored with the row's tenant, partition and order
id. `index_buyers` maintains it (ingestion calls it after writes; purges and erasures forget the
partitions they drop). A subject is named in audit events and requests only by `subject_id`, the
first 12 hex digits of a token.

Erasure and rectification rewrite only the partitions the index points to: the remaining rows
are staged (encrypted under a one-off lake secret), the old partition is dropped through
`Lake.drop_partitions` (its key destroyed, the subject's values used as canaries), the rows are
written back as a new partition under a new key, and the stage is destroyed. A crash at any
step is resumed by `resume_requests` (called by every erasure and rectification, or by
`amzigo dsr resume`): an interrupted erasure is completed and certified.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.compliance.common import (
    ComplianceError,
    EventLog,
    exports_root,
    new_id,
    run_records,
    today,
)
from amzigo_lab.compliance.roles import COMPLIANCE, require_role
from amzigo_lab.errors import KeyProviderError
from amzigo_lab.lake.catalog import iso
from amzigo_lab.lake.records import SubjectIndex, SubjectRequests
from amzigo_lab.retention_rules import add_months

if TYPE_CHECKING:
    from amzigo_lab.compliance.certificates import DestructionCertificate
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake

PII_DATASET = "order_buyers"
INDEX_SECRET = "dsr-blind-index"  # noqa: S105 - a secret name, not a secret
EXPORT_FORMAT = "amzigo-dsr-export/1"
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


# -- the blind index -----------------------------------------------------------------------
def normalise_email(email: str) -> str:
    """Trimmed, NFKC, lower-case e-mail."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def normalise_name(name: str) -> str:
    """NFKC, case-folded, single-spaced name."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def normalise_postcode(postcode: str) -> str:
    """Upper-case postcode without spaces or dashes."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", postcode).upper() if ch.isalnum())


def _token(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def email_token(lake: Lake, email: str) -> str:
    """The blind-index token of an e-mail address."""
    return _token(lake.secret(INDEX_SECRET), "email", normalise_email(email))


def name_token(lake: Lake, name: str, postcode: str) -> str:
    """The blind-index token of a name + postcode."""
    value = f"{normalise_name(name)}|{normalise_postcode(postcode)}"
    return _token(lake.secret(INDEX_SECRET), "name_postcode", value)


def _row_tokens(key: bytes, row: dict[str, Any]) -> set[str]:
    out = set()
    if row.get("buyer_email"):
        out.add(_token(key, "email", normalise_email(row["buyer_email"])))
    postcode = normalise_postcode(row.get("ship_postal_code") or "")
    for col in ("buyer_name", "ship_name"):
        if row.get(col) and postcode:
            out.add(_token(key, "name_postcode", f"{normalise_name(row[col])}|{postcode}"))
    return out


def read_partition(lake: Lake, p: Partition) -> pa.Table:
    """Every row of one live partition (decrypted with its key)."""
    from amzigo_lab.lake.pme import read_file

    spec = lake.spec(p.dataset)
    lake.require_intact([p.id])
    keys = lake.partition_keys([p.key_id])
    tables = [
        read_file(str(lake.path(f.rel_path)), keys).read() for f in lake.catalog.files([p.id])
    ]
    return pa.concat_tables(tables) if tables else spec.schema.empty_table()


def index_buyers(lake: Lake, partitions: list[Partition] | None = None) -> int:
    """Index the `order_buyers` partitions not yet indexed (or grown since); rows indexed."""
    key = lake.secret(INDEX_SECRET)
    index = SubjectIndex(lake.catalog)
    done = index.indexed()
    parts = partitions if partitions is not None else lake.catalog.partitions(PII_DATASET)
    objected = index.objected_tokens()
    n = 0
    for p in parts:
        if p.dataset != PII_DATASET or p.state != "live" or done.get(p.id) == p.row_count:
            continue
        rows = read_partition(lake, p).to_pylist()
        entries = {
            (t, p.tenant, p.id, r["amazon_order_id"]) for r in rows for t in _row_tokens(key, r)
        }
        # new orders of a subject who objected are excluded too
        index.replace_partition(p.id, p.row_count, entries, objected)
        n += len(rows)
    return n


def forget_partitions(lake: Lake, partition_ids: list[int]) -> None:
    """Remove the index entries of dropped partitions."""
    SubjectIndex(lake.catalog).forget_partitions(partition_ids)


@dataclass(frozen=True)
class Subject:
    """A data subject as the index knows them: tokens and (tenant, partition, order) hits."""

    token: str
    hits: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def subject_id(self) -> str:
        """The pseudonymous id used in requests and audit events."""
        return self.token[:12]

    def partitions(self) -> list[int]:
        """Partition ids holding the subject."""
        return sorted({h[1] for h in self.hits})

    def orders(self, partition_id: int | None = None) -> set[str]:
        """Order ids of the subject (optionally within one partition)."""
        return {h[2] for h in self.hits if partition_id is None or h[1] == partition_id}


def find_subject(
    lake: Lake,
    *,
    email: str | None = None,
    name: str | None = None,
    postcode: str | None = None,
    tenant: str | None = None,
) -> Subject:
    """Look a subject up in the blind index (e-mail, or name + postcode)."""
    if email:
        token = email_token(lake, email)
    elif name and postcode:
        token = name_token(lake, name, postcode)
    else:
        raise ComplianceError("identify the subject by e-mail, or by name and postcode")
    index_buyers(lake)
    return _subject_of(lake, token, tenant)


def _subject_of(lake: Lake, token: str, tenant: str | None) -> Subject:
    """The subject of a blind-index token as the index knows them now."""
    return Subject(token, SubjectIndex(lake.catalog).hits(token, tenant))


# -- requests ------------------------------------------------------------------------------
def open_request(lake: Lake, kind: str, subject: Subject, actor: str, **detail: Any) -> str:
    """Record a received request with its one-month deadline; its id."""
    req_id = new_id(f"dsr-{kind}")
    received = today(lake)
    SubjectRequests(lake.catalog).open(
        req_id,
        kind,
        subject.subject_id,
        iso(lake.clock()),
        add_months(received, 1).isoformat(),
        actor,
        detail,
    )
    EventLog(lake, actor).emit(
        f"dsr.{kind}_received", resource=f"dsr:{req_id}", reason=f"subject={subject.subject_id}"
    )
    return req_id


def _update(lake: Lake, req_id: str, status: str | None = None, **detail: Any) -> None:
    requests = SubjectRequests(lake.catalog)
    stored = requests.detail(req_id)
    if stored is None:
        raise ComplianceError(f"no data-subject request {req_id!r}")
    completed = iso(lake.clock()) if status == "completed" else None
    requests.update(req_id, {**stored, **detail}, status, completed)


def list_requests(lake: Lake) -> list[dict[str, Any]]:
    """Every request: kind, subject id, received date, one-month deadline, status."""
    rows = SubjectRequests(lake.catalog).rows()
    on = today(lake).isoformat()
    return [
        {
            "id": r[0],
            "kind": r[1],
            "subject_id": r[2],
            "received": r[3][:10],
            "deadline": r[4],
            "status": r[5],
            "actor": r[6],
            "completed_at": r[7],
            "overdue": r[5] != "completed" and on > r[4],
        }
        for r in rows
    ]


# -- access ------------------------------------------------------------------------------------
def _filter_orders(table: pa.Table, orders: set[str]) -> pa.Table:
    mask = pc.is_in(table.column("amazon_order_id"), value_set=pa.array(sorted(orders)))
    return table.filter(mask)


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
        pii = pa.concat_tables([_filter_orders(read_partition(lake, p), orders) for p in parts])
        data["records"][PII_DATASET] = pii.to_pylist()
        for ds_name in ("orders", "order_items", "solicitation_eligibility"):
            table = lake.scan(ds_name, [t]).to_arrow()
            data["records"][ds_name] = _filter_orders(table, orders).to_pylist()
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
    _update(lake, req_id, "completed", files=len(out))
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


# -- rewrites (erasure, rectification) ----------------------------------------------------
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
        rows = _filter_orders(read_partition(lake, p), subject.orders(pid)).to_pylist()
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
    _update(
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
    _update(lake, req_id, "completed", certificate=cert.id if cert else None)
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
    _update(lake, req_id, partitions=subject.partitions(), tenant=tenant, token=subject.token)
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
    _update(lake, req_id, "completed")
    lake.delete_secret(_changes_secret(req_id))
    return len(subject.hits)


def object_subject(
    lake: Lake, *, actor: str, tenant: str | None = None, **ident: str | None
) -> int:
    """Record an objection: the subject's orders (now and later) leave review requests."""
    require_role(actor, COMPLIANCE, lake.settings.home)
    subject = find_subject(lake, tenant=tenant, **ident)
    req_id = open_request(lake, "objection", subject, actor)
    SubjectIndex(lake.catalog).record_objection(
        subject.token, req_id, iso(lake.clock()), [(h[0], h[2]) for h in subject.hits]
    )
    EventLog(lake, actor).emit(
        "dsr.objection_recorded",
        resource=f"dsr:{req_id}",
        reason=f"subject={subject.subject_id}",
        row_count=len(subject.orders()),
    )
    _update(lake, req_id, "completed")
    return len(subject.orders())


def objected_order_ids(lake: Lake, tenant: str) -> set[str]:
    """Order ids whose buyer objected: review requests and further processing skip them."""
    return SubjectIndex(lake.catalog).objected_orders(tenant)


def erased_order_ids(lake: Lake, tenant: str) -> set[str]:
    """Order ids of buyers who had their data erased: review requests skip them.

    The orders the erasure found (recorded with the request), and orders indexed later under
    the erased subject's blind-index token (the same buyer ordering again)."""
    out: set[str] = set()
    tokens: list[str] = []
    for detail in SubjectRequests(lake.catalog).details_of_kind("erasure"):
        out.update(o for t, o in detail.get("orders", []) if t == tenant)
        if detail.get("token"):
            tokens.append(detail["token"])
    index = SubjectIndex(lake.catalog)
    for token in tokens:
        out.update(index.orders_of(token, tenant))
    return out


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
        subject = _subject_of(lake, detail["token"], detail.get("tenant"))
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
