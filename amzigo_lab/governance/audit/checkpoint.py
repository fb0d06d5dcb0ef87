"""Signed checkpoints kept apart from the log: origin, size, head, segment hashes, anchor."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amzigo_lab.governance.audit.errors import AuditIntegrityError
from amzigo_lab.governance.audit.keys import key_id
from amzigo_lab.governance.audit.record import GENESIS, canonical
from amzigo_lab.governance.audit.segment import SegmentInfo, fsync_dir

FORMAT = "amzigo-audit-checkpoint/1"
_NAME = re.compile(r"^checkpoint-(\d{12})-(\d{6})\.json$")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the log's state; `anchor_*` describe the dropped prefix."""

    origin: str
    index: int
    tree_size: int
    head: str
    anchor_seq: int
    anchor_prev: str
    segments: tuple[SegmentInfo, ...]
    dropped: tuple[SegmentInfo, ...]
    prev_checkpoint: str
    time: str
    key_id: str
    signature: str = ""

    @property
    def last_seq(self) -> int:
        """The seq of the last record covered (-1 for an empty log)."""
        return self.tree_size - 1

    @property
    def file_name(self) -> str:
        """The file name of this checkpoint in the checkpoint directory."""
        return f"checkpoint-{self.tree_size:012d}-{self.index:06d}.json"

    def body(self) -> dict[str, Any]:
        """Everything that is signed (all fields but the signature)."""
        return {
            "anchor": {"first_seq": self.anchor_seq, "prev": self.anchor_prev},
            "dropped": [s.to_json() for s in self.dropped],
            "format": FORMAT,
            "head": self.head,
            "index": self.index,
            "key_id": self.key_id,
            "last_seq": self.last_seq,
            "origin": self.origin,
            "prev_checkpoint": self.prev_checkpoint,
            "segments": [s.to_json() for s in self.segments],
            "time": self.time,
            "tree_size": self.tree_size,
        }

    def message(self) -> bytes:
        """The exact bytes the Ed25519 signature covers."""
        return FORMAT.encode() + b"\n" + canonical(self.body())

    def to_bytes(self) -> bytes:
        """The file contents: the body plus the signature."""
        return canonical({**self.body(), "signature": self.signature})

    def digest(self) -> str:
        """SHA-256 of the file contents; the next checkpoint's `prev_checkpoint`."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def same_state(self, other: Checkpoint) -> bool:
        """True if both describe the same log state (ignoring index, time and signature)."""
        return (
            self.tree_size == other.tree_size
            and self.head == other.head
            and self.anchor_seq == other.anchor_seq
            and self.anchor_prev == other.anchor_prev
            and self.segments == other.segments
            and self.dropped == other.dropped
        )

    def sign(self, key: Ed25519PrivateKey) -> Checkpoint:
        """A copy of this checkpoint signed with `key`."""
        unsigned = replace(self, key_id=key_id(key.public_key()), signature="")
        signature = base64.b64encode(key.sign(unsigned.message())).decode()
        return replace(unsigned, signature=signature)

    def signature_ok(self, public: Ed25519PublicKey) -> bool:
        """True if the signature is valid under `public`."""
        try:
            public.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    @staticmethod
    def from_bytes(data: bytes, name: str) -> Checkpoint:
        """Parse a checkpoint file; AuditIntegrityError if it is malformed."""
        try:
            doc = json.loads(data)
            if doc["format"] != FORMAT:
                raise ValueError("unknown format")
            cp = Checkpoint(
                origin=str(doc["origin"]),
                index=int(doc["index"]),
                tree_size=int(doc["tree_size"]),
                head=str(doc["head"]),
                anchor_seq=int(doc["anchor"]["first_seq"]),
                anchor_prev=str(doc["anchor"]["prev"]),
                segments=tuple(SegmentInfo.from_json(s) for s in doc["segments"]),
                dropped=tuple(SegmentInfo.from_json(s) for s in doc["dropped"]),
                prev_checkpoint=str(doc["prev_checkpoint"]),
                time=str(doc["time"]),
                key_id=str(doc["key_id"]),
                signature=str(doc["signature"]),
            )
            if doc["last_seq"] != cp.last_seq:
                raise ValueError("last_seq does not match tree_size")
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditIntegrityError(f"checkpoint {name} is malformed") from exc
        return cp


def _names(directory: Path) -> list[tuple[int, str]]:
    """Checkpoint file names in `directory` as (index, name), by index."""
    out = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m:
            out.append((int(m.group(2)), name))
    return sorted(out)


def load_all(directory: Path) -> list[tuple[str, Checkpoint]]:
    """Every checkpoint in `directory` as (file name, checkpoint), by index."""
    return [
        (n, Checkpoint.from_bytes((directory / n).read_bytes(), n)) for _, n in _names(directory)
    ]


def latest(directory: Path) -> Checkpoint | None:
    """The checkpoint with the highest index, or None."""
    names = _names(directory)
    if not names:
        return None
    name = names[-1][1]
    return Checkpoint.from_bytes((directory / name).read_bytes(), name)


def first_prev() -> str:
    """The `prev_checkpoint` of checkpoint #0."""
    return GENESIS


def store(cp: Checkpoint, directory: Path) -> Path:
    """Write a checkpoint durably; never overwrites an existing file (append-only series)."""
    final = directory / cp.file_name
    tmp = directory / f".{cp.file_name}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = memoryview(cp.to_bytes())
        while data:  # a nearly full disk may take part of a write
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    except BaseException:  # ENOSPC and the like: no half-written checkpoint is left behind
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.link(tmp, final)
    except FileExistsError as exc:
        raise AuditIntegrityError(f"checkpoint {cp.file_name} already exists") from exc
    finally:
        tmp.unlink()
    fsync_dir(directory)
    return final
