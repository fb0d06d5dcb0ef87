"""The offline evidence verifier (amzigo_lab.client.evidence): no home, only the bundle."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amzigo_lab.client import evidence as ev


def _bundle(tmp: Path) -> tuple[Path, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    files = {"catalog.json": "[]\n", "audit/events.jsonl": '{"action": "x"}\n'}
    manifest = ev.make_manifest(
        incident="INC-1", created_at="2026-12-01T00:00:00Z", created_by="sec", files=files,
        public_key_pem=pem.decode(),
    )  # fmt: skip
    raw = ev.canonical(manifest)
    entry = {"incident": "INC-1", "manifest_sha256": ev.sha256(raw), "prev": "",
             "event": "collected", "by": "sec", "to": "sec", "reason": "r", "at": "t"}  # fmt: skip
    entry["signature"] = ev.b64(key.sign(ev.canonical(entry)))
    out = [{"name": n, "text": t} for n, t in files.items()]
    out += [
        {"name": ev.MANIFEST, "text": raw.decode()},
        {"name": ev.SIGNATURE, "text": ev.b64(key.sign(raw))},
        {"name": ev.CUSTODY, "text": json.dumps(entry) + "\n"},
    ]
    return ev.write_bundle(tmp / "b", out), key


def test_a_good_bundle_verifies_and_each_kind_of_tampering_is_named(tmp_path: Path) -> None:
    bundle, key = _bundle(tmp_path)
    assert ev.verify_bundle(bundle)["ok"]
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert "pinned" in " ".join(ev.verify_bundle(bundle, other.decode())["problems"])

    (bundle / "extra.txt").write_text("planted")
    assert "not in the manifest" in " ".join(ev.verify_bundle(bundle)["problems"])
    (bundle / "extra.txt").unlink()

    # a custody entry edited after signing, or out of chain
    lines = (bundle / ev.CUSTODY).read_text().splitlines()
    forged = json.loads(lines[0]) | {"to": "someone else"}
    (bundle / ev.CUSTODY).write_text(json.dumps(forged) + "\n")
    assert "signature does not verify" in " ".join(ev.verify_bundle(bundle)["problems"])
    prev, _ = "x", None
    body = json.loads(lines[0])
    body.pop("signature")
    body["prev"] = prev
    body["signature"] = ev.b64(key.sign(ev.canonical(body)))
    (bundle / ev.CUSTODY).write_text(json.dumps(body) + "\n")
    assert "chain broken" in " ".join(ev.verify_bundle(bundle)["problems"])
    (bundle / ev.CUSTODY).write_text(lines[0] + "\n")

    # a re-signed manifest by another key does not match the signature file
    manifest = json.loads((bundle / ev.MANIFEST).read_text())
    manifest["created_by"] = "mallory"
    (bundle / ev.MANIFEST).write_bytes(ev.canonical(manifest))
    problems = " ".join(ev.verify_bundle(bundle)["problems"])
    assert "signature does not verify" in problems and "names another bundle" in problems


def test_a_bundle_with_path_escapes_is_refused(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="bad item name"):
        ev.write_bundle(tmp_path / "b", [{"name": "../evil", "text": "x"}])
