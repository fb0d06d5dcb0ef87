"""The gateway's Flight server: the one process that opens keys, catalog, lake, identity, audit.

Every governed read runs here, in the governed session (`amzigo_lab.governance.session`) or, for
services, through `ServiceReader`; clients get Arrow and never a key or a path. All work on the
home runs on ONE worker thread (SQLite connections, the DuckDB sessions and the audit writer
are used from that thread only); Flight's own threads only parse requests and stream results.

Actions and tickets are listed in `amzigo_lab.client.protocol`. Refusals are audited
(`gateway.denied`), as are service-token mints and revocations (`gateway.token`).
Administrative actions (`users.*`, `admin.authorize`) act as the session's user, checked for
a policy right or role (denials audited by Governance), or, for the operator credential with a
reason, as `break-glass:<os user>` (audited as `admin.break_glass`; alerts delivered at once).
The CLI's client commands (`lake ls`, `hold ...`, `dsr ...`, `certificate ...`, `users list`,
`audit search`, `alerts`, ...) are actions of the same kind, in `amzigo_lab.gateway.commands`.

The gateway keeps decrypted lake files in its hot cache (`lake/hot_cache.py`, budget
`hot_cache_mb`, 0 turns it off): governed sessions and `latest` tickets register cached tables
for one read only. A drop run by another process (`amzigo purge`, `doctor --fix`) that finds
the cache holding entries asks `hot_cache.release` (operator credential, audited as
`gateway.hot_cache`): the cache is emptied on the home thread, and nothing is cached again
until the drop's intent lock is released.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.flight as flight

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError, QueryError
from amzigo_lab.client.workbench import schema_to_b64
from amzigo_lab.errors import AccessDenied, AmzigoError, UnknownTenant
from amzigo_lab.gateway.calls import KERNEL_PREFIX, Calls
from amzigo_lab.gateway.tokens import ServiceGrant, ServiceTokens, same_secret
from amzigo_lab.gateway.tokens import digest as _digest
from amzigo_lab.governance.identity.errors import IdentityError, PasswordChangeRequired
from amzigo_lab.governance.tenants import require_known_tenant
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from amzigo_lab.config import Settings
    from amzigo_lab.gateway.bulk import BulkResults
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.governance.session import Workbench

T = TypeVar("T")
LOG = logging.getLogger("amzigo.gateway")
#: Rows per record batch on the wire. DuckDB hands over batches of up to ~1M rows (tens of MB);
#: one gRPC message each serialises, sends and decodes one after the other. Zero-copy slices of
#: 64k rows let the two sides overlap: about 1.5x the throughput over the Unix socket.
STREAM_ROWS = 65_536
SERVICE_WHY = {
    "svc:reports": "report run by amzigo report / the scheduler; token minted for one tenant",
    "svc:dashboard": "seller dashboard; tenant from the logged-in user's record",
}


class _Bearer(flight.ServerMiddleware):
    def __init__(self, token: str) -> None:
        self.token = token


class _BearerFactory(flight.ServerMiddlewareFactory):
    """Reads `authorization: Bearer <token>`; the handlers decide what the token may do."""

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Bearer:
        values = headers.get("authorization") or headers.get("Authorization") or [""]
        value = values[0] if values else ""
        token = value[7:].strip() if value.lower().startswith("bearer ") else ""
        return _Bearer(token)


@dataclass
class _Handle:
    """A governed session opened by one login token."""

    token_digest: str
    workbench: Workbench
    last_used: float = field(default_factory=time.monotonic)


class GatewayServer(flight.FlightServerBase):
    """Serves one home. Construct, then the caller waits; `stop()` shuts it down gracefully."""

    def __init__(
        self,
        settings: Settings,
        location: str,
        *,
        operator_token: str,
        clock: Callable[[], dt.datetime] | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        from amzigo_lab.governance.context import Governance
        from amzigo_lab.governance.identity import utc_now

        self.settings = settings
        #: Large results to local clients (`gateway/bulk.py`); set by `gateway.run`, else none.
        self.bulk: BulkResults | None = None
        self._clock = clock or utc_now
        self._work = ThreadPoolExecutor(1, thread_name_prefix="amzigo-governance")
        self._gov: Governance = self._work.submit(
            lambda: Governance.open(settings, hasher=hasher, clock=self._clock)
        ).result()
        self._con = self._work.submit(duckdb.connect).result()
        self._hot = self._work.submit(self._enable_hot_cache).result()
        self._handles: dict[str, _Handle] = {}
        self._policy_stamp: tuple[int, int] | None = None
        from amzigo_lab.governance.incidents import IncidentStore

        self._incidents = self._work.submit(lambda: IncidentStore(self._gov)).result()
        #: what every action works with: the home, the token tables, the checks of a caller
        self.calls = Calls(
            settings, self._gov, self._con, self._clock, operator_token, self._incidents,
            reload_policy=self._reload_policy_if_changed, deliver_alerts=self._deliver_alerts,
        )  # fmt: skip
        from amzigo_lab.gateway.scale import ScaleKeys

        self.scale = ScaleKeys(self.calls)  # job tokens and KEK unwrapping for Spark and Dask
        self._alerts = self._alert_pipeline()
        self.started = time.monotonic()
        #: the folder this gateway opened (protocol.home_identity): clients ignore a gateway
        #: whose home was deleted and created again at the same path
        self.home_id = protocol.home_identity(settings.home)
        self.last_request = time.monotonic()
        self.stopping = threading.Event()
        self.stopped = threading.Event()  # set once `stop` has closed the home
        self._stop_lock = threading.Lock()
        self._actions: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            protocol.LOGIN: self._login,
            protocol.LOGIN_CHANGE_PASSWORD: self._login_change_password,
            protocol.SESSION_OPEN: self._session_open,
            protocol.SESSION_TENANTS: self._session_tenants,
            protocol.SESSION_REFRESH: self._session_refresh,
            protocol.SESSION_CLOSE: self._session_close,
            protocol.SESSION_CHECK: self._session_check,
            protocol.SESSION_END: self._session_end,
            protocol.AUDIT_EMIT: self._audit_emit,
            protocol.SELLER_BINDING: self._seller_binding,
            protocol.KERNEL_MINT: self._kernel_mint,
            protocol.KERNEL_REVOKE: self._kernel_revoke,
            protocol.SERVICE_MINT: self._service_mint,
            protocol.SERVICE_REVOKE: self._service_revoke,
            protocol.SERVICE_OBJECTIONS: self._service_objections,
            protocol.OUTPUTS_REGISTER: self._outputs_register,
            protocol.ADMIN_AUTHORIZE: self._admin_authorize,
            protocol.USERS_ADD: self._users_add,
            protocol.USERS_GRANT: self._users_grant,
            protocol.USERS_DISABLE: self._users_state("disable"),
            protocol.USERS_ENABLE: self._users_state("enable"),
            protocol.USERS_UNLOCK: self._users_state("unlock"),
            protocol.USERS_PASSWD: self._users_passwd,
            protocol.SCALE_PLAN: self.scale.plan,
            protocol.SCALE_REVOKE: self.scale.revoke,
            protocol.HOT_CACHE_RELEASE: self._hot_cache_release,
        }
        from amzigo_lab.gateway.commands import handlers
        from amzigo_lab.gateway.incident_actions import handlers as incident_handlers
        from amzigo_lab.gateway.policy_actions import handlers as policy_handlers

        self._actions.update(handlers(self.calls))  # the CLI's client commands
        self._actions.update(incident_handlers(self.calls))  # amzigo incident ...
        self._actions.update(policy_handlers(self.calls))  # amzigo policy ...
        # Listen only now: the Flight server answers as soon as it is constructed, and a client
        # that saw a healthy gateway must find every action (not "unknown action" while the
        # action modules above are still being imported).
        super().__init__(location, middleware={"auth": _BearerFactory()})

    # -- plumbing ------------------------------------------------------------------------------
    def _on_home(self, fn: Callable[[], T], what: str) -> T:
        """Run `fn` on the home's worker thread; map failures to Flight errors for the client."""
        if self.stopping.is_set():
            raise flight.FlightUnavailableError(
                "the gateway is shutting down; retry in a moment",
                extra_info=protocol.error_info(
                    protocol.GatewayUnavailable("the gateway is shutting down; retry in a moment")
                ),
            )
        self.last_request = time.monotonic()

        def fresh() -> T:
            self._reload_policy_if_changed()
            try:
                return fn()
            finally:
                self.scale.after_call()  # jobs whose partitions this call dropped end now

        try:
            return self._work.submit(fresh).result()
        except (AccessDenied, IdentityError) as exc:
            _log("refused", what=what, error=type(exc).__name__)
            raise flight.FlightUnauthorizedError(
                str(exc), extra_info=protocol.error_info(exc)
            ) from None
        except duckdb.Error as exc:
            _log("query_error", what=what, error=type(exc).__name__)
            wrapped = QueryError(str(exc))
            raise flight.FlightServerError(
                str(wrapped), extra_info=protocol.error_info(wrapped)
            ) from None
        except AmzigoError as exc:
            _log("error", what=what, error=type(exc).__name__)
            raise flight.FlightServerError(str(exc), extra_info=protocol.error_info(exc)) from None
        except Exception as exc:
            ref = uuid.uuid4().hex[:12]
            LOG.exception("internal error ref=%s in %s", ref, what)
            internal = protocol.GatewayError(
                f"internal error in the gateway (reference {ref}); the operator's gateway log "
                "has the details"
            )
            raise flight.FlightInternalError(
                str(internal), extra_info=protocol.error_info(internal)
            ) from exc

    def _reload_policy_if_changed(self) -> None:
        """(Home thread.) Load the home's policy.toml again when it changed on disk (audited
        as `policy.changed` by Governance); sessions rebuild their views on their next read."""
        path = self.settings.home / "policy.toml"
        try:
            st = path.stat()
            stamp: tuple[int, int] = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._policy_stamp:
            if self._policy_stamp is not None:
                self._gov.policy = self._gov.load_policy()
            self._policy_stamp = stamp

    def _check_mode(self, action: str) -> None:
        """(Home thread.) Refuse, audited, what an incident's gateway mode does not allow:
        deny-all leaves login, responders' incident and audit actions and revocations;
        read-only refuses actions that change data, users or credentials. Read from the
        incident table on every call (one MAC'd row): a forged row fails closed."""
        mode = self._incidents.mode()
        if mode == "normal":
            return
        if mode == "deny-all":
            allowed = action in protocol.DENY_ALL_ALLOWED or action.startswith("incident.")
        else:
            allowed = action not in protocol.READ_ONLY_REFUSED
        if not allowed:
            self.calls.deny(
                f"the gateway is in {mode} mode (incident isolation): {action} is "
                "refused until a responder runs `amzigo incident restore`",
                action,
            )

    # -- Flight entry points -------------------------------------------------------------------
    def do_action(self, context: Any, action: Any) -> list[Any]:
        name = str(action.type)
        if name == protocol.HEALTH:
            return [flight.Result(protocol.encode(self.health()))]
        token = context.get_middleware("auth").token
        if name == protocol.SHUTDOWN:
            self._on_home(lambda: self.calls.require_operator(token, name), name)
            threading.Thread(target=self.stop, daemon=True).start()
            return [flight.Result(protocol.encode({"stopping": True}))]
        handler = self._actions.get(name)
        if handler is None:
            raise flight.FlightServerError(
                f"unknown action {name!r}",
                extra_info=protocol.error_info(GatewayProtocolError(f"unknown action {name!r}")),
            )
        body = action.body.to_pybytes() if action.body is not None else b""

        def run() -> dict[str, Any]:
            self._check_mode(name)
            return handler(token, protocol.decode(body))

        return [flight.Result(protocol.encode(self._on_home(run, name)))]

    def do_get(self, context: Any, ticket: Any, *, local: bool = True) -> Any:
        token = context.get_middleware("auth").token
        body = ticket.ticket
        wants_bulk = False

        def run() -> pa.Table:
            nonlocal wants_bulk
            self._check_mode(protocol.TICKET_SQL)
            request = protocol.decode(body)
            wants_bulk = request.get("bulk") == 1
            op = request.get("op")
            if op == protocol.TICKET_SQL:
                return self._sql(token, request)
            if op == protocol.TICKET_LATEST:
                return self._latest(token, request)
            raise GatewayProtocolError(f"unknown ticket op {op!r}")

        table = self._on_home(run, "do_get")
        if local and wants_bulk and self.bulk is not None:
            key = self.bulk.offer(table)  # a large result: the client fetches it (bulk.py)
            if key is not None:
                schema = table.schema.with_metadata(
                    {**(table.schema.metadata or {}), protocol.BULK_META_KEY: key.encode()}
                )
                return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(schema, []))
        batches = table.to_batches(max_chunksize=STREAM_ROWS)
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(table.schema, batches))

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [(protocol.HEALTH, "liveness and readiness"), *((a, "") for a in self._actions)]

    # -- health and lifecycle ------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Liveness and readiness (no secret, no personal data)."""
        return {
            "status": "stopping" if self.stopping.is_set() else "ok",
            "ready": not self.stopping.is_set(),
            "pid": os.getpid(),
            "home": str(self.settings.home),
            "home_id": self.home_id,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "sessions": len(self._handles),
            "service_tokens": len(self.calls.tokens),
            "jobs": len(self.scale.jobs),
            "hot_cache": self._hot.stats() if self._hot is not None else {"budget_bytes": 0},
        }

    def stop(self) -> None:
        """Graceful shutdown: refuse new calls, let running ones finish, close the home.

        A second caller returns only once the first has finished: the SHUTDOWN action stops
        from a thread of its own while the main loop, seeing the gateway stopping, calls this
        too and then lets the process exit. Returning at once there killed the stopping thread
        (a daemon) midway: the home half closed, and the SHUTDOWN answer sometimes never sent
        (its caller got "no gateway answers")."""
        with self._stop_lock:
            first = not self.stopping.is_set()
            self.stopping.set()
        if not first:
            self.stopped.wait()
            return
        try:
            self._stop()
        finally:
            self.stopped.set()

    def _stop(self) -> None:
        _log("stopping")
        self.shutdown()  # waits for in-flight calls
        if self.bulk is not None:
            self.bulk.close()  # results not yet fetched are dropped with it

        def close_all() -> None:
            with contextlib.suppress(Exception):  # audited best-effort: stopping anyway
                self.scale.stop()
            for handle in list(self._handles.values()):
                with contextlib.suppress(Exception):  # closing anyway
                    handle.workbench.close()
            self._handles.clear()
            from amzigo_lab.lake import hot_cache

            hot_cache.disable(self._gov.lake)
            self._con.close()
            self._incidents.close()
            self._gov.close()

        self._work.submit(close_all).result()
        self._work.shutdown(wait=True)
        _log("stopped")

    def tick_audit(self) -> bool:
        """Write the audit log's time-based checkpoint if one is due (and anchor it); True if
        one was written. The gateway is the long-running process that owns the log."""

        def run() -> bool:
            return self._gov.audit_log.tick() is not None

        try:
            return self._work.submit(run).result()
        except Exception as exc:  # logged; the next append or tick tries again
            _log("audit_tick_failed", error=type(exc).__name__)
            return False

    # -- alerts: evaluated where the events are written (amzigo_lab.governance.alerting) --------
    def _alert_pipeline(self) -> Any:
        from amzigo_lab.governance.alerting import AlertPipeline
        from amzigo_lab.governance.incidents import auto_open, auto_open_rules

        pipeline = AlertPipeline()
        pipeline.attach(self._gov)  # security-relevant events make it due at once

        def open_incidents(alerts: list[Any]) -> None:
            try:
                opened = auto_open(self._incidents, alerts)
            except Exception as exc:  # logged; delivery goes on, the next run tries again
                _log("incident_auto_open_failed", error=type(exc).__name__)
                LOG.debug("auto-open failed", exc_info=True)
                return
            if opened:
                _log("incident_auto_opened", incidents=sorted(set(opened)))

        def wanted(gov: Governance) -> bool:
            try:
                return bool(auto_open_rules(gov)[0])
            except Exception as exc:  # a bad [incident] section: logged, alerts go on
                _log("incident_config_invalid", error=type(exc).__name__)
                return False

        pipeline.on_alerts.append(open_incidents)
        pipeline.wants_alerts = wanted
        return pipeline

    def tick_alerts(self) -> bool:
        """Evaluate the rules and deliver (with retries) if due; cheap when not. True if it ran.
        Called from the gateway's timer loop every half second."""
        if self.stopping.is_set() or not self._alerts.due():
            return False

        def run() -> None:
            report = self._alerts.run(self._gov)
            if report.attempted:
                _log("alerts_delivered", sent=len(report.sent), failures=len(report.failed))

        try:
            self._work.submit(run).result()
        except Exception as exc:  # logged; the next tick tries again
            _log("alerts_failed", error=type(exc).__name__)
        return True

    def reap(self, max_idle: float) -> int:
        """Close governed sessions unused for `max_idle` seconds; how many."""

        def run() -> int:
            now = time.monotonic()
            stale = [h for h, v in self._handles.items() if now - v.last_used > max_idle]
            for h in stale:
                self._handles.pop(h).workbench.close()
            self.scale.housekeeping()  # expired jobs audited, jobs whose scope was dropped end
            return len(stale)

        return self._work.submit(run).result()

    # -- the hot cache -------------------------------------------------------------------------
    def _enable_hot_cache(self) -> Any:
        """(Home thread.) Turn the lake's hot cache on with the configured budget (None: off)."""
        from amzigo_lab.lake import hot_cache

        budget = self.settings.hot_cache_bytes
        if budget <= 0:
            return None
        return hot_cache.enable(self._gov.lake, budget)

    def _hot_cache_release(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """(Home thread, operator credential.) Empty the hot cache for another process's drop.
        Sessions hold no cached table between reads, so this frees every decrypted copy; the
        drop's intent lock keeps anything from being cached again until it ends. Audited."""
        self.calls.require_operator(token, protocol.HOT_CACHE_RELEASE)
        why = re.sub(r"[^A-Za-z0-9 ._:-]", "_", str(body.get("reason") or "a drop"))[:80]
        os_user = re.sub(r"[^A-Za-z0-9._@-]", "_", str(body.get("os_user") or "unknown"))[:64]
        files = nbytes = 0
        if self._hot is not None:
            stats = self._hot.stats()
            files, nbytes = int(stats["files"]), int(stats["bytes"])
            self._hot.clear()
        self._gov.emit(
            "gateway.hot_cache",
            actor=f"operator:{os_user}",
            resource="hot_cache",
            decision="allow",
            reason=f"emptied for {why}: {files} file(s), {nbytes} bytes; no caching until "
            "the drop ends",
        )
        return {"released_files": files, "released_bytes": nbytes}

    # -- authentication ------------------------------------------------------------------------
    def _session_check(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Whether a login or kernel token is still good; refreshes the idle timer only when
        asked (`touch`: a request by the user, not a background check)."""
        touch = body.get("touch", False) is True
        return _describe_session(
            self.calls.user_session(token, protocol.SESSION_CHECK, touch=touch)
        )

    def _session_end(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """End the caller's own login session (logout, or a role the server does not admit)."""
        reason = str(body.get("reason", "logout"))
        if reason not in ("logout", "role_not_allowed") or token.startswith(KERNEL_PREFIX):
            raise GatewayProtocolError("session.end takes a login token and reason logout")
        return {"ended": self._gov.identity.revoke_session(token, reason=reason)}

    def _audit_emit(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """An audit event from a web server (operator credential; the servers' own actions)."""
        self.calls.require_operator(token, protocol.AUDIT_EMIT)
        action = str(body.get("action", ""))
        if not _SERVER_ACTION.fullmatch(action):
            raise GatewayProtocolError(f"servers may not write {action!r} audit events")
        fields = body.get("fields") or {}
        allowed = {k: v for k, v in fields.items() if k in _SERVER_FIELDS}
        return {"id": self._gov.emit(action, **allowed)}

    def _seller_binding(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The tenant a seller's dashboard is bound to, or why there is none (operator)."""
        from amzigo_lab.governance.service import seller_tenant

        self.calls.require_operator(token, protocol.SELLER_BINDING)
        tenant, why = seller_tenant(
            self._gov, str(body.get("user", "")), str(body.get("purpose", ""))
        )
        return {"tenant": tenant, "why": why}

    def _kernel_mint(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """A kernel token for the caller's login session (it reads data, nothing else, and
        lives exactly as long as that session)."""
        if token.startswith(KERNEL_PREFIX):
            self.calls.deny("a kernel token cannot mint another", protocol.KERNEL_MINT)
        session = self.calls.user_session(token, protocol.KERNEL_MINT)
        kernel = KERNEL_PREFIX + secrets.token_urlsafe(32)
        self.calls.kernel_tokens[_digest(kernel)] = token
        self._gov.emit(
            "gateway.token",
            actor=session.user_id,
            session=f"s{session.session_id}",
            resource=f"token:{_digest(kernel)[:12]}",
            reason="kernel token minted for the user's login session",
        )
        return {"token": kernel, "user": session.user_id}

    def _kernel_revoke(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        target = str(body.get("token", ""))
        if not (token.startswith(KERNEL_PREFIX) and same_secret(token, target)):
            self.calls.require_operator(token, protocol.KERNEL_REVOKE)
        return {"revoked": self.calls.kernel_tokens.pop(_digest(target), None) is not None}

    def _login(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            session = self._gov.identity.authenticate(
                str(body.get("user", "")), str(body.get("password", "")), str(body.get("code", ""))
            )
        except PasswordChangeRequired as exc:  # right credentials; a new password comes first
            return {
                "password_change_required": True,
                "user": exc.user_id,
                "ticket": exc.ticket,
                "message": str(exc),
            }
        return self._login_answer(session)

    def _login_change_password(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self._gov.identity.complete_password_change(
            str(body.get("ticket", "")), str(body.get("new_password", ""))
        )
        return self._login_answer(session)

    def _login_answer(self, session: Any) -> dict[str, Any]:
        from amzigo_lab.governance.policy_log import notice

        days, warn = self._gov.identity.password_status(session.user_id)
        return {
            "token": session.token,
            **_describe_session(session),
            "password_days": days,
            "password_warn": bool(warn),
            # the policy version in force and the changes since this user's last login (now
            # marked seen): `amzigo login` and the web login show them
            "policy": notice(self._gov, session.user_id, mark=True),
        }

    # -- people's governed sessions ------------------------------------------------------------
    def _session_open(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        from amzigo_lab.governance.session import Workbench

        session = self.calls.user_session(token, protocol.SESSION_OPEN)
        purpose = str(body.get("purpose", ""))
        workbench = Workbench(self._gov, session, purpose, owns=False)
        handle = uuid.uuid4().hex
        self._handles[handle] = _Handle(_digest(token), workbench)
        return self._describe(handle, workbench)

    def _describe(self, handle: str, workbench: Workbench) -> dict[str, Any]:
        return {
            "handle": handle,
            "user": workbench.user,
            "purpose": workbench.purpose,
            "datasets": workbench.datasets(),
            "schemas": {n: schema_to_b64(s) for n, s in workbench.relations().items()},
        }

    def _handle(self, token: str, body: dict[str, Any]) -> tuple[str, _Handle]:
        key = str(body.get("handle", ""))
        handle = self._handles.get(key)
        if handle is None or not token or handle.token_digest != _digest(token):
            raise GatewayProtocolError("unknown session handle: connect again")
        if token.startswith(KERNEL_PREFIX) and _digest(token) not in self.calls.kernel_tokens:
            del self._handles[key]
            handle.workbench.close()
            self.calls.deny("the kernel token was revoked: restart the kernel", "session")
        handle.last_used = time.monotonic()
        return key, handle

    def _session_tenants(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        _, handle = self._handle(token, body)
        return {"tenants": handle.workbench.tenants(str(body.get("dataset", "")))}

    def _session_refresh(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        key, handle = self._handle(token, body)
        handle.workbench.refresh()
        return self._describe(key, handle.workbench)

    def _session_close(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        key, handle = self._handle(token, body)
        del self._handles[key]
        handle.workbench.close()
        return {"closed": True}

    def _sql(self, token: str, request: dict[str, Any]) -> pa.Table:
        _, handle = self._handle(token, request)
        via = str(request.get("via", "sql"))[:16]
        result = handle.workbench.sql(str(request.get("query", "")), arrow=True, via=via)
        assert isinstance(result, pa.Table)
        return result

    # -- services ------------------------------------------------------------------------------
    def _service_mint(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.require_operator(token, protocol.SERVICE_MINT)
        actor = str(body.get("actor", ""))
        tenant = tenant_id(str(body.get("tenant", "")))
        purposes = frozenset(str(p) for p in body.get("purposes", []))
        ttl = dt.timedelta(seconds=float(body.get("ttl_s", 900)))
        known = body.get("require_data", True) is False or bool(
            self._gov.lake.catalog.partitions(tenants=[tenant])
        )
        if not known:
            raise UnknownTenant(f"tenant {tenant!r} has no data in {self.settings.home}")
        secret, grant = self.calls.tokens.mint(actor, tenant, purposes, ttl)
        self._audit_token("minted", grant)
        return {"token": secret, "expires": grant.expires.isoformat(), "token_id": grant.token_id}

    def _service_revoke(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        target = str(body.get("token", ""))
        if not (ServiceTokens.looks_like(token) and same_secret(token, target)):
            self.calls.require_operator(token, protocol.SERVICE_REVOKE)
        return {"revoked": self.calls.tokens.revoke(target)}

    def _service_objections(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Order ids of the token's tenant whose buyer objected (review requests skip them)."""
        from amzigo_lab.compliance.dsr import objected_order_ids

        grant = self.calls.service_grant(token, protocol.SERVICE_OBJECTIONS)
        orders = sorted(objected_order_ids(self._gov.lake, grant.tenant))
        self._gov.emit(
            "data.read",
            actor=grant.actor,
            tenant=grant.tenant,
            resource="dsr:objected_orders",
            row_count=len(orders),
            reason="objections honoured by a report",
        )
        return {"orders": orders}

    def _outputs_register(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Register files a report run wrote as derived outputs of the tenant's dataset, purged
        no later than the earliest of its source partitions (operator credential)."""
        from pathlib import Path

        from amzigo_lab.compliance.derived import register_output

        self.calls.require_operator(token, protocol.OUTPUTS_REGISTER)
        lake = self._gov.lake
        tenant = tenant_id(str(body.get("tenant", "")))
        dataset = lake.spec(str(body.get("dataset", ""))).name
        sources = lake.catalog.partitions(dataset, [tenant])
        if not sources:
            return {"registered": 0}
        purge_date = min(p.purge_date for p in sources)
        paths = [Path(str(p)) for p in body.get("paths", [])]
        for path in paths:
            register_output(
                lake, path, kind=str(body.get("kind", "report")), tenant=tenant,
                dataset=dataset, purge_date=purge_date,
            )  # fmt: skip
        return {"registered": len(paths), "purge_date": purge_date.isoformat()}

    def _audit_token(self, what: str, grant: ServiceGrant) -> None:
        self._gov.emit(
            "gateway.token",
            actor=grant.actor,
            tenant=grant.tenant,
            resource=f"token:{grant.token_id}",
            reason=f"{what}; purposes {','.join(sorted(grant.purposes))}; "
            f"expires {grant.expires:%Y-%m-%dT%H:%M:%SZ}",
        )

    # -- administration ------------------------------------------------------------------------
    def _deliver_alerts(self) -> None:
        """(Home thread.) Evaluate and deliver alerts now (after a security-relevant event)."""
        try:
            self._alerts.run(self._gov, urgent=True)
        except Exception as exc:  # the timer tries again
            _log("alerts_failed", error=type(exc).__name__)

    def _admin_authorize(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Check a right or role for a command the CLI then runs in-process; the actor."""
        from amzigo_lab.governance.policy import RIGHTS

        action = str(body.get("action", ""))
        if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,63}", action):
            raise GatewayProtocolError("admin.authorize needs an action name")
        right, role = body.get("right"), body.get("role")
        if role is not None:
            if str(role) not in self._gov.policy.roles:
                raise GatewayProtocolError(f"unknown role {role!r}")
            actor = self.calls.admin_actor(token, body, action, role=str(role))
        elif right in RIGHTS:
            actor = self.calls.admin_actor(token, body, action, right=str(right))
        else:
            raise GatewayProtocolError(f"unknown right {right!r}; known: {', '.join(RIGHTS)}")
        return {"user": actor}

    def _users_add(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = self.calls.admin_actor(token, body, protocol.USERS_ADD, right="manage_users")
        name = str(body.get("name", ""))
        roles = [str(r) for r in body.get("roles") or []]
        tenant = str(body["tenant"]) if body.get("tenant") else None
        policy = self._gov.policy
        unknown = [r for r in roles if r not in policy.roles]
        if unknown:
            known = ", ".join(sorted(policy.roles))
            raise AmzigoError(f"unknown role {unknown[0]!r}; the policy defines: {known}")
        exclusive = [r for r in roles if policy.roles[r].exclusive]
        if exclusive and len(roles) > 1:
            raise AmzigoError(f"role {exclusive[0]!r} cannot be combined with other roles")
        if any(policy.roles[r].tenants == "bound" for r in roles) and not tenant:
            raise AmzigoError("a seller must be bound to a tenant: add --tenant TENANT")
        if tenant:
            require_known_tenant(self._gov.lake, tenant, new_tenant=body.get("new_tenant") is True)
        enrollment = self._gov.identity.add_user(
            name, roles, tenant, password=str(body.get("password", "")), actor=actor, one_time=True
        )
        answer = {"user": name, "actor": actor, "provisioning_uri": enrollment.provisioning_uri}
        if body.get("qr") is True:  # the CLI writes the PNG where its user asked
            import base64

            from amzigo_lab.governance.identity.qr import qr_png

            answer["qr_png"] = base64.b64encode(qr_png(enrollment.provisioning_uri)).decode()
        return answer

    def _users_grant(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = self.calls.admin_actor(token, body, protocol.USERS_GRANT, right="manage_users")
        name, tenant, revoke = (
            str(body.get("name", "")),
            str(body.get("tenant", "")),
            body.get("revoke") is True,
        )
        self._gov.identity.get(name)  # UnknownUser if absent
        if not revoke:  # a revoke of a mistyped grant must stay possible
            require_known_tenant(self._gov.lake, tenant, new_tenant=body.get("new_tenant") is True)
        grants = self._gov.grants
        changed = grants.revoke(name, tenant) if revoke else grants.grant(name, tenant, actor=actor)
        if changed:
            self._gov.emit(
                "grant.revoked" if revoke else "grant.added",
                actor=actor,
                resource=f"user:{name}",
                tenant=tenant,
                reason="tenant grant",
            )
        return {"changed": bool(changed), "actor": actor}

    def _users_state(self, verb: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
        action = f"users.{verb}"

        def run(token: str, body: dict[str, Any]) -> dict[str, Any]:
            actor = self.calls.admin_actor(token, body, action, right="manage_users")
            getattr(self._gov.identity, verb)(str(body.get("name", "")), actor=actor)
            return {"actor": actor}

        return run

    def _users_passwd(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        actor = self.calls.admin_actor(token, body, protocol.USERS_PASSWD, right="manage_users")
        self._gov.identity.set_password(  # an admin-set password is a one-time password
            str(body.get("name", "")), str(body.get("password", "")), actor=actor, one_time=True
        )
        return {"actor": actor}

    def _latest(self, token: str, request: dict[str, Any]) -> pa.Table:
        from amzigo_lab.governance.service import ServiceReader
        from amzigo_lab.schema import PARTITION_COLUMNS

        grant = self.calls.service_grant(token, protocol.TICKET_LATEST)
        purpose = str(request.get("purpose", ""))
        dataset = str(request.get("dataset", ""))
        lake = self._gov.lake
        spec = lake.spec(dataset)
        reader = ServiceReader(
            grant.actor, grant.tenant, self._gov.policy, self._gov.sink, SERVICE_WHY[grant.actor]
        )
        if purpose not in grant.purposes:
            reader.deny(dataset, purpose, "purpose not in the service token")
            raise AccessDenied(
                f"{grant.actor}'s token for {grant.tenant} does not cover purpose {purpose!r}"
            )
        reader.check(spec, purpose)
        data = lake.scan(dataset, [grant.tenant]).latest(self._con, _period_bounds(request))
        data = data.drop_columns([c for c in PARTITION_COLUMNS if c in data.column_names])
        reader.record(dataset, purpose, data.num_rows)
        return data


def _period_bounds(request: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """Bounds for `latest` when the request names a period (`start`, `end`: ISO dates) and the
    dataset has a fixed date column: only the versions that can fall in the period are reduced
    to their latest state (the same records, issue 17). Other datasets: the whole latest state."""
    from amzigo_lab.analysis.period import Period
    from amzigo_lab.analysis.source import FIXED_DATE_COLUMNS, period_bounds

    column = FIXED_DATE_COLUMNS.get(str(request.get("dataset", "")))
    if column is None or request.get("start") is None or request.get("end") is None:
        return None
    try:
        period = Period.parse(str(request["start"]), str(request["end"]))
    except (ValueError, AmzigoError) as exc:
        raise GatewayProtocolError(f"bad period for latest: {exc}") from None
    return (column, *period_bounds(period))


class TlsFront(flight.FlightServerBase):
    """The same gateway on a TCP port with TLS (gRPC's TLS 1.2+), for clients beyond this
    machine: every call is handed to the Unix-socket server's handlers (one home thread, one
    set of sessions and tokens)."""

    def __init__(self, core: GatewayServer, location: str, cert_pem: bytes, key_pem: bytes):
        self.core = core
        super().__init__(
            location,
            middleware={"auth": _BearerFactory()},
            tls_certificates=[flight.CertKeyPair(cert_pem, key_pem)],
        )

    def do_action(self, context: Any, action: Any) -> list[Any]:
        return self.core.do_action(context, action)

    def do_get(self, context: Any, ticket: Any) -> Any:
        return self.core.do_get(context, ticket, local=False)  # the bulk socket is local only

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return self.core.list_actions(context)


#: Audit actions the web servers may write, and the fields they may set.
_SERVER_ACTION = re.compile(r"(dashboard|lab|kernel|serve)\.[a-z_]+(\.[a-z_]+)*")
_SERVER_FIELDS = frozenset(
    {"actor", "resource", "tenant", "purpose", "decision", "reason", "session", "request_id"}
)


def _describe_session(session: Any) -> dict[str, Any]:
    return {
        "user": session.user_id,
        "roles": list(session.roles),
        "tenant": session.tenant,
        "session_id": str(session.session_id),
    }


def _log(event: str, **fields: Any) -> None:
    LOG.info(event, extra={"fields": fields})
