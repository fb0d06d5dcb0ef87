"""`Lake`: one home's encrypted Parquet lake, its catalog and its keys.

The lake knows nothing of users: governance decides who may read, compliance decides what to
drop. Here live the mechanisms: write (atomic, idempotent), scan (pruned, decrypted), drop
(cryptographic erase + delete + verify), integrity checks and master-key rotation.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from amzigo_lab.config import Settings
from amzigo_lab.errors import CatalogError, KeyProviderError, UnknownDataset
from amzigo_lab.events import AuditSink, NullSink
from amzigo_lab.lake import drop, integrity, rotation, writer
from amzigo_lab.lake.catalog import Catalog, Partition, iso, utcnow
from amzigo_lab.lake.drop import DestructionRecord
from amzigo_lab.lake.handle import FaultHook
from amzigo_lab.lake.integrity import VerifyReport
from amzigo_lab.lake.keys import (
    MASTER_CHECK,
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    MasterKey,
    index_keys,
    unwrap,
    wrap,
)
from amzigo_lab.lake.reader import Scan
from amzigo_lab.lake.rowmac import RowProblem
from amzigo_lab.lake.writer import WriteResult
from amzigo_lab.names import dataset_name
from amzigo_lab.schema import DatasetSpec

#: Catalog meta: the home the catalog was last opened in, and the derived-path format.
HOME_PATH_META = "home_path"
PATHS_META = "derived_paths"


def key_provider_for(settings: Settings) -> KeyProvider:
    """The configured key provider: "file" (default), "env" or "kms" (lake/kms.py)."""
    if settings.key_provider == "env":
        return EnvKeyProvider(settings.key_env_var)
    if settings.key_provider == "kms":
        from amzigo_lab.lake.kms import kms_provider

        return kms_provider(settings)
    return FileKeyProvider(settings.master_key_file)


class Lake:
    """The encrypted lake of one home. Open with `Lake.open(settings, registry)`."""

    def __init__(
        self,
        settings: Settings,
        registry: Mapping[str, DatasetSpec],
        keys: KeyProvider,
        catalog: Catalog,
        audit: AuditSink | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        fault_hook: FaultHook | None = None,
    ) -> None:
        self.settings = settings
        self.registry = dict(registry)
        self.keys = keys
        self.catalog = catalog
        self.audit: AuditSink = audit or NullSink()
        self.clock = clock
        self.fault_hook: FaultHook = fault_hook or (lambda _step: None)
        self.root = settings.lake_dir
        self._masters = index_keys(keys.load())
        self._deferred_events: list[tuple[str, dict[str, object]]] = []
        self._migrate_master_ids()
        self._check_master()
        self._migrate_row_macs()
        self._migrate_output_paths()
        if audit is not None:
            self.emit_deferred()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def init(
        cls, settings: Settings, registry: Mapping[str, DatasetSpec], **kwargs: object
    ) -> Lake:
        """Create (or re-open) the home: folders, master key, catalog. Safe to re-run."""
        for d in (settings.home, settings.lake_dir, settings.state_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        provider = key_provider_for(settings)
        if settings.catalog_path.exists():
            # an existing catalog is wrapped under its own master key: never create a new one
            # in place of a missing key (it could not read this lake); say where it went
            existing = Catalog(settings.catalog_path)
            try:
                wanted = existing.get_meta("master_key_id")
            finally:
                existing.close()
            if wanted is not None:
                try:
                    provider.load()
                except KeyProviderError as exc:
                    raise KeyProviderError(
                        f"this home's catalog is wrapped under master key {wanted}, which "
                        f"cannot be loaded ({exc}); restore that key from backup: a new key "
                        "would not read this lake"
                    ) from None
        master = provider.create()
        catalog = Catalog(settings.catalog_path)
        if catalog.get_meta("master_key_id") is None:
            with catalog.transaction():
                catalog.set_meta("master_key_id", master.key_id)
                catalog.set_meta("master_check", wrap(master.secret, MASTER_CHECK, "check").hex())
        return cls(settings, registry, provider, catalog, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def open(
        cls, settings: Settings, registry: Mapping[str, DatasetSpec], **kwargs: object
    ) -> Lake:
        """Open an initialised home (fails clearly if `amzigo init` was not run)."""
        if not settings.catalog_path.exists():
            raise CatalogError(
                f"no catalog at {settings.catalog_path}: run `amzigo init` (or set AMZIGO_HOME)"
            )
        catalog = Catalog(settings.catalog_path)
        return cls(settings, registry, key_provider_for(settings), catalog, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the catalog (and the audit sink, if it has a `close`)."""
        closer = getattr(self.audit, "close", None)
        if callable(closer):
            closer()
        self.catalog.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------------------
    @property
    def master_key_id(self) -> str:
        """The id of the master key the catalog is wrapped under."""
        value = self.catalog.get_meta("master_key_id")
        if value is None:
            raise CatalogError("catalog has no master key id: run `amzigo init`")
        return value

    def master(self) -> MasterKey:
        """The current master key."""
        key_id = self.master_key_id
        if key_id not in self._masters:
            held = sorted({k.key_id for k in self._masters.values()})
            raise KeyProviderError(
                f"the catalog is wrapped under master key {key_id}, but "
                f"{self.keys.description} holds {', '.join(held)}: wrong key "
                "file, environment variable or KMS key for this home"
            )
        return self._masters[key_id]

    def held_master(self, key_id: str) -> MasterKey:
        """A held master key by id (KeyProviderError if it is not held)."""
        master = self._masters.get(key_id)
        if master is None:
            raise KeyProviderError(f"master key {key_id} is not held")
        return master

    def _migrate_master_ids(self) -> None:
        """Rename master-key ids the catalog names to the keys' derived ids (once per catalog
        written by an older version, which gave each provider its own id for the same key).

        An id is renamed when it is an alias of a held key, or when a held key opens what the
        catalog wrapped under it (the master check, a partition key or a secret): so a catalog
        written with the key file opens under the same key from the environment or a KMS."""
        db = self.catalog.db
        stored = {
            str(r[0])
            for table in ("keys", "secrets")
            for r in db.execute(
                f"SELECT DISTINCT master_key_id FROM {table} WHERE master_key_id IS NOT NULL"  # noqa: S608
            )
        }
        meta = self.catalog.get_meta("master_key_id")
        if meta is not None:
            stored.add(meta)
        renames: dict[str, str] = {}
        for old in sorted(stored):
            key = self._masters.get(old) or self._identify_master(old, meta)
            if key is not None and key.key_id != old:
                renames[old] = key.key_id
        if not renames:
            return
        with self.catalog.transaction() as tx:
            for old, new in renames.items():
                tx.execute("UPDATE keys SET master_key_id = ? WHERE master_key_id = ?", (new, old))
                tx.execute(
                    "UPDATE secrets SET master_key_id = ? WHERE master_key_id = ?", (new, old)
                )
                if meta == old:
                    self.catalog.set_meta("master_key_id", new)
        for old, new in renames.items():
            self._masters.setdefault(old, self._masters[new])
        self._deferred_events.append(
            (
                "keys.id_migrated",
                {
                    "resource": "master_key",
                    "reason": "one-time migration to key-derived ids: "
                    + ", ".join(f"{o} -> {n}" for o, n in sorted(renames.items())),
                },
            )
        )

    def _identify_master(self, key_id: str, meta: str | None) -> MasterKey | None:
        """The held key that opens something the catalog wrapped under `key_id`, if any."""
        db = self.catalog.db
        samples: list[tuple[bytes, str]] = []
        check = self.catalog.get_meta("master_check")
        if key_id == meta and check is not None:
            samples.append((bytes.fromhex(check), "check"))
        row = db.execute(
            "SELECT wrapped, key_id FROM keys WHERE master_key_id = ? AND wrapped IS NOT NULL "
            "LIMIT 1",
            (key_id,),
        ).fetchone()
        if row is not None:
            samples.append((bytes(row[0]), str(row[1])))
        row = db.execute(
            "SELECT ciphertext, name FROM secrets WHERE master_key_id = ? LIMIT 1", (key_id,)
        ).fetchone()
        if row is not None:
            samples.append((bytes(row[0]), f"secret:{row[1]}"))
        for key in {k.key_id: k for k in self._masters.values()}.values():
            for blob, aad in samples[:1]:
                try:
                    unwrap(key.secret, blob, aad)
                except KeyProviderError:
                    continue
                return key
        return None

    def _check_master(self) -> None:
        check = self.catalog.get_meta("master_check")
        if check is not None:
            unwrap(self.master().secret, bytes.fromhex(check), "check")

    # -- catalog row MACs (lake/rowmac.py) -------------------------------------------------
    def row_mac_key(self) -> bytes:
        """The catalog-row MAC key: HKDF of the current master key (never the raw key)."""
        from amzigo_lab.lake.rowmac import derive_key

        return derive_key(self.master().secret)

    def require_intact(self, partition_ids: Iterable[int], action: str = "read") -> None:
        """Raise `TamperedRow` naming any of these partitions whose row (or file rows) fails its
        MAC: such rows were edited outside amzigo-lab and are never read or dropped silently."""
        from amzigo_lab.lake.rowmac import require_intact

        ids = sorted(set(partition_ids))
        if ids:
            require_intact(self.catalog.db, self.row_mac_key(), ids, action)

    def check_partition_rows(self) -> list[RowProblem]:
        """Problems of every partition row (any state) and its file rows: [] if all intact."""
        from amzigo_lab.lake.rowmac import check_partitions

        return check_partitions(self.catalog.db, self.row_mac_key())

    def _migrate_row_macs(self) -> None:
        """Once per catalog upgraded to schema 3 (partitions, files, certificates) and once per
        catalog upgraded to schema 4 (legal holds, derived outputs): MAC every existing row of
        those tables (audited; the holds sealed are named in the event)."""
        from amzigo_lab.lake.rowmac import (
            HOLD_MIGRATION_META,
            MIGRATION_META,
            migrate_unsealed,
            migrate_unsealed_holds,
        )

        if self.catalog.get_meta(MIGRATION_META) == "pending":
            with self.catalog.transaction() as db:
                counts = migrate_unsealed(db, self.row_mac_key())
                if counts is not None:
                    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
                    self.catalog.set_meta(MIGRATION_META, f"done {iso(self.clock())}: {summary}")
            if counts is not None and any(counts.values()):  # else a new (empty) catalog
                self._deferred_events.append(
                    (
                        "catalog.row_mac_migration",
                        {
                            "resource": "catalog",
                            "row_count": sum(counts.values()),
                            "reason": f"one-time migration: MAC added to {summary} row(s)",
                        },
                    )
                )
        if self.catalog.get_meta(HOLD_MIGRATION_META) == "pending":
            with self.catalog.transaction() as db:
                ids = migrate_unsealed_holds(db, self.row_mac_key())
                if ids is not None:
                    summary = ", ".join(f"{len(v)} {table}" for table, v in ids.items())
                    self.catalog.set_meta(
                        HOLD_MIGRATION_META, f"done {iso(self.clock())}: {summary}"
                    )
            if ids is not None and any(ids.values()):
                holds = ",".join(ids["legal_holds"]) or "none"
                self._deferred_events.append(
                    (
                        "catalog.row_mac_migration",
                        {
                            "resource": "catalog",
                            "row_count": sum(len(v) for v in ids.values()),
                            "reason": f"one-time migration: MAC added to {summary} row(s); "
                            f"holds sealed: {holds}"[:250],
                        },
                    )
                )

    def _migrate_output_paths(self) -> None:
        """Once: derived-output paths stored absolute inside the home (older versions) become
        relative to it, re-sealed (rows that fail their MAC are left as found). Paths under the
        home the catalog last lived in (it was copied or moved) are rebased the same way, so a
        purge of the copy never deletes the original home's files."""
        from amzigo_lab.lake.rowmac import check_derived, seal_derived

        home = self.settings.home.resolve()
        last = self.catalog.get_meta(HOME_PATH_META)
        if last == str(home) and self.catalog.get_meta(PATHS_META) is not None:
            return
        roots = [home] + ([Path(last)] if last and last != str(home) else [])
        key = self.row_mac_key()
        moved: list[str] = []
        with self.catalog.transaction() as db:
            rows = db.execute("SELECT id, path FROM derived_outputs").fetchall()
            bad = {p.row_id for p in check_derived(db, key, [r[0] for r in rows])}
            for row_id, path in rows:
                p = Path(path)
                if row_id in bad or not p.is_absolute():
                    continue
                root = next((r for r in roots if p.is_relative_to(r) and p != r), None)
                if root is None:
                    continue
                rel = p.relative_to(root).as_posix()
                db.execute("UPDATE derived_outputs SET path = ? WHERE id = ?", (rel, row_id))
                moved.append(row_id)
            seal_derived(db, key, moved)
            self.catalog.set_meta(HOME_PATH_META, str(home))
            self.catalog.set_meta(PATHS_META, "relative")
        if moved:
            self._deferred_events.append(
                (
                    "catalog.output_path_migration",
                    {
                        "resource": "catalog",
                        "row_count": len(moved),
                        "reason": "derived-output paths made relative to the home",
                    },
                )
            )

    def emit_deferred(self) -> None:
        """Emit audit events recorded before the audit sink was wired (the MAC migration)."""
        events, self._deferred_events = self._deferred_events, []
        for action, fields in events:
            self.audit.emit(action, **fields)  # type: ignore[arg-type]

    def partition_keys(self, key_ids: Iterable[str]) -> dict[str, bytes]:
        """Unwrapped partition keys for the given ids (destroyed keys are absent)."""
        wrapped = self.catalog.wrapped_keys(sorted(set(key_ids)))
        out = {}
        for key_id, (blob, master_id) in wrapped.items():
            master = self._masters.get(master_id)
            if master is None:
                raise KeyProviderError(f"master key {master_id} needed for {key_id} is not held")
            out[key_id] = unwrap(master.secret, blob, key_id)
        return out

    def secret(self, name: str, create: bool = True) -> bytes:
        """A named 256-bit secret stored wrapped by the master key (created on first use).

        Used for keys other layers need (audit segments, TOTP seeds, blind indexes). They are
        re-wrapped by master-key rotation like partition keys.
        """
        row = self.catalog.db.execute(
            "SELECT ciphertext, master_key_id FROM secrets WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            if not create:
                raise KeyProviderError(f"secret {name!r} does not exist in this home")
            return self.put_secret(name, secrets.token_bytes(32), replace=False)
        master = self._masters.get(row[1])
        if master is None:
            raise KeyProviderError(f"master key {row[1]} needed for secret {name!r} is not held")
        return unwrap(master.secret, bytes(row[0]), f"secret:{name}")

    def put_secret(self, name: str, value: bytes, replace: bool = True) -> bytes:
        """Store (or replace) a named secret wrapped by the master key; return it."""
        master = self.master()
        now = iso(self.clock())
        blob = wrap(master.secret, value, f"secret:{name}")
        insert = (
            "INSERT INTO secrets(name, ciphertext, master_key_id, created_at, rotated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) "
        )
        on_conflict = (
            "DO UPDATE SET ciphertext = excluded.ciphertext, master_key_id = "
            "excluded.master_key_id, rotated_at = excluded.rotated_at"
            if replace
            else "DO NOTHING"
        )
        with self.catalog.transaction() as db:
            db.execute(
                insert + on_conflict,
                (name, blob, master.key_id, now, now),
            )
        return value if replace else self.secret(name, create=False)

    def keep_secrets(self, values: Mapping[str, bytes]) -> None:
        """Store named secrets wrapped by the master key, leaving any that exist as they are
        (one transaction)."""
        if not values:
            return
        master = self.master()
        now = iso(self.clock())
        rows = [
            (name, wrap(master.secret, value, f"secret:{name}"), master.key_id, now, now)
            for name, value in values.items()
        ]
        with self.catalog.transaction() as db:
            db.executemany(
                "INSERT INTO secrets(name, ciphertext, master_key_id, created_at, rotated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
                rows,
            )

    def delete_secrets(self, names: Iterable[str]) -> int:
        """Destroy named secrets (one transaction; the catalog overwritten and its WAL
        truncated when any existed); how many existed."""
        with self.catalog.transaction() as db:
            n = db.executemany("DELETE FROM secrets WHERE name = ?", [(x,) for x in names]).rowcount
        if n:
            self.catalog.checkpoint()
        return int(n)

    def secret_names(self) -> list[tuple[str, str, str]]:
        """(name, created_at, rotated_at) of every stored secret (never the values)."""
        rows = self.catalog.db.execute(
            "SELECT name, created_at, rotated_at FROM secrets ORDER BY name"
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def delete_secret(self, name: str) -> bool:
        """Destroy a named secret (overwritten in the catalog, WAL truncated)."""
        with self.catalog.transaction() as db:
            n = db.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount
        self.catalog.checkpoint()
        return n > 0

    @staticmethod
    def new_partition_key() -> tuple[str, bytes]:
        """A fresh partition key id and 256-bit key."""
        return "pk-" + secrets.token_hex(12), secrets.token_bytes(32)

    # -- datasets --------------------------------------------------------------------------
    def spec(self, dataset: str) -> DatasetSpec:
        """The declared dataset, or UnknownDataset."""
        dataset_name(dataset)
        try:
            return self.registry[dataset]
        except KeyError:
            raise UnknownDataset(
                f"dataset {dataset!r} is not declared; declared: {', '.join(sorted(self.registry))}"
            ) from None

    def ensure_registered(self, spec: DatasetSpec) -> None:
        """Record the dataset's classification in the catalog (inside a transaction)."""
        row = self.catalog.db.execute(
            "SELECT schema_version FROM datasets WHERE name = ?", (spec.name,)
        ).fetchone()
        if row is not None and row[0] >= spec.schema_version:
            return
        self.catalog.db.execute(
            "INSERT INTO datasets(name, origin, pii, columns_json, schema_version, retention_rule,"
            " registered_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "origin=excluded.origin, pii=excluded.pii, columns_json=excluded.columns_json, "
            "schema_version=excluded.schema_version, retention_rule=excluded.retention_rule",
            (
                spec.name,
                spec.origin,
                int(spec.pii),
                json.dumps(spec.column_classes()),
                spec.schema_version,
                spec.retention.name,
                iso(self.clock()),
            ),
        )

    # -- locking ---------------------------------------------------------------------------
    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise writers, drops and rotations of this home across processes."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.settings.state_dir / "lake.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def path(self, rel: str) -> Path:
        """Absolute path of a lake-relative path."""
        return self.root / rel

    # -- operations (implemented in their own modules) ------------------------------------
    def write(
        self,
        dataset: str,
        tenant: str,
        ingest_date: dt.date | str,
        table: pa.Table,
        batch_id: str,
    ) -> WriteResult:
        """Validate and write one batch; visible only once its catalog rows commit."""
        return writer.write_batch(self, dataset, tenant, ingest_date, table, batch_id)

    def scan(
        self,
        dataset: str,
        tenants: list[str] | None = None,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
    ) -> Scan:
        """The committed partitions of one dataset for tenants and an ingest-date range."""
        return Scan.build(self, dataset, tenants, start, end)

    def drop_partitions(
        self, partitions: list[Partition], canaries: Iterable[str] = (), reason: str = ""
    ) -> DestructionRecord:
        """Cryptographically erase, delete and verify the given partitions."""
        return drop.drop_partitions(self, partitions, list(canaries), reason)

    def drop_partition(
        self, partition_id: int, canaries: Iterable[str] = (), reason: str = ""
    ) -> DestructionRecord:
        """Cryptographically erase, delete and verify one partition."""
        return self.drop_partitions([self.catalog.partition(partition_id)], canaries, reason)

    def verify(self) -> VerifyReport:
        """Check every catalog row's MAC, then every committed file: presence, SHA-256,
        decryption, row count."""
        return integrity.verify_lake(self)

    def rotate_master_key(self) -> str:
        """Re-wrap every partition key and secret under a new master key; return its id."""
        return rotation.rotate_master_key(self)

    def reload_keys(self) -> None:
        """Re-read the key provider (after a rotation)."""
        self._masters = index_keys(self.keys.load())
