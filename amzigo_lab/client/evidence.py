"""Incident evidence bundles: format, and the offline verifier (no home, no keys but public).

A bundle is a directory the CLI writes from the gateway's answer to `incident.evidence`:

* the items (audit events and checkpoints, catalog/identity snapshots, alert ledger, config);
* `manifest.json`: canonical JSON naming the incident, who collected it and when, each item's
  SHA-256 and size, and the Ed25519 public key (PEM) of the home's signing key;
* `manifest.sig`: base64 Ed25519 signature of the manifest's bytes;
* `custody.jsonl`: the chain of custody, one signed JSON entry per line (collected, then each
  hand-over), each naming the manifest's SHA-256 and the SHA-256 of the line before it.

`verify_bundle` checks all of it with nothing but this directory (and, to pin the key, the
home's published `certificate-signing.pub.pem`): it imports no lake, home or governance code,
so it runs on another machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

FORMAT = "amzigo-incident-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CUSTODY = "custody.jsonl"
_META = frozenset({MANIFEST, SIGNATURE, CUSTODY})


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes of a body (sorted keys, no spaces)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def b64(raw: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(raw).decode()


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def make_manifest(
    *, incident: str, created_at: str, created_by: str, files: dict[str, str], public_key_pem: str
) -> dict[str, Any]:
    """The manifest of a bundle whose items are `files` (name -> text)."""
    return {
        "format": FORMAT,
        "incident": incident,
        "created_at": created_at,
        "created_by": created_by,
        "public_key_pem": public_key_pem,
        "items": [
            {"name": n, "sha256": sha256(t.encode()), "bytes": len(t.encode())}
            for n, t in sorted(files.items())
        ],
    }


def safe_name(name: str) -> str:
    """A bundle-relative path that stays inside the bundle (ValueError otherwise)."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise ValueError(f"bad item name {name!r} in the bundle")
    return "/".join(parts)


def write_bundle(out: Path, files: list[dict[str, str]]) -> Path:
    """Write the gateway's answer into `out` (created; must be empty or absent)."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: choose a new --out directory")
    for f in files:
        path = out / safe_name(str(f["name"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(f["text"]), encoding="utf-8")
    return out


def manifest_sha256(bundle: Path) -> str:
    """The SHA-256 of a bundle's manifest (its identity in the custody log)."""
    return sha256((bundle / MANIFEST).read_bytes())


def last_custody(bundle: Path) -> tuple[str, dict[str, Any]]:
    """(SHA-256 of the last custody line, that entry)."""
    lines = (bundle / CUSTODY).read_bytes().splitlines()
    if not lines:
        raise ValueError("the custody log is empty")
    return sha256(lines[-1]), json.loads(lines[-1])


def append_custody(bundle: Path, entry: dict[str, Any]) -> None:
    """Append a signed entry (from the gateway) to the custody log."""
    with (bundle / CUSTODY).open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")


def _public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the manifest's public key is not Ed25519")
    return key


def _signed(key: Any, signature: str, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_bundle(bundle: Path, pinned_key_pem: str | None = None) -> dict[str, Any]:
    """Check a bundle end to end; a report whose `ok` is True only if every check passed.

    Checks: the manifest's signature (with its embedded key, which must equal `pinned_key_pem`
    when given), every item's SHA-256 and size, that no file was added or removed, and the
    custody log (each entry signed by the same key, naming this manifest, chained by hash)."""
    problems: list[str] = []
    report: dict[str, Any] = {"bundle": str(bundle), "problems": problems}
    try:
        manifest_bytes = (bundle / MANIFEST).read_bytes()
        manifest = json.loads(manifest_bytes)
        signature = (bundle / SIGNATURE).read_text(encoding="utf-8").strip()
        key = _public_key(str(manifest["public_key_pem"]))
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"cannot read the manifest or its signature: {exc}")
        report["ok"] = False
        return report
    report["incident"] = manifest.get("incident")
    report["created_at"] = manifest.get("created_at")
    report["created_by"] = manifest.get("created_by")
    report["key_id"] = sha256(str(manifest["public_key_pem"]).encode())[:16]
    if manifest.get("format") != FORMAT:
        problems.append(f"unknown format {manifest.get('format')!r}")
    if canonical(manifest) != manifest_bytes:
        problems.append("the manifest is not in canonical form (edited?)")
    if not _signed(key, signature, manifest_bytes):
        problems.append("the manifest's signature does not verify")
    if pinned_key_pem is not None:
        if _public_key(pinned_key_pem).public_bytes_raw() != key.public_bytes_raw():
            problems.append("the manifest was signed with a key other than the pinned one")
        report["key_pinned"] = True
    else:
        report["key_pinned"] = False
    listed = {}
    for item in manifest.get("items", []):
        name = safe_name(str(item["name"]))
        listed[name] = item
        path = bundle / name
        if not path.is_file():
            problems.append(f"missing item {name}")
            continue
        data = path.read_bytes()
        if sha256(data) != item["sha256"] or len(data) != item["bytes"]:
            problems.append(f"item {name} changed (SHA-256 mismatch)")
    present = {
        "/".join(p.relative_to(bundle).parts) for p in bundle.rglob("*") if p.is_file()
    } - _META
    for extra in sorted(present - set(listed)):
        problems.append(f"file {extra} is not in the manifest (added after collection)")
    report["items"] = len(listed)
    digest = sha256(manifest_bytes)
    report["manifest_sha256"] = digest
    custody: list[dict[str, Any]] = []
    try:
        lines = (bundle / CUSTODY).read_bytes().splitlines()
    except OSError:
        lines = []
        problems.append("the custody log is missing")
    prev = ""
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            body = {k: v for k, v in entry.items() if k != "signature"}
        except ValueError:
            problems.append(f"custody line {n} is not JSON")
            break
        if not _signed(key, str(entry.get("signature", "")), canonical(body)):
            problems.append(f"custody line {n}: the signature does not verify")
        if body.get("manifest_sha256") != digest:
            problems.append(f"custody line {n} names another bundle")
        if body.get("prev") != prev:
            problems.append(f"custody line {n} does not follow line {n - 1} (chain broken)")
        if n == 1 and body.get("event") != "collected":
            problems.append("the custody log does not start with the collection")
        custody.append({k: body.get(k) for k in ("at", "event", "by", "to", "reason")})
        prev = sha256(line)
    report["custody"] = custody
    report["ok"] = not problems
    return report
