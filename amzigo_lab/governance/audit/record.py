"""Canonical record bytes and the hash chain that links them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from amzigo_lab.governance.audit.event import AuditEvent

GENESIS = "0" * 64
"""The `prev` of the very first record."""


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, ASCII only."""
    return _ENCODER.encode(obj).encode()


def encode_record(seq: int, prev: str, event: AuditEvent) -> bytes:
    """The canonical bytes of one chained record (same as `canonical` of its dict, faster)."""
    return b"".join(
        (
            b'{"event":',
            canonical(event.to_dict()),
            b',"prev":"',
            prev.encode(),
            b'","seq":',
            str(seq).encode(),
            b"}",
        )
    )


def record_hash(record: bytes) -> str:
    """Hex SHA-256 of a record's canonical bytes (the next record's `prev`)."""
    return hashlib.sha256(record).hexdigest()


def decode_record(record: bytes) -> tuple[int, str, AuditEvent]:
    """Parse canonical record bytes into (seq, prev, event); raises ValueError if malformed."""
    data = json.loads(record)
    if not isinstance(data, dict) or set(data) != {"event", "prev", "seq"}:
        raise ValueError("record does not have exactly the fields event, prev, seq")
    seq, prev = data["seq"], data["prev"]
    if not isinstance(seq, int) or not isinstance(prev, str) or len(prev) != 64:
        raise ValueError("record seq or prev malformed")
    if canonical(data) != record:
        raise ValueError("record bytes are not canonical")
    return seq, prev, AuditEvent.from_dict(data["event"])
