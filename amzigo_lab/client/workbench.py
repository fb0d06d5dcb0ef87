"""`connect()` and the analyst's `Workbench`: a client of the gateway that holds no key.

The governed session runs inside the gateway (`amzigo_lab.governance.session`); this process
only has a token. `table(name)` returns a lazy ibis table: ibis compiles the expression to SQL
here and the gateway runs it over the views the policy built for this user and purpose, audits
it, and returns Arrow. Nothing from the lake is ever registered in this process: the local
DuckDB holds only empty, typed stand-ins that raise when something tries to read them locally
(so a local `to_parquet` or `raw_sql` cannot silently return nothing). The ibis backend
(`amzigo_lab.client.remote_backend`) is imported when a session opens, not with this module.
"""

from __future__ import annotations

import base64
import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from amzigo_lab.client import protocol
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.errors import AccessDenied, UnknownDataset
from amzigo_lab.names import sql_name

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import polars as pl
    import pyarrow as pa

    from amzigo_lab.client.remote_backend import RemoteBackend
    from amzigo_lab.config import Settings

T = TypeVar("T")
SESSION_ENV = "AMZIGO_SESSION"
_GUARD = (
    "this table lives in the amzigo gateway: materialise it with .execute(), .to_pyarrow(), "
    ".to_polars() or wb.sql(...); local engine access is not possible"
)


def schema_from_b64(text: str) -> pa.Schema:
    """An Arrow schema sent by the gateway."""
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def schema_to_b64(schema: pa.Schema) -> str:
    """An Arrow schema for the wire."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


class Workbench:
    """A governed session for one user and one stated purpose, served by the gateway.

    Public API: `datasets()`, `tenants(name)`, `table(name)` (ibis), `sql(query)` (polars, or
    Arrow with arrow=True), `polars(name)`, `refresh()`, `close()`. It holds a token, never a
    key, a path into the lake or an engine connection to it.
    """

    def __init__(
        self,
        client: GatewayClient,
        purpose: str,
        reconnect: Callable[[], GatewayClient] | None = None,
    ) -> None:
        self._client = client
        self._reconnect = reconnect
        self.purpose: str = purpose
        self.user: str = ""
        self._handle = ""
        self._schemas: dict[str, pa.Schema] = {}
        self._datasets: list[str] = []
        self._ibis: RemoteBackend | None = None
        self._open()

    # -- the gateway session -----------------------------------------------------------------
    def _open(self) -> None:
        info = self._client.action(protocol.SESSION_OPEN, {"purpose": self.purpose})
        self._adopt(info)

    def _adopt(self, info: dict[str, Any]) -> None:
        self._handle = str(info["handle"])
        self.user = str(info["user"])
        self._datasets = sorted(info["datasets"])
        self._schemas = {name: schema_from_b64(s) for name, s in info["schemas"].items()}
        self._build_backend()

    def _build_backend(self) -> None:
        import duckdb
        import pyarrow as pa

        from amzigo_lab.client.remote_backend import RemoteBackend  # ibis: on first use

        con = duckdb.connect(":memory:")
        for i, (name, schema) in enumerate(self._schemas.items()):
            view, empty = sql_name(name), f"_empty_{i}"
            con.register(empty + "_arrow", pa.Table.from_batches([], schema))
            con.execute(f'CREATE TABLE "{empty}" AS SELECT * FROM "{empty}_arrow"')  # noqa: S608
            con.unregister(empty + "_arrow")
            con.execute(
                f'CREATE VIEW "{view}" AS SELECT "{empty}".* FROM (SELECT 1 AS one) g '  # noqa: S608
                f"LEFT JOIN \"{empty}\" ON true WHERE error('{_GUARD}') IS NULL"
            )
        backend = RemoteBackend.from_connection(con)
        backend._workbench = self
        old, self._ibis = self._ibis, backend
        if old is not None:
            old._workbench = None
            old.con.close()

    def _retrying(self, call: Callable[[], T]) -> T:
        """Run `call`; if the gateway restarted (or stopped and may be started on demand),
        re-open the session with the same token and purpose once and run it again."""
        if not self._handle:
            raise AccessDenied("this governed session is closed; connect again")
        try:
            return call()
        except protocol.GatewayUnavailable:
            if self._reconnect is None:
                raise
            self._client.close()
            self._client = self._reconnect()
        except protocol.GatewayProtocolError as exc:
            if "unknown session handle" not in str(exc):
                raise
        self._open()
        return call()

    def _call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._retrying(
            lambda: self._client.action(name, {"handle": self._handle, **payload})
        )

    def _run(self, query: str, *, via: str) -> pa.Table:
        ticket = {"op": protocol.TICKET_SQL, "query": query, "via": via}
        return self._retrying(lambda: self._client.table({**ticket, "handle": self._handle}))

    # -- public API ----------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """The datasets this session may read (latest state per natural key)."""
        return list(self._datasets)

    def tenants(self, dataset: str) -> list[str] | None:
        """The tenants visible in `dataset` (None: every tenant)."""
        answer = self._call(protocol.SESSION_TENANTS, {"dataset": dataset})
        tenants = answer.get("tenants")
        return None if tenants is None else [str(t) for t in tenants]

    def table(self, name: str) -> ir.Table:
        """A lazy ibis table over the governed view `name` (executing it is audited)."""
        if name not in self._schemas:
            self._call(protocol.SESSION_TENANTS, {"dataset": name})  # audited denial, or:
            raise UnknownDataset(
                f"unknown dataset {name!r}; this session can read: {self.datasets()}"
            )
        assert self._ibis is not None
        return self._ibis.table(name)

    def sql(self, query: str, *, arrow: bool = False) -> pl.DataFrame | pa.Table:
        """Run one SELECT over the governed views; a polars DataFrame (Arrow with arrow=True)."""
        table = self._run(query, via="sql")
        if arrow:
            return table
        import polars as pl

        return pl.from_arrow(table)

    def polars(self, name: str) -> pl.DataFrame:
        """The whole governed view `name` as a polars DataFrame."""
        if name not in self._datasets:
            self._call(protocol.SESSION_TENANTS, {"dataset": name})
            raise UnknownDataset(
                f"unknown dataset {name!r}; this session can read: {self.datasets()}"
            )
        import polars as pl

        frame = pl.from_arrow(self._run(f'SELECT * FROM "{name}"', via="polars"))  # noqa: S608
        assert isinstance(frame, pl.DataFrame)
        return frame

    def refresh(self) -> None:
        """Rebuild the views (new partitions, changed grants or policy)."""
        self._adopt(self._call(protocol.SESSION_REFRESH, {}))

    def close(self) -> None:
        """End the session in the gateway (the login session stays valid until logout)."""
        if not self._handle:
            return
        try:
            self._client.action(protocol.SESSION_CLOSE, {"handle": self._handle})
        except (protocol.GatewayError, AccessDenied):
            pass  # the gateway is gone or the handle expired: nothing left to close
        finally:
            self._handle = ""
            if self._ibis is not None:
                self._ibis._workbench = None
            self._client.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workbench user={self.user} purpose={self.purpose} datasets={self.datasets()}>"


def login(address: str, user: str, password: str, code: str) -> str:
    """Password + TOTP login at the gateway; the new session token (a secret)."""
    with GatewayClient(address) as client:
        answer = client.action(protocol.LOGIN, {"user": user, "password": password, "code": code})
    return str(protocol.check_login_answer(answer)["token"])


def connect(
    purpose: str,
    home: str | os.PathLike[str] | Settings | None = None,
    user: str | None = None,
    token: str | None = None,
    *,
    password: str | None = None,
    code: str | None = None,
    address: str | None = None,
) -> Workbench:
    """Open a governed session for `purpose`, served by the home's gateway.

    Credentials, in order: `token`, then $AMZIGO_TOKEN (set by the lab server for its kernels),
    then $AMZIGO_SESSION (from `amzigo login`), then `password` + `code`, else an interactive
    prompt (user, password via getpass, TOTP code). Example::

        import amzigo_lab
        wb = amzigo_lab.connect(purpose="sales_analysis")
        wb.datasets()
        wb.sql("SELECT tenant, count(*) FROM orders GROUP BY ALL")
    """
    reconnect: Callable[[], GatewayClient] | None = None
    if address is None:  # the home's gateway ($AMZIGO_GATEWAY, or started on demand)
        where = home_path(home)
        address = ensure_gateway(where)
        reconnect = lambda: GatewayClient(ensure_gateway(where), token)  # noqa: E731
    token = token or os.environ.get(protocol.TOKEN_ENV) or os.environ.get(SESSION_ENV) or None
    if not token:
        name = user or input("amzigo user: ").strip()
        secret = password if password is not None else getpass.getpass("password: ")
        otp = code if code is not None else input("authenticator code: ").strip()
        token = login(address, name, secret, otp)
    client = GatewayClient(address, token)
    try:
        wb = Workbench(client, purpose, reconnect)
    except BaseException:
        client.close()
        raise
    if user is not None and wb.user != user:
        wb.close()
        raise AccessDenied(
            f"the session token belongs to another user than {user!r}; unset {SESSION_ENV} or "
            f"log in as {user}"
        )
    return wb


def home_path(home: str | os.PathLike[str] | Settings | None) -> Path:
    """The home folder named by `home`, $AMZIGO_HOME or the default (no file is read)."""
    from amzigo_lab.config import Settings, resolve_home

    if isinstance(home, Settings):
        return home.home.resolve()
    return resolve_home(None if home is None or not str(home) else Path(home))
