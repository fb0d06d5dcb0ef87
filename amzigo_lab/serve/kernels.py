"""Kernel ownership and a secret-free kernel environment (Voila 0.5.13 holes 1, 3 and 4).

- `OwnedKernelManager` records the logged-in user who started each kernel (read from
  `REQUEST_USER`, which the identity provider sets for every authenticated request and the
  pre-launch hook sets again just before Voila starts the kernel), refuses to start a kernel
  without one, refuses to attach to another user's kernel, and gives every kernel an
  environment with the server's secrets removed and the request's query string blanked.
- `OwnerAuthorizer` lets only a kernel's owner use the `kernels` (and, in JupyterLab,
  `sessions`) resources: REST and websocket requests for another user's kernel get 403.
- `OwnedShutdownHandler` replaces Voila's `/voila/api/shutdown/<id>`, which only checks that
  somebody is logged in.
- Culling of idle kernels is configured by the launchers (`cull_idle_timeout`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web

#: The user of the request being handled (set by the identity provider and the pre-launch hook).
REQUEST_USER: ContextVar[str | None] = ContextVar("amzigo_request_user", default=None)

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
    """A kernel manager that knows who started each kernel and strips secrets from its env."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owners: dict[str, str] = {}
        self.extra_secret_env: tuple[str, ...] = ()

    def owner_of(self, kernel_id: str) -> str | None:
        """The user who started `kernel_id` (None if unknown)."""
        return self.owners.get(kernel_id)

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        """Start a kernel for the current request's user (403 if there is none)."""
        owner = REQUEST_USER.get()
        if not owner:
            raise web.HTTPError(403, "no logged-in user to own a new kernel")
        existing = kwargs.get("kernel_id")
        if existing is not None and existing in self and self.owners.get(existing) != owner:
            raise web.HTTPError(403, "this kernel belongs to another user")
        env = kwargs.get("env")
        kwargs["env"] = kernel_env(os.environ if env is None else env, self.extra_secret_env)
        kernel_id: str = await super().start_kernel(*args, **kwargs)
        self.owners.setdefault(kernel_id, owner)
        self.log.info("kernel %s owned by %s", kernel_id, owner)
        return kernel_id

    async def shutdown_kernel(  # type: ignore[override]
        self, kernel_id: str, *args: Any, **kwargs: Any
    ) -> None:
        """Shut a kernel down and forget its owner."""
        try:
            await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            self.owners.pop(kernel_id, None)


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


class OwnerAuthorizer(Authorizer):
    """Allows the `kernels` and `sessions` resources only to the kernel's owner."""

    async def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        """Return False (403) when the request names a kernel that `user` does not own."""
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
        if not kernel_id:
            return True
        allowed = may_use_kernel(handler.kernel_manager, kernel_id, user.username)
        if not allowed:
            _audit_denial(handler, user, f"{action} {resource}", kernel_id)
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
