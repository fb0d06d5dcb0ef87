"""The governed session: the only way people read the lake.

`connect(purpose=...)` logs in (a token from `amzigo login` in $AMZIGO_SESSION, or an
interactive password + TOTP code prompt) and returns a `Workbench`. For every dataset the
policy lets the user read for the stated purpose, the workbench registers on a private
in-memory DuckDB connection ONLY the files of the permitted tenants (the catalog chooses them;
nothing unfiltered is ever registered), adds a latest-state view per natural key, and then
locks the connection: `enable_external_access = false` and `lock_configuration = true`, so
`read_parquet`, `glob`, `COPY`, `ATTACH`, `INSTALL` and friends are refused in user SQL, and
the lock itself cannot be undone. PII datasets are absent unless role and purpose allow them.

Every read (`sql`, `polars`, executing a `table` expression) re-validates the session token
(a disabled user or revoked session stops at once) and writes an audit event with the row
count it returned; every denial writes one too and raises `AccessDenied` naming the missing
grant, role or purpose.

With the gateway's hot cache on (`lake/hot_cache.py`), a read swaps the cached decrypted tables
of the relations it names in for the decrypting datasets, and back before it returns: between
reads the connection holds no decrypted data, so emptying the cache (before a crypto-shred)
frees every copy. The scans stay the ones chosen at build time (the policy's tenants), so the
cache is asked for exactly the permitted files.

Trust boundary: this runs inside the analyst's own Python process, which holds the lake's
keys in memory and may be able to read the master key file. It stops mistakes and casual
overreach, not a hostile user with a shell on the same machine; see docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import ibis.backends.duckdb as ibis_duckdb
import ibis.expr.operations as ops
import pyarrow as pa

from amzigo_lab.errors import AccessDenied, UnknownDataset
from amzigo_lab.governance.identity import IdentityError, SessionExpired
from amzigo_lab.governance.identity import Session as IdentitySession
from amzigo_lab.governance.policy import Principal
from amzigo_lab.lake.hot_cache import cache_of
from amzigo_lab.names import sql_name

if TYPE_CHECKING:
    import datetime as dt

    import ibis.expr.types as ir
    import polars as pl
    from argon2 import PasswordHasher

    from amzigo_lab.config import Settings
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.lake.reader import Scan
    from amzigo_lab.schema import DatasetSpec

SESSION_ENV = "AMZIGO_SESSION"
VERSIONS_SUFFIX = "_versions"
_ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
_FILE_DENIED = (
    "file and extension access is disabled in governed sessions (read_parquet, glob, COPY, "
    "ATTACH, INSTALL, ...): query the tables listed by datasets(); the policy builds them"
)


def latest_state_sql(spec: DatasetSpec, source: str) -> str:
    """SELECT of the latest version of each row per tenant + natural key (all rows if none)."""
    src = sql_name(source)
    if not spec.natural_key:
        return f'SELECT * FROM "{src}"'  # noqa: S608 - validated identifier
    keys = ", ".join(f'"{sql_name(c)}"' for c in ("tenant", *spec.natural_key))
    order = [spec.version_column] if spec.version_column else []
    order_sql = ", ".join(f'"{sql_name(c)}" DESC NULLS LAST' for c in [*order, "ingest_date"])
    return (
        f'SELECT * FROM "{src}" QUALIFY row_number() OVER '  # noqa: S608 - validated identifiers
        f"(PARTITION BY {keys} ORDER BY {order_sql}) = 1"
    )


class _AuditedBackend(ibis_duckdb.Backend):
    """An ibis DuckDB backend whose every materialisation is checked and audited."""

    _workbench: Workbench | None = None

    def _wb(self) -> Workbench:
        if self._workbench is None:
            raise AccessDenied("this governed session is closed; connect again")
        return self._workbench

    def to_pyarrow(self, expr: Any, /, **kwargs: Any) -> Any:
        wb = self._wb()
        names = _expr_tables(expr)
        wb._before_read(names)
        with wb._translate_errors(names), wb._hot(names):
            result = super().to_pyarrow(expr, **kwargs)
        wb._audit_read(names, _rows(result), "ibis")
        return result

    def execute(self, expr: Any, /, **kwargs: Any) -> Any:
        wb = self._wb()
        names = _expr_tables(expr)
        wb._before_read(names)
        with wb._translate_errors(names), wb._hot(names):
            result = super().execute(expr, **kwargs)
        wb._audit_read(names, _rows(result), "ibis")
        return result

    def to_torch(self, expr: Any, /, **kwargs: Any) -> Any:
        wb = self._wb()
        names = _expr_tables(expr)
        wb._before_read(names)
        with wb._translate_errors(names), wb._hot(names):
            result = super().to_torch(expr, **kwargs)
        wb._audit_read(names, _rows(next(iter(result.values()), [])), "ibis")
        return result

    def to_pyarrow_batches(self, expr: Any, /, **kwargs: Any) -> pa.RecordBatchReader:
        wb = self._wb()
        names = _expr_tables(expr)
        wb._before_read(names)
        with wb._translate_errors(names):
            reader = super().to_pyarrow_batches(expr, **kwargs)

        def counted() -> Iterator[pa.RecordBatch]:
            rows = 0
            try:
                for batch in reader:
                    rows += batch.num_rows
                    yield batch
            finally:
                wb._audit_read(names, rows, "ibis-batches")

        return pa.RecordBatchReader.from_batches(reader.schema, counted())


def _expr_tables(expr: Any) -> list[str]:
    """Names of the lake tables an ibis expression reads."""
    try:
        return sorted({op.name for op in expr.op().find(ops.DatabaseTable)})
    except Exception:  # an exotic expression: audited as an unnamed read
        return []


def _rows(result: Any) -> int:
    """Row count of an engine result (a scalar counts as one row)."""
    if isinstance(result, pa.Table | pa.RecordBatch):
        return int(result.num_rows)
    if hasattr(result, "shape") and getattr(result, "ndim", 0) >= 1:
        return int(result.shape[0])
    try:
        return len(result)
    except TypeError:
        return 1


class Workbench:
    """A governed session over the lake for one user and one stated purpose.

    Public API: `datasets()`, `table(name)` (ibis), `sql(query)` (polars or Arrow),
    `polars(name)`, `refresh()`, `close()`. Nothing here exposes lake paths, keys or the
    DuckDB connection.
    """

    def __init__(
        self, gov: Governance, session: IdentitySession, purpose: str, *, owns: bool
    ) -> None:
        self._gov = gov
        self._owns = owns
        self._token = session.token
        self._session_id = f"s{session.session_id}"
        self.user: str = session.user_id
        self.purpose: str = purpose
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ibis: _AuditedBackend | None = None
        self._visible: dict[str, frozenset[str] | None] = {}
        self._hidden: dict[str, str] = {}
        self._scans: dict[str, Scan] = {}  # registered relation -> the scan behind it
        self._signature: tuple[object, ...] = ()
        self._build(self._gov.principal_of(session))
        self._emit(
            "session.connect",
            resource="session",
            decision="allow",
            reason=f"datasets {len(self._visible)}; hidden {len(self._hidden)}",
        )

    # -- building the views -----------------------------------------------------------------
    def _build(self, who: Principal) -> None:
        """(Re)build the locked connection with exactly the permitted data."""
        policy = self._gov.policy
        check = policy.check_purpose(who, self.purpose)
        if not check.allowed:
            self._deny("session", check.reason, action="session.connect")
        con = duckdb.connect(":memory:")
        try:
            backend = _AuditedBackend.from_connection(con)
            con.execute("SET python_enable_replacements = false")
            con.execute("SET temp_directory = ''")  # never spill decrypted data to disk
            visible: dict[str, frozenset[str] | None] = {}
            hidden: dict[str, str] = {}
            scans: dict[str, Scan] = {}
            lake = self._gov.lake
            for name in sorted(lake.registry):
                spec = lake.registry[name]
                access = policy.access(who, spec, self.purpose)
                if not access.allowed:
                    hidden[name] = access.reason
                    continue
                tenants = None if access.tenants is None else sorted(access.tenants)
                scan = lake.scan(name, tenants=tenants)
                source = f"{name}{VERSIONS_SUFFIX}" if spec.natural_key else name
                con.register(sql_name(source), scan.arrow_dataset())
                scans[sql_name(source)] = scan
                if spec.natural_key:
                    con.execute(
                        f'CREATE VIEW "{sql_name(name)}" AS {latest_state_sql(spec, source)}'
                    )
                visible[name] = access.tenants
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        backend._workbench = self
        old = self._con
        self._con, self._ibis = con, backend
        self._visible, self._hidden, self._scans = visible, hidden, scans
        self._signature = (who.roles, who.tenant, who.grants, policy.sha256)
        if old is not None:
            old.close()

    # -- audit helpers ----------------------------------------------------------------------
    def _emit(self, action: str, **fields: Any) -> str:
        return self._gov.emit(
            action,
            actor=self.user,
            session=self._session_id,
            purpose=self.purpose,
            request_id=uuid.uuid4().hex[:16],
            **fields,
        )

    def _deny(self, resource: str, reason: str, action: str = "data.read") -> None:
        """Audit a denial and raise AccessDenied with the reason (which says what to do)."""
        self._emit(action, resource=resource, decision="deny", reason=reason)
        raise AccessDenied(reason)

    def _audit_read(self, names: Sequence[str], rows: int, via: str) -> None:
        tenants: set[str] = set()
        every = False
        for n in names:
            scope = self._visible.get(n)
            if scope is None:
                every = every or n in self._visible
            else:
                tenants |= scope
        tenant = next(iter(tenants)) if len(tenants) == 1 and not every else ""
        scope_text = "all" if every else ",".join(sorted(tenants)) or "-"
        self._emit(
            "data.read",
            resource="dataset:" + "+".join(names) if names else "sql",
            tenant=tenant,
            decision="allow",
            row_count=rows,
            reason=f"via {via}; tenants {scope_text}",
        )

    # -- per-read checks --------------------------------------------------------------------
    def _before_read(self, names: Sequence[str]) -> None:
        """Re-validate the session, rebuild if rights changed, refuse hidden datasets."""
        if self._con is None:
            raise AccessDenied("this governed session is closed; connect again")
        try:
            session = self._gov.identity.validate_session(self._token)
        except SessionExpired as exc:
            self._deny("session", f"{exc} (amzigo login, or amzigo_lab.connect())")
        who = self._gov.principal_of(session)
        if (who.roles, who.tenant, who.grants, self._gov.policy.sha256) != self._signature:
            self._build(who)
            self._emit("session.refreshed", resource="session", reason="roles or grants changed")
        for name in names:
            self._require_visible(name)

    def _require_visible(self, name: str) -> None:
        if name in self._visible:
            return
        if name in self._hidden:
            self._deny(f"dataset:{name}", self._hidden[name])
        base = name.removesuffix(VERSIONS_SUFFIX)
        if base in self._hidden:
            self._deny(f"dataset:{base}", self._hidden[base])

    def _unknown(self, name: str) -> str:
        """The message for a dataset name this session cannot see: the nearest names it can
        read first (a typo), then datasets(). Hidden datasets are never suggested."""
        import difflib

        near = difflib.get_close_matches(name, sorted(self._visible), n=2, cutoff=0.75)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        return f"unknown dataset {name!r}{hint}; this session can read: {self.datasets()}"

    def _translate_errors(self, names: Sequence[str]) -> _ErrorTranslator:
        return _ErrorTranslator(self, names)

    @contextlib.contextmanager
    def _hot(self, names: Sequence[str]) -> Iterator[None]:
        """For one read: the hot cache's tables of the relations `names` reads (when the
        process enabled a cache and they fit it) instead of the decrypting datasets, swapped
        back before returning, so the connection never keeps decrypted data between reads.
        A relation the read does not name (or the cache cannot load) reads the dataset."""
        cache = cache_of(self._gov.lake)
        con = self._con
        swapped: list[str] = []
        try:
            if cache is not None and con is not None:
                for source in self._sources_of(names):
                    try:
                        table = cache.table_for(self._scans[source])
                    except (OSError, pa.ArrowException):  # e.g. a file dropped since the
                        table = None  # build: the dataset reports it as without a cache
                    if table is not None:
                        con.register(source, table)
                        swapped.append(source)
                        del table
            yield
        finally:
            assert con is not None or not swapped
            for source in swapped:
                con.register(source, self._scans[source].arrow_dataset())  # type: ignore[union-attr]

    def _sources_of(self, names: Sequence[str]) -> list[str]:
        """The registered relations behind dataset names (a view reads its versions)."""
        out: set[str] = set()
        for name in names:
            base = name.removesuffix(VERSIONS_SUFFIX)
            if base not in self._visible:
                continue
            for source in (f"{base}{VERSIONS_SUFFIX}", base):
                if sql_name(source) in self._scans:
                    out.add(sql_name(source))
                    break
        return sorted(out)

    # -- public API -------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """The datasets this session may read (latest state per natural key)."""
        return sorted(self._visible)

    def tenants(self, dataset: str) -> list[str] | None:
        """The tenants visible in `dataset` (None: every tenant)."""
        self._require_visible(dataset)
        if dataset not in self._visible:
            raise UnknownDataset(self._unknown(dataset))
        scope = self._visible[dataset]
        return None if scope is None else sorted(scope)

    def table(self, name: str) -> ir.Table:
        """An ibis table over the governed view `name` (executing it is audited)."""
        self._before_read([name])
        if name not in self._visible and name.removesuffix(VERSIONS_SUFFIX) not in self._visible:
            raise UnknownDataset(self._unknown(name))
        assert self._ibis is not None
        return self._ibis.table(name)

    def relations(self) -> dict[str, pa.Schema]:
        """The Arrow schema of every relation this session can query (views and versions)."""
        self._before_read([])
        assert self._con is not None
        names = [*self._visible]
        names += [
            f"{n}{VERSIONS_SUFFIX}" for n in self._visible if self._gov.lake.spec(n).natural_key
        ]
        return {
            n: self._con.sql(f'SELECT * FROM "{sql_name(n)}" LIMIT 0').to_arrow_table().schema  # noqa: S608
            for n in sorted(names)
        }

    def sql(self, query: str, *, arrow: bool = False, via: str = "sql") -> pl.DataFrame | pa.Table:
        """Run one SELECT over the governed views; a polars DataFrame (Arrow with arrow=True)."""
        names = self._referenced(query)
        self._before_read(names)
        assert self._con is not None
        try:
            statements = self._con.extract_statements(query)
        except duckdb.Error:
            statements = None  # let DuckDB report the syntax error below
        if statements is not None and (
            len(statements) != 1 or statements[0].type not in _ALLOWED_STATEMENTS
        ):
            self._deny(
                "sql",
                "only one SELECT (or EXPLAIN) statement per call is allowed in a governed "
                "session; changing settings, files or extensions is refused",
            )
        with self._translate_errors(names), self._hot(names):
            table = self._con.sql(query).to_arrow_table()
        self._audit_read(names, table.num_rows, via)
        if arrow:
            return table
        import polars as pl

        return pl.from_arrow(table)

    def polars(self, name: str) -> pl.DataFrame:
        """The whole governed view `name` as a polars DataFrame."""
        self._before_read([name])
        if name not in self._visible:
            raise UnknownDataset(
                f"unknown dataset {name!r}; this session can read: {self.datasets()}"
            )
        assert self._con is not None
        with self._translate_errors([name]), self._hot([name]):
            frame = self._con.sql(f'SELECT * FROM "{sql_name(name)}"').pl()  # noqa: S608
        self._audit_read([name], frame.height, "polars")
        return frame

    def refresh(self) -> None:
        """Rebuild the views (new partitions, changed grants or policy)."""
        session = self._gov.identity.validate_session(self._token)
        self._gov.policy = self._gov.load_policy()
        self._build(self._gov.principal_of(session))
        self._emit("session.refreshed", resource="session", reason="refresh requested")

    def close(self) -> None:
        """End the session's connection (the login session stays valid until logout)."""
        if self._con is None:
            return
        self._con.close()
        self._con = None
        if self._ibis is not None:
            self._ibis._workbench = None
        self._emit("session.closed", resource="session")
        if self._owns:
            self._gov.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workbench user={self.user} purpose={self.purpose} datasets={self.datasets()}>"

    def _referenced(self, query: str) -> list[str]:
        """Dataset names a query mentions (for the audit record and early denials)."""
        try:
            import sqlglot
            from sqlglot import exp

            tree = sqlglot.parse_one(query, dialect="duckdb")
        except Exception:
            return []
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        known = set(self._visible) | set(self._hidden)
        found = set()
        for t in tree.find_all(exp.Table):
            name = t.name
            base = name.removesuffix(VERSIONS_SUFFIX)
            if name in ctes:
                continue
            if name in known or base in known:
                found.add(name)
        return sorted(found)


class _ErrorTranslator:
    """Turns engine refusals into audited AccessDenied errors (no query text in the audit)."""

    def __init__(self, wb: Workbench, names: Sequence[str]) -> None:
        self._wb = wb
        self._names = names

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, duckdb.PermissionException):
            self._wb._deny("sql", _FILE_DENIED)
        if isinstance(exc, duckdb.InvalidInputException) and "configuration has been locked" in str(
            exc
        ):
            self._wb._deny("sql", "settings are locked in governed sessions")
        if isinstance(exc, duckdb.CatalogException):
            for name in self._wb._hidden:
                if f"{name}" in str(exc):
                    self._wb._deny(f"dataset:{name}", self._wb._hidden[name])


def login(gov: Governance, user: str, password: str, code: str) -> IdentitySession:
    """Password + TOTP login; returns the new identity session (its token is the secret)."""
    return gov.identity.authenticate(user, password, code)


def connect(
    purpose: str,
    home: str | os.PathLike[str] | Settings | None = None,
    user: str | None = None,
    token: str | None = None,
    *,
    password: str | None = None,
    code: str | None = None,
    hasher: PasswordHasher | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Workbench:
    """Open a governed session for `purpose`.

    Credentials, in order: `token`, then $AMZIGO_SESSION (from `amzigo login`), then
    `password` + `code` given by a login form, else an interactive prompt (user, password
    via getpass, TOTP code). Example::

        import amzigo_lab
        wb = amzigo_lab.connect(purpose="sales_analysis")
        wb.datasets()
        wb.sql("SELECT tenant, count(*) FROM orders GROUP BY ALL")
    """
    from amzigo_lab.config import Settings
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.governance.identity import utc_now

    settings_or_home = home if isinstance(home, Settings) else (None if home is None else str(home))
    gov = Governance.open(settings_or_home, hasher=hasher, clock=clock or utc_now)
    try:
        token = token or os.environ.get(SESSION_ENV) or None
        if token:
            try:
                session = gov.identity.validate_session(token)
            except SessionExpired as exc:
                raise AccessDenied(f"{exc}: run `amzigo login NAME`") from None
            if user is not None and session.user_id != user:
                raise AccessDenied(
                    f"the session token belongs to another user than {user!r}; unset "
                    f"{SESSION_ENV} or log in as {user}"
                )
        else:
            name = user or input("amzigo user: ").strip()
            secret = password if password is not None else getpass.getpass("password: ")
            otp = code if code is not None else input("authenticator code: ").strip()
            session = login(gov, name, secret, otp)
        return Workbench(gov, session, purpose, owns=True)
    except (IdentityError, BaseException):
        gov.close()
        raise
