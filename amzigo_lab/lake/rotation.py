"""Master-key rotation: re-wrap every partition key and secret; no data file is rewritten.

1. stage the new master key beside the old one (both held by the provider);
2. one catalog transaction checks every row MAC under the old master's MAC key (a tampered row
   stops the rotation), re-MACs every row under the new one (lake/rowmac.py), re-wraps every
   live key and secret and switches `master_key_id`;
3. promote the new key; the old one is overwritten and deleted.
A crash after 1 leaves the old key in force; after 2, both keys are held and the catalog names the
new one. Either way every key stays readable, and `recover_rotation` (run by the next rotation and
by `amzigo doctor --fix`) discards or promotes the staged key.
"""

from __future__ import annotations

from amzigo_lab.lake.handle import LakeHandle
from amzigo_lab.lake.keys import MASTER_CHECK, FileKeyProvider, MasterKey, unwrap, wrap
from amzigo_lab.lake.rowmac import TamperedRow, derive_key, reseal_all


def recover_rotation(lake: LakeHandle) -> None:
    """Finish or undo a rotation a crash interrupted (file provider only)."""
    if not isinstance(lake.keys, FileKeyProvider):
        return
    staged = lake.keys.staged_key_id()
    if staged is None:
        return
    if staged == lake.master_key_id:
        lake.keys.promote(staged)  # crashed after the catalog switched: finish
    else:
        lake.keys.discard_staged()  # crashed before: the old key is still in force
    lake.reload_keys()


def rotate_master_key(lake: LakeHandle) -> str:
    """See `Lake.rotate_master_key`."""
    from amzigo_lab.lake.hot_cache import clear

    with lake.write_lock():
        clear(lake)  # decrypted copies do not outlive the keys they were read under
        recover_rotation(lake)
        old = lake.master()
        new = MasterKey.generate()
        lake.keys.stage(new)
        lake.reload_keys()
        lake.fault_hook("rotation_staged")
        try:
            _rewrap(lake, old, new)
        except TamperedRow:
            recover_rotation(lake)  # the catalog still names the old key: discard the new one
            raise
        lake.catalog.checkpoint()
        lake.fault_hook("rotation_committed")
        lake.keys.promote(new.key_id)
        lake.reload_keys()
    lake.audit.emit("keys.rotated", resource="master_key", reason=f"{old.key_id} -> {new.key_id}")
    return new.key_id


def _rewrap(lake: LakeHandle, old: MasterKey, new: MasterKey) -> None:
    """One transaction: check and re-MAC every catalog row, re-wrap keys and secrets, switch."""
    with lake.catalog.transaction() as db:
        # rows are checked under the old MAC key first: a tampered row is never re-sealed
        reseal_all(db, derive_key(old.secret), derive_key(new.secret))
        rows = db.execute(
            "SELECT key_id, wrapped, master_key_id FROM keys WHERE destroyed_at IS NULL"
        ).fetchall()
        for key_id, blob, master_id in rows:
            plain = unwrap(lake.held_master(master_id).secret, bytes(blob), key_id)
            db.execute(
                "UPDATE keys SET wrapped = ?, master_key_id = ? WHERE key_id = ?",
                (wrap(new.secret, plain, key_id), new.key_id, key_id),
            )
        for name, blob, master_id in db.execute(
            "SELECT name, ciphertext, master_key_id FROM secrets"
        ).fetchall():
            plain = unwrap(lake.held_master(master_id).secret, bytes(blob), f"secret:{name}")
            db.execute(
                "UPDATE secrets SET ciphertext = ?, master_key_id = ? WHERE name = ?",
                (wrap(new.secret, plain, f"secret:{name}"), new.key_id, name),
            )
        lake.catalog.set_meta("master_key_id", new.key_id)
        lake.catalog.set_meta("master_check", wrap(new.secret, MASTER_CHECK, "check").hex())
