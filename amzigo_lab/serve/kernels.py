"""Kernel ownership and a secret-free kernel environment (Voila 0.5.13 holes 1, 3 and 4).

- `OwnedKernelManager` records the logged-in user who started each kernel (read from
  `REQUEST_USER`, which the identity provider sets for every authenticated request and the
  pre-launch hook sets again just before Voila starts the kernel), refuses to start a kernel
  without one, refuses to attach to another user's kernel, and gives every kernel an
  environment with the server's secrets removed and the request's query string blanked.
- `OwnerAuthorizer` lets only a kernel's owner use the `kernels` (and, in JupyterLab,
  `sessions`) resources: REST and websocket requests for another user's kernel get 403.
- `OwnedKernelManager.list_kernels` and `OwnedSessionManager.list_sessions` show each user
  their own kernels and sessions only (JupyterLab lists both).
- `OwnedKernelManager` can keep a pool of warm kernels (`pool_size`, `warmup_code`): started
  and warmed up with no owner (nobody can reach them; the culler leaves them alone), handed to
  the next user whose page needs a kernel, then replaced after `pool_refill_delay`.
- `OwnedShutdownHandler` replaces Voila's `/voila/api/shutdown/<id>`, which only checks that
  somebody is logged in.
- Culling of idle kernels is configured by the launchers (`cull_idle_timeout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.sessionmanager import SessionManager
from jupyter_server.utils import ApiPath
from tornado import web
from traitlets import Bool, Float, Integer, Unicode

from amzigo_lab.client.protocol import TOKEN_ENV

#: The user of the request being handled (set by the identity provider and the pre-launch hook).
REQUEST_USER: ContextVar[str | None] = ContextVar("amzigo_request_user", default=None)
#: The login session token of that request (set with REQUEST_USER; never logged or sent out).
REQUEST_SESSION: ContextVar[str | None] = ContextVar("amzigo_request_session", default=None)

#: Environment variable names never passed to a kernel (any case), besides the patterns below.
SECRET_ENV = frozenset({"AMZIGO_MASTER_KEY", "AMZIGO_SESSION", "JUPYTER_TOKEN", "JPY_API_TOKEN"})
_SECRET_PATTERN = re.compile(
    r"(SECRET|TOKEN|PASSW|CREDENTIAL|SESSION|COOKIE|PRIVATE|_KEY$|_KEY_|^KEY|APIKEY|API_KEY)",
    re.IGNORECASE,
)
#: Configuration (not secrets) the kernel needs to find the home; kept despite the pattern.
_KEEP = frozenset({"AMZIGO_HOME", "AMZIGO_KEY_FILE", "AMZIGO_KEY_PROVIDER", "AMZIGO_KEY_ENV_VAR"})
#: Request details Voila copies into the kernel env; a tenant must never come from them.
_BLANK = ("QUERY_STRING",)


def kernel_env(env: Mapping[str, str], extra_secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """`env` without secrets (master key, session tokens, anything named like a credential)."""
    drop = {n.upper() for n in (*SECRET_ENV, *extra_secrets)}
    out = {}
    for name, value in env.items():
        if name in _KEEP:
            out[name] = value
        elif name.upper() in drop or _SECRET_PATTERN.search(name):
            continue
        else:
            out[name] = value
    for name in _BLANK:
        if name in out:
            out[name] = ""
    return out


class OwnedKernelManager(AsyncMappingKernelManager):
    """A kernel manager that knows who started each kernel, strips secrets from its env, hides
    other users' kernels from listings and can keep a pool of warm, ownerless kernels."""

    pool_size = Integer(
        0,
        config=True,
        help="Kernels kept started and warmed up (WARMUP_CODE run) for the next page views.",
    )
    pool_kernel_name = Unicode("python3", config=True, help="The kernel spec pooled kernels use.")
    pool_refill_delay = Float(
        2.0,
        config=True,
        help="Seconds to wait after handing out a pooled kernel before starting its successor "
        "(the page being served gets the CPU first).",
    )
    warmup_code = Unicode("", config=True, help="Code each pooled kernel runs before use.")
    gateway_home = Unicode("", config=True, help="The home whose gateway serves the kernels.")
    kernel_tokens = Bool(
        False,
        config=True,
        help="Give each new kernel a gateway token bound to its owner's login session "
        "($AMZIGO_TOKEN): connect() in the kernel needs no second login (JupyterLab).",
    )
    session_check_interval = Float(
        15.0,
        config=True,
        help="Seconds between checks that each kernel's owner is still logged in; kernels "
        "of ended sessions (logout, disable, expiry) are shut down. 0: never.",
    )
    warmup_timeout = Float(120.0, config=True, help="Seconds a warm-up may take.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owners: dict[str, str] = {}
        self.extra_secret_env: tuple[str, ...] = ()
        self._pool: list[str] = []  # warm, ownerless kernels, oldest first
        self._filling = 0  # pooled kernels being started
        self._refill_handle: asyncio.TimerHandle | None = None
        self._fill_task: asyncio.Future[None] | None = None
        self._closing = False
        self.sessions: dict[str, str] = {}  # kernel id -> its owner's login session token
        self.tokens: dict[str, str] = {}  # kernel id -> the kernel's own gateway token
        self._watch: Any = None

    def owner_of(self, kernel_id: str) -> str | None:
        """The user who started `kernel_id` (None if unknown or still in the pool)."""
        return self.owners.get(kernel_id)

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        """A kernel for the current request's user (403 if there is none): a warm one from the
        pool when it has one for this kernel spec, else a new one."""
        owner = REQUEST_USER.get()
        if not owner:
            raise web.HTTPError(403, "no logged-in user to own a new kernel")
        existing = kwargs.get("kernel_id")
        if existing is not None and existing in self and self.owners.get(existing) != owner:
            raise web.HTTPError(403, "this kernel belongs to another user")
        kernel_id = None
        pooled_spec = kwargs.get("kernel_name", self.pool_kernel_name) == self.pool_kernel_name
        if existing is None and pooled_spec:
            kernel_id = await self._take_pooled()
        session = await asyncio.to_thread(self._session_of, owner, REQUEST_SESSION.get())
        token = ""
        if kernel_id is None:
            env = kwargs.get("env")
            kwargs["env"] = kernel_env(os.environ if env is None else env, self.extra_secret_env)
            if self.kernel_tokens and session:
                token = await asyncio.to_thread(self._mint_kernel_token, session)
                kwargs["env"][TOKEN_ENV] = token
            kernel_id = await super().start_kernel(*args, **kwargs)
        if token:
            self.tokens.setdefault(kernel_id, token)
        if session:
            self.sessions.setdefault(kernel_id, session)
            self._start_session_watch()
        self.owners.setdefault(kernel_id, owner)
        self.log.info("kernel %s owned by %s", kernel_id, owner)
        self.schedule_refill()
        return kernel_id

    async def shutdown_kernel(  # type: ignore[override]
        self, kernel_id: str, *args: Any, **kwargs: Any
    ) -> None:
        """Shut a kernel down and forget its owner."""
        try:
            await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            self.owners.pop(kernel_id, None)
            self.sessions.pop(kernel_id, None)
            token = self.tokens.pop(kernel_id, None)
            if token:
                await asyncio.to_thread(self._revoke_kernel_token, token)
            if kernel_id in self._pool:
                self._pool.remove(kernel_id)

    # -- gateway tokens and login sessions -----------------------------------------------------
    def _action(self, name: str, token: str, payload: dict[str, Any] | None = None) -> Any:
        """One action at the home's gateway as `token` (a login or kernel token)."""
        from pathlib import Path

        from amzigo_lab.client.service import home_action

        return home_action(Path(self.gateway_home), name, payload, token=token)

    def _session_of(self, owner: str, session: str | None) -> str | None:
        """`session` if it is a live login session of `owner`, else None (a context variable
        must never tie one user's kernel to another user's login)."""
        if not session or not self.gateway_home:
            return None
        from amzigo_lab.client import protocol

        try:
            user = self._action(protocol.SESSION_CHECK, session)["user"]
        except Exception as exc:
            self.log.warning(
                "kernel for %s: login session not usable (%s)", owner, type(exc).__name__
            )
            return None
        if user != owner:
            self.log.warning(
                "kernel for %s: the request's session is another user's; ignored", owner
            )
            return None
        return session

    def _mint_kernel_token(self, session: str) -> str:
        from amzigo_lab.client import protocol

        return str(self._action(protocol.KERNEL_MINT, session)["token"])

    def _revoke_kernel_token(self, token: str) -> None:
        from amzigo_lab.client import protocol

        try:
            self._action(protocol.KERNEL_REVOKE, token, {"token": token})
        except Exception as exc:  # the gateway is gone: its tokens died with it
            self.log.info("kernel token not revoked: %s", type(exc).__name__)

    def _start_session_watch(self) -> None:
        if self._watch is not None or self.session_check_interval <= 0:
            return
        from tornado.ioloop import PeriodicCallback

        self._watch = PeriodicCallback(self.check_sessions, self.session_check_interval * 1000)
        self._watch.start()

    def ended_sessions(self) -> list[str]:
        """Kernels whose owner's login session ended (asked of the gateway, no refresh)."""
        from amzigo_lab.client import protocol
        from amzigo_lab.errors import AccessDenied
        from amzigo_lab.governance.identity.errors import IdentityError

        ended = []
        for kernel_id, session in list(self.sessions.items()):
            try:
                self._action(protocol.SESSION_CHECK, session)
            except (AccessDenied, IdentityError):
                ended.append(kernel_id)
            except Exception as exc:  # gateway unavailable: check again next time
                self.log.warning("session check failed: %s", type(exc).__name__)
        return ended

    async def check_sessions(self) -> list[str]:
        """Shut down the kernels of users who logged out, were disabled or expired."""
        ended = await asyncio.to_thread(self.ended_sessions)
        for kernel_id in ended:
            self.log.info("kernel %s: owner's session ended; shutting it down", kernel_id)
            with contextlib.suppress(Exception):
                await self.shutdown_kernel(kernel_id, now=True)
        return ended

    async def shutdown_user_kernels(self, user: str) -> int:
        """Shut down every kernel of `user` (logout); how many."""
        mine = [k for k, owner in list(self.owners.items()) if owner == user]
        for kernel_id in mine:
            with contextlib.suppress(Exception):
                await self.shutdown_kernel(kernel_id, now=True)
        return len(mine)

    async def shutdown_all(self, now: bool = False) -> None:  # type: ignore[override]
        """Stop refilling the pool, then shut every kernel down (pooled ones included)."""
        self._closing = True
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._refill_handle is not None:
            self._refill_handle.cancel()
            self._refill_handle = None
        await super().shutdown_all(now=now)

    def list_kernels(self) -> list[dict[str, Any]]:
        """During a request: the requesting user's kernels only (never pooled or others').
        Outside requests (culling, shutdown): every kernel."""
        kernels: list[dict[str, Any]] = super().list_kernels()
        user = REQUEST_USER.get()
        if user is None:
            return kernels
        return [k for k in kernels if self.owners.get(k["id"]) == user]

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        """Cull idle owned kernels; pooled kernels wait for their user."""
        if kernel_id in self._pool:
            return
        await super().cull_kernel_if_idle(kernel_id)

    # -- the warm pool ---------------------------------------------------------------------------
    @property
    def pooled(self) -> tuple[str, ...]:
        """The warm kernels waiting for a user."""
        return tuple(self._pool)

    def schedule_refill(self, delay: float | None = None) -> None:
        """Top the pool up to `pool_size`, after `delay` (default `pool_refill_delay`) seconds."""
        if self.pool_size <= 0 or self._refill_handle is not None or self._closing:
            return
        loop = asyncio.get_running_loop()
        wait = self.pool_refill_delay if delay is None else delay

        def fire() -> None:
            self._refill_handle = None
            self._fill_task = asyncio.ensure_future(self.fill_pool())

        self._refill_handle = loop.call_later(wait, fire)

    async def fill_pool(self) -> None:
        """Start and warm kernels until the pool holds `pool_size` (one at a time: 2 cores)."""
        while not self._closing and len(self._pool) + self._filling < self.pool_size:
            self._filling += 1
            try:
                kernel_id = await self._start_warm_kernel()
            finally:
                self._filling -= 1
            if kernel_id is None:
                return  # logged; the next page view starts a cold kernel and retries the pool
            if self._closing:  # the server stopped while this one warmed up
                await super().shutdown_kernel(kernel_id, now=True)
                return
            self._pool.append(kernel_id)

    async def _start_warm_kernel(self) -> str | None:
        kernel_id: str = await super().start_kernel(
            kernel_name=self.pool_kernel_name,
            path=ApiPath(""),  # the root: where the dashboards are
            env=kernel_env(os.environ, self.extra_secret_env),
        )
        try:
            if self.warmup_code:
                await self._run_warmup(kernel_id)
        except Exception as exc:  # any failure: this kernel is not used
            self.log.error("warm-up of pooled kernel %s failed: %s", kernel_id, exc)
            await super().shutdown_kernel(kernel_id, now=True)
            return None
        self.log.info("pooled kernel %s is warm", kernel_id)
        return kernel_id

    async def _run_warmup(self, kernel_id: str) -> None:
        client: Any = self.get_kernel(kernel_id).client()  # an AsyncKernelClient
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=self.warmup_timeout)
            reply = await client.execute_interactive(
                self.warmup_code,
                silent=True,
                store_history=False,
                timeout=self.warmup_timeout,
                output_hook=lambda msg: None,
            )
        finally:
            client.stop_channels()
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise RuntimeError(f"{content.get('ename', 'error')}: {content.get('evalue', '')}")

    async def _take_pooled(self) -> str | None:
        while self._pool:
            kernel_id = self._pool.pop(0)
            if kernel_id in self and await ensure_async(self.get_kernel(kernel_id).is_alive()):
                kernel: Any = self.get_kernel(kernel_id)
                kernel.last_activity = utcnow()  # idle time counts from the handover
                return kernel_id
            self.log.warning("pooled kernel %s died; discarding it", kernel_id)
            if kernel_id in self:
                await super().shutdown_kernel(kernel_id, now=True)
        return None


class OwnedSessionManager(SessionManager):
    """JupyterLab's sessions, listed to each user for their own kernels only (a session names a
    notebook path and a kernel id: another analyst must not learn either)."""

    async def list_sessions(self) -> list[dict[str, Any]]:
        """During a request: the sessions whose kernel the requesting user owns."""
        sessions: list[dict[str, Any]] = await super().list_sessions()
        user = REQUEST_USER.get()
        if user is None:
            return sessions
        owner_of = getattr(self.kernel_manager, "owner_of", None)
        if owner_of is None:  # not our kernel manager: fail closed
            return []
        return [s for s in sessions if owner_of((s.get("kernel") or {}).get("id")) == user]


def _audit_denial(handler: Any, user: User | None, what: str, kernel_id: str) -> None:
    provider = handler.settings.get("identity_provider")
    emit = getattr(provider, "audit", None)
    if emit is not None:
        emit(
            "kernel.access",
            actor=user.username if user else "anonymous",
            resource=f"kernel:{kernel_id}",
            decision="deny",
            reason=f"{what} of a kernel owned by another user",
        )


def may_use_kernel(kernel_manager: Any, kernel_id: str, username: str) -> bool:
    """True if the kernel does not exist (the handler 404s) or `username` owns it."""
    if kernel_id not in kernel_manager:
        return True
    owner_of = getattr(kernel_manager, "owner_of", None)
    if owner_of is None:  # not our kernel manager: fail closed
        return False
    return bool(owner_of(kernel_id) == username)


def body_kernel_id(handler: Any) -> str | None:
    """The kernel id a POST/PATCH body names (`{"kernel": {"id": ...}}`, as `/api/sessions`
    takes to attach a session to a running kernel); None if there is none or it is not JSON."""
    request = getattr(handler, "request", None)
    if request is None or request.method not in ("POST", "PATCH", "PUT") or not request.body:
        return None
    try:
        model = json.loads(request.body)
    except ValueError:
        return None  # the handler answers 400
    kernel = model.get("kernel") if isinstance(model, dict) else None
    kernel_id = kernel.get("id") if isinstance(kernel, dict) else None
    return str(kernel_id) if kernel_id else None


class OwnerAuthorizer(Authorizer):
    """Allows the `kernels` and `sessions` resources only to the kernel's owner, and shutting
    the server down (JupyterLab's File > Shut Down) only to admins."""

    async def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        """Return False (403) when the request names a kernel that `user` does not own, in its
        URL (kernel or session id) or, for sessions, in its JSON body."""
        if resource == "server" and action == "write":  # POST /api/shutdown stops the server
            return "admin" in getattr(user, "roles", ())
        if resource not in ("kernels", "sessions"):
            return True
        kernel_id = handler.path_kwargs.get("kernel_id") or getattr(handler, "kernel_id", None)
        if resource == "sessions" and kernel_id is None:
            session_id = handler.path_kwargs.get("session_id")
            if session_id is None and handler.path_args:
                session_id = handler.path_args[0]
            if session_id:
                try:
                    model = await ensure_async(
                        handler.session_manager.get_session(session_id=session_id)
                    )
                except web.HTTPError:
                    return True  # unknown session: the handler answers 404
                kernel_id = (model.get("kernel") or {}).get("id")
        if kernel_id and not self._check(handler, user, f"{action} {resource}", kernel_id):
            return False
        body_kernel = body_kernel_id(handler) if resource == "sessions" else None
        if body_kernel and body_kernel != kernel_id:
            return self._check(handler, user, f"{action} {resource} (request body)", body_kernel)
        return True

    @staticmethod
    def _check(handler: Any, user: User, what: str, kernel_id: str) -> bool:
        allowed = may_use_kernel(handler.kernel_manager, kernel_id, user.username)
        if not allowed:
            _audit_denial(handler, user, what, kernel_id)
        return allowed


class OwnedShutdownHandler(APIHandler):
    """`POST /voila/api/shutdown/<kernel_id>` for the kernel's owner only (Voila's checks login)."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:
        """Shut the kernel down if the caller owns it; 403 otherwise."""
        user = self.current_user
        if not may_use_kernel(self.kernel_manager, kernel_id, user.username):
            _audit_denial(self, user, "shutdown", kernel_id)
            raise web.HTTPError(403, "this kernel belongs to another user")
        if kernel_id in self.kernel_manager:
            await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id))
        self.set_status(204)
        self.finish()
