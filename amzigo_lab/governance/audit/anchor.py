"""The anchor: a copy of every signed checkpoint on other storage, so a rollback is detectable.

The checkpoints beside the log prove the log was not edited, but whoever can delete the log
can delete them too: a wiped, truncated or re-initialised log with its later checkpoints
removed still verifies. The anchor is a directory on other storage (ideally append-only:
`chattr +a`, a WORM bucket mount, another host) that receives every checkpoint as well:

* one file per checkpoint (the signed checkpoint bytes, the same as the local file), written
  to `<anchor>/.tmp/` first, fsynced, then hard-linked into place: atomic and never
  overwritten (`link` fails if the name exists), and nothing is ever renamed or deleted in the
  anchor directory itself, so it works under `chattr +a`;
* one JSON line per checkpoint appended to `<anchor>/anchor.log` (O_APPEND, fsync): origin,
  index, tree size, head, signature, key id, time, file name and file digest.

Checkpoints hold hashes, counts, segment ids and times only: no event fields, no PII, no keys.
Verification holds the local log against the newest anchored checkpoint (see `check`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amzigo_lab.governance.audit.checkpoint import Checkpoint
from amzigo_lab.governance.audit.errors import AuditError, AuditIntegrityError
from amzigo_lab.governance.audit.segment import fsync_dir

ANCHOR_LOG = "anchor.log"
TMP_DIR = ".tmp"
_NAME = re.compile(r"^checkpoint-(\d{12})-(\d{6})\.json$")
NO_ANCHOR_WARNING = (
    "no audit anchor configured: a wiped, truncated or rolled-back log cannot be detected "
    "(set audit.anchor to a directory on other storage)"
)


def describe(cp: Checkpoint) -> str:
    """How errors name an anchored checkpoint: index, tree size and time."""
    return f"checkpoint #{cp.index} (tree size {cp.tree_size}, {cp.time})"


def _indices(anchor_dir: Path) -> list[tuple[int, str]]:
    """Checkpoint files in the anchor as (index, name), by index ([] if there is no directory)."""
    try:
        names = os.listdir(anchor_dir)
    except FileNotFoundError:
        return []
    return sorted((int(m.group(2)), n) for n in names if (m := _NAME.match(n)))


def newest_index(anchor_dir: Path) -> int:
    """The highest checkpoint index held by the anchor (-1 if none)."""
    found = _indices(anchor_dir)
    return found[-1][0] if found else -1


def log_line(cp: Checkpoint) -> dict[str, Any]:
    """The `anchor.log` entry of a checkpoint (hashes and counts only)."""
    return {
        "digest": cp.digest(),
        "file": cp.file_name,
        "head": cp.head,
        "index": cp.index,
        "key_id": cp.key_id,
        "origin": cp.origin,
        "signature": cp.signature,
        "time": cp.time,
        "tree_size": cp.tree_size,
    }


def write(anchor_dir: Path, cp: Checkpoint) -> bool:
    """Anchor a signed checkpoint; False if it already was. Never overwrites anything.

    AuditIntegrityError if the anchor holds another checkpoint with this index, or a newer one:
    the local log was re-initialised or rolled back (restore it, do not start a new one).
    """
    found = _indices(anchor_dir)
    data = cp.to_bytes()
    same = [n for i, n in found if i == cp.index]
    if same:
        if same == [cp.file_name] and (anchor_dir / cp.file_name).read_bytes() == data:
            return False
        raise AuditIntegrityError(
            f"the audit anchor {anchor_dir} already holds another checkpoint #{cp.index}: the "
            "local log was re-initialised or rolled back; restore it from backup"
        )
    if found:
        name = found[-1][1]
        last = (anchor_dir / name).read_bytes()
        held = Checkpoint.from_bytes(last, name)
        if held.index > cp.index:
            raise AuditIntegrityError(
                f"the audit anchor {anchor_dir} holds {describe(held)}, newer than local "
                f"checkpoint #{cp.index}: the local log was wiped, truncated or rolled back; "
                "restore it"
            )
        if held.index != cp.index - 1 or cp.prev_checkpoint != hashlib.sha256(last).hexdigest():
            raise AuditIntegrityError(
                f"local checkpoint #{cp.index} does not follow {describe(held)} held by the "
                f"audit anchor {anchor_dir}: the local log was re-initialised or rolled back; "
                "restore it"
            )
    anchor_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp_dir = anchor_dir / TMP_DIR
    tmp_dir.mkdir(exist_ok=True, mode=0o700)
    tmp = tmp_dir / f"{cp.file_name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, anchor_dir / cp.file_name)  # atomic, and fails rather than overwrite
    except FileExistsError:
        if (anchor_dir / cp.file_name).read_bytes() != data:
            raise AuditIntegrityError(
                f"the audit anchor {anchor_dir} already holds another {cp.file_name}"
            ) from None
    finally:
        tmp.unlink()
    line = json.dumps(log_line(cp), sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(anchor_dir / ANCHOR_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(anchor_dir)
    return True


@dataclass
class Held:
    """What an anchor holds, read without writing anything."""

    directory: Path
    checkpoints: list[tuple[str, Checkpoint]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""

    @property
    def newest(self) -> Checkpoint | None:
        """The anchored checkpoint with the highest index."""
        return self.checkpoints[-1][1] if self.checkpoints else None


def read(anchor_dir: Path) -> Held:
    """Read the anchor's checkpoint files and `anchor.log` (a missing directory holds nothing)."""
    held = Held(anchor_dir)
    try:
        seen: set[int] = set()
        for index, name in _indices(anchor_dir):
            if index in seen:
                held.problem = f"two anchored files claim checkpoint #{index}"
            seen.add(index)
            held.checkpoints.append(
                (name, Checkpoint.from_bytes((anchor_dir / name).read_bytes(), name))
            )
    except (AuditError, OSError) as exc:
        held.problem = held.problem or f"anchored {exc}"
    try:
        text = (anchor_dir / ANCHOR_LOG).read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        held.problem = held.problem or f"{ANCHOR_LOG} unreadable: {exc}"
        text = ""
    for n, raw in enumerate(text.splitlines(), start=1):
        try:
            line = json.loads(raw)
            int(line["index"]), str(line["digest"])
        except (ValueError, KeyError, TypeError):
            held.problem = held.problem or f"{ANCHOR_LOG} line {n} is malformed"
            continue
        held.lines.append(line)
    return held


def check(
    held: Held,
    local: list[tuple[str, Checkpoint]],
    public: Ed25519PublicKey,
    origin: str | None,
) -> str:
    """ "" if the local checkpoints contain (extend) everything anchored, else the problem.

    The caller checks, in addition, that the log's record at the newest anchored tree size
    has the anchored head (unless retention dropped it).
    """
    by_index = {cp.index: cp for _, cp in local}
    files = {cp.index: cp for _, cp in held.checkpoints}
    newest = held.newest
    if held.problem:
        return held.problem
    for line in held.lines:
        cp = files.get(int(line["index"]))
        if cp is None:
            return f"{ANCHOR_LOG} names checkpoint #{line['index']} but its file is missing"
        if cp.digest() != line["digest"]:
            return f"{ANCHOR_LOG} entry of checkpoint #{cp.index} does not match its file"
    if newest is None:
        return ""
    if not newest.signature_ok(public):
        return (
            f"anchored checkpoint #{newest.index}: signature invalid under the audit public key "
            "(forged anchor entry, or the signing key was replaced)"
        )
    if origin is not None and newest.origin != origin:
        return f"anchored checkpoint #{newest.index}: origin {newest.origin!r} is not this log's"
    missing = sorted(i for i in files if i not in by_index)
    if missing:
        span = f"#{missing[0]}" if len(missing) == 1 else f"#{missing[0]}..#{missing[-1]}"
        verb = "is" if len(missing) == 1 else "are"
        return (
            f"local checkpoint{'s' * (len(missing) > 1)} {span} {verb} missing (local "
            f"checkpoints end at #{max(by_index, default=-1)}): the log was wiped, truncated "
            "or rolled back, or its checkpoints deleted"
        )
    for index, cp in files.items():
        if by_index[index].digest() != cp.digest():
            return (
                f"local checkpoint #{index} differs from the anchored one: the log was "
                "re-initialised or rolled back"
            )
    return ""
