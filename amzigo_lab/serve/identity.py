"""The project's login for Voila and JupyterLab: a `jupyter_server` IdentityProvider.

Login = user id + password + TOTP code, checked by the gateway's identity store exactly as
`amzigo login` does (same store, same lockout after 10 failures, same audit events); this
server never opens the store, the audit log or the lake (`amzigo_lab.client.directory`). The
browser keeps only the identity session token, in a signed, HttpOnly, SameSite=Strict cookie
(Secure over HTTPS); every request re-validates it at the gateway, so idle/absolute expiry,
logout, revocation and disabling a user take effect at once. `/logout` ends the session.

Configuration (traitlets, `AmzigoIdentityProvider.<name>`): `home` (default $AMZIGO_HOME) and
`allowed_roles` (empty: any role may log in; JupyterLab sets the analysing roles). Voila passes
its own login handler class to the constructor; `get_handlers()` ignores it and serves ours.
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Float, Integer, List, Unicode

from amzigo_lab.serve.kernels import REQUEST_SESSION, REQUEST_USER
from amzigo_lab.serve.web import LoginThrottle, SafeErrorPages, client_address, proxy_networks

if TYPE_CHECKING:
    from amzigo_lab.client.directory import Directory, LoginSession

COOKIE_NAME = "amzigo_session"
#: Roles that may use JupyterLab (they analyse data or run compliance work).
ANALYSIS_ROLES = ("admin", "analyst", "pii_processor", "compliance")
#: The one answer to a wrong user, password or code and to a locked account (status 401).
LOGIN_FAILED = (
    "Login failed: check your user name, password and authenticator code. After repeated "
    "failures an account is locked for a while."
)
#: The answer to an address that failed too often (status 429).
TOO_MANY_FAILURES = (
    "Too many failed logins from your network address. Try again in {minutes} minute(s)."
)


@dataclass
class AmzigoUser(User):
    """A logged-in user as jupyter_server sees it, plus roles and the identity session id."""

    roles: tuple[str, ...] = ()
    session_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class AmzigoIdentityProvider(IdentityProvider):
    """Password + TOTP login against the home's IdentityStore; one provider for Voila and Lab."""

    home = Unicode(
        "",
        config=True,
        help="The amzigo home (default: $AMZIGO_HOME, else ~/.local/share/amzigo/home).",
    )
    allowed_roles = List(
        Unicode(), default_value=[], config=True, help="Roles that may log in (empty: any)."
    )
    app_label = Unicode("dashboard", config=True, help="Shown on the login page and in audit.")
    address_max_failures = Integer(
        30,
        config=True,
        help="Failed logins from one client address within `address_window` seconds after "
        "which that address gets 429 (0: no limit). Separate from the per-account lockout.",
    )
    address_window = Float(900.0, config=True, help="Seconds the per-address count looks back.")
    trusted_proxies = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the "
        "client: login throttling and audit then use the client's address, not the proxy's.",
    )
    failure_seconds = Float(
        1.0,
        config=True,
        help="Every failed login is answered no sooner than this many seconds after it "
        "arrived, whatever the reason (equal timing for unknown users and locked accounts).",
    )

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("login_handler_class", None)  # Voila's; ours is in get_handlers()
        kwargs["token"] = ""
        super().__init__(**kwargs)
        self._directory: Directory | None = None
        self.throttle = LoginThrottle(self.address_max_failures, self.address_window)
        self.proxies = proxy_networks(self.trusted_proxies)

    # -- the home's identity, through its gateway ----------------------------------------------
    @property
    def directory(self) -> Directory:
        """Logins, sessions, audit and seller bindings, served by the home's gateway."""
        if self._directory is None:
            from amzigo_lab.client.directory import Directory
            from amzigo_lab.client.workbench import home_path

            self._directory = Directory(home_path(self.home or None))
        return self._directory

    def audit(self, action: str, **fields: Any) -> None:
        """Write one audit event (never raises into a request)."""
        try:
            self.directory.audit(action, **fields)
        except Exception:  # the gateway logs its own side; log ours and go on
            self.log.exception("could not write audit event %s", action)

    def close(self) -> None:
        """Nothing to close: the gateway owns the stores."""

    # -- jupyter_server API ------------------------------------------------------------------
    @property
    def auth_enabled(self) -> bool:
        """Always on."""
        return True

    @property
    def login_available(self) -> bool:
        """The login page is always served."""
        return True

    def get_handlers(self) -> list[tuple[str, object]]:
        """Our login and logout handlers (whatever Voila passed in)."""
        return [(r"/login", AmzigoLoginHandler), (r"/logout", AmzigoLogoutHandler)]

    def get_cookie_name(self, handler: web.RequestHandler) -> str:
        """One fixed cookie name."""
        return COOKIE_NAME

    def role_allowed(self, roles: tuple[str, ...]) -> bool:
        """Whether a user with `roles` may use this server."""
        return not self.allowed_roles or bool(set(roles) & set(self.allowed_roles))

    def session_for(self, token: str) -> LoginSession | None:
        """The live identity session of `token`, or None (expired, revoked, unknown)."""
        from amzigo_lab.errors import AccessDenied
        from amzigo_lab.governance.identity import IdentityError

        try:
            return self.directory.session(token)
        except (AccessDenied, IdentityError):
            return None

    async def get_user(self, handler: web.RequestHandler) -> AmzigoUser | None:
        """The user of the request's session cookie, validated against the store every time."""
        user = None
        raw = handler.get_secure_cookie(COOKIE_NAME, max_age_days=1)
        if raw:
            session = self.session_for(raw.decode())
            if session is None:
                self.clear_login_cookie(handler)
            elif self.role_allowed(session.roles):
                user = AmzigoUser(
                    username=session.user_id,
                    name=session.user_id,
                    display_name=session.user_id,
                    roles=session.roles,
                    session_id=session.session_id,
                )
        REQUEST_USER.set(user.username if user else None)
        REQUEST_SESSION.set(raw.decode() if user and raw else None)
        return user

    def identity_model(self, user: User) -> dict[str, Any]:
        """What /api/me shows: name and roles, no session id."""
        return {
            "username": user.username,
            "name": user.name,
            "display_name": user.display_name,
            "initials": None,
            "avatar_url": None,
            "color": None,
        }

    def set_session_cookie(self, handler: web.RequestHandler, token: str) -> None:
        """Store the identity session token in the signed login cookie."""
        handler.set_secure_cookie(
            COOKIE_NAME,
            token,
            expires_days=None,  # a browser-session cookie; the store enforces expiry
            httponly=True,
            secure=handler.request.protocol == "https",
            samesite="Strict",
            path=getattr(handler, "base_url", "/") or "/",
        )

    def clear_login_cookie(self, handler: web.RequestHandler) -> None:
        """Remove the login cookie."""
        handler.clear_cookie(COOKIE_NAME, path=getattr(handler, "base_url", "/") or "/")

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """Unused: `AmzigoLoginHandler` authenticates (asynchronously, off the event loop)."""
        return None

    def authenticate(self, username: str, password: str, code: str, where: str) -> LoginSession:
        """Password + TOTP at the gateway (lockout and audit as `amzigo login`), then roles.

        Raises PasswordChangeRequired (with a ticket) when the password must be changed first:
        the login page then asks for a new one (`change_password`) before any session exists."""
        return self._admit(self.directory.authenticate(username, password, code), where)

    def change_password(self, ticket: str, new_password: str, where: str) -> LoginSession:
        """Finish a login that needs a new password first (a one-time or expired password):
        the gateway checks the password policy and issues the session; then roles."""
        return self._admit(self.directory.change_password(ticket, new_password), where)

    def _admit(self, session: LoginSession, where: str) -> LoginSession:
        """The session, if its roles may use this server (else it is ended, audited)."""
        from amzigo_lab.governance.identity import IdentityError

        if not self.role_allowed(session.roles):
            self.directory.end(session.token, reason="role_not_allowed")
            reason = (
                f"roles {','.join(session.roles) or '-'} may not use {self.app_label}; allowed: "
                f"{','.join(self.allowed_roles)}"
            )
            self.audit(
                f"{self.app_label}.login",
                actor=session.user_id,
                resource=self.app_label,
                decision="deny",
                reason=f"{reason} (from {where})",
            )
            raise IdentityError(
                f"your account may not use {self.app_label} (roles: "
                f"{', '.join(session.roles) or 'none'}); ask an administrator"
            )
        return session


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>amzigo {label}: log in</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}}
main{{max-width:360px;margin:10vh auto;background:#fff;padding:24px 28px;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.15)}}
h1{{font-size:20px;margin:0 0 16px}} label{{display:block;font-size:13px;margin:10px 0 4px}}
input{{width:100%;box-sizing:border-box;padding:8px;font-size:15px;border:1px solid #bbc;
border-radius:4px}} button{{margin-top:16px;width:100%;padding:9px;font-size:15px;
background:#1f5fa8;color:#fff;border:0;border-radius:4px;cursor:pointer}}
.msg{{padding:8px;border-radius:4px;font-size:13px;margin-bottom:8px}}
.error{{background:#fde8e8;color:#8a1c1c}} .info{{background:#e8f1fd;color:#1c3f8a}}
</style></head><body><main>
<h1>amzigo {label}</h1>{message}
<form method="post" action="{action}" id="login-form" autocomplete="off">
{xsrf}<input type="hidden" name="next" value="{next}">
<label for="username">User</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="code">Authenticator code</label>
<input id="code" name="code" inputmode="numeric" pattern="[0-9]{{6}}" maxlength="6"
 autocomplete="one-time-code" required>
<button type="submit" id="login-submit">Log in</button>
</form></main></body></html>"""


_CHANGE_FORM = """<form method="post" action="{action}" id="change-form" autocomplete="off">
{xsrf}<input type="hidden" name="next" value="{next}">
<input type="hidden" name="ticket" value="{ticket}">
<input type="hidden" name="user" value="{user}">
<p class='msg info'>Logged in as <b>{user}</b>: choose a new password to continue.</p>
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password"
 required autofocus>
<label for="new_password2">New password again</label>
<input id="new_password2" name="new_password2" type="password" autocomplete="new-password"
 required>
<button type="submit" id="change-submit">Set password and log in</button>
</form>"""


class AmzigoLoginHandler(SafeErrorPages, LoginFormHandler):
    """GET: the login form (user, password, TOTP code, `_xsrf`). POST: authenticate.

    A wrong user, password or code and a locked account all get `LOGIN_FAILED` (401), no
    sooner than `failure_seconds` after the request; an address past its failure limit gets
    429 without any check (the account it names is not counted)."""

    def _render(self, message: dict[str, str] | None = None) -> None:
        kind, text = next(iter((message or {}).items()), ("", ""))
        provider = self.identity_provider
        self.write(
            _PAGE.format(
                label=html.escape(getattr(provider, "app_label", "")),
                message=f"<p class='msg {kind}' id='login-message'>{html.escape(text)}</p>"
                if text
                else "",
                action=html.escape(self.request.path),
                xsrf=self.xsrf_form_html(),
                next=html.escape(self.get_argument("next", default=self.base_url)),
            )
        )

    def _render_change(self, ticket: str, user: str, error: str = "") -> None:
        """The change-password form (a one-time or expired password): no session exists yet."""
        provider = self.identity_provider
        head, _, _ = _PAGE.partition("{message}")
        message = (
            f"<p class='msg error' id='login-message'>{html.escape(error)}</p>" if error else ""
        )
        self.set_header("Cache-Control", "no-store")
        self.write(
            head.format(label=html.escape(getattr(provider, "app_label", "")))
            + message
            + _CHANGE_FORM.format(
                action=html.escape(self.request.path),
                xsrf=self.xsrf_form_html(),
                next=html.escape(self.get_argument("next", default=self.base_url)),
                ticket=html.escape(ticket),
                user=html.escape(user),
            )
            + "</main></body></html>"
        )

    async def _post_change(self, provider: AmzigoIdentityProvider, where: str) -> None:
        """The change-password form's POST: set the new password, then issue the session."""
        from amzigo_lab.governance.identity import IdentityError, SessionExpired

        ticket = self.get_argument("ticket", default="")
        user = self.get_argument("user", default="")
        new = self.get_argument("new_password", default="")
        if new != self.get_argument("new_password2", default=""):
            self.set_status(400)
            self._render_change(ticket, user, "The two new passwords differ; type them again.")
            return
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(None, provider.change_password, ticket, new, where)
        except SessionExpired:
            self.set_status(401)
            self._render({"error": "The password change took too long: log in again."})
            return
        except IdentityError as exc:  # the password policy refused it (tries are limited)
            self.set_status(400)
            self._render_change(ticket, user, str(exc))
            return
        self._issue(provider, session)

    def _issue(self, provider: AmzigoIdentityProvider, session: LoginSession) -> None:
        provider.set_session_cookie(self, session.token)
        REQUEST_USER.set(session.user_id)
        self.log.info("user %s logged in (session s%s)", session.user_id, session.session_id)
        if session.policy and session.policy.get("unread"):  # data policy 7: users are notified
            self._render_policy_notice(session.policy)
            return
        self._redirect_safe(self.get_argument("next", default=self.base_url))

    def _render_policy_notice(self, policy: dict[str, Any]) -> None:
        """After login: the policy version in force and the changes since the user's last
        login (marked seen by the gateway), with a link on to where they were going."""
        from amzigo_lab.serve.policy_notice import notice_html

        target = self.get_argument("next", default=self.base_url)
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = self.base_url
        head, _, _ = _PAGE.partition("{message}")
        self.set_header("Cache-Control", "no-store")
        self.write(
            head.format(label=html.escape(getattr(self.identity_provider, "app_label", "")))
            + notice_html(policy, target)
            + "</main></body></html>"
        )

    def check_xsrf_cookie(self) -> None:
        """Always check the `_xsrf` field of the login form (no token bypass)."""
        web.RequestHandler.check_xsrf_cookie(self)

    @allow_unauthenticated
    def get(self) -> None:
        """The form, or straight on when already logged in."""
        if self.current_user:
            self._redirect_safe(self.get_argument("next", default=self.base_url))
        else:
            self._render()

    @allow_unauthenticated
    async def post(self) -> None:
        """Check the credentials off the event loop (argon2 is slow by design)."""
        from amzigo_lab.governance.identity import (
            AccountLocked,
            IdentityError,
            InvalidCredentials,
            PasswordChangeRequired,
        )

        self.check_xsrf_cookie()
        provider = self.identity_provider
        assert isinstance(provider, AmzigoIdentityProvider)
        where = client_address(
            self.request.remote_ip or "-",
            self.request.headers.get("X-Forwarded-For"),
            provider.proxies,
        )
        if self._refuse_throttled(provider, where):
            return
        if self.get_argument("ticket", default=""):
            await self._post_change(provider, where)
            return
        started = time.monotonic()
        username = self.get_argument("username", default="").strip()
        password = self.get_argument("password", default="")
        code = self.get_argument("code", default="").strip()
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(
                None, provider.authenticate, username, password, code, where
            )
        except PasswordChangeRequired as exc:  # right credentials: a new password first
            self._render_change(exc.ticket, exc.user_id or username)
            return
        except (InvalidCredentials, AccountLocked):
            self._count_failure(provider, where)
            await asyncio.sleep(max(0.0, provider.failure_seconds - (time.monotonic() - started)))
            self.set_status(401)
            self._render({"error": LOGIN_FAILED})
            return
        except IdentityError as exc:  # right credentials: disabled, expired, role not allowed
            self.set_status(403)
            self._render({"error": str(exc)})
            return
        self._issue(provider, session)

    @staticmethod
    def _count_failure(provider: AmzigoIdentityProvider, where: str) -> None:
        """Count a failure from `where`; audit once when that blocks the address."""
        provider.throttle.failed(where)
        if provider.throttle.retry_after(where) > 0:
            provider.audit(
                f"{provider.app_label}.login",
                actor="anonymous",
                resource=provider.app_label,
                decision="deny",
                reason=f"address {where} blocked: {provider.address_max_failures} failed logins "
                f"within {provider.address_window:.0f} s",
            )

    def _refuse_throttled(self, provider: AmzigoIdentityProvider, where: str) -> bool:
        """Answer 429 when `where` failed too often; True if so."""
        wait = provider.throttle.retry_after(where)
        if wait <= 0:
            return False
        self.log.warning("login from %s refused: address blocked for %.0f s", where, wait)
        self.set_status(429)
        self.set_header("Retry-After", str(int(wait) + 1))
        self._render({"error": TOO_MANY_FAILURES.format(minutes=int(wait // 60) + 1)})
        return True


class AmzigoLogoutHandler(JupyterHandler):
    """End the identity session in the store and clear the cookie."""

    @allow_unauthenticated
    async def get(self) -> None:
        """Log out, shut the user's kernels down (an open page gets nothing more), then show
        the login form."""
        provider = self.identity_provider
        assert isinstance(provider, AmzigoIdentityProvider)
        raw = self.get_secure_cookie(COOKIE_NAME, max_age_days=1)
        if raw:
            session = provider.session_for(raw.decode())
            try:
                provider.directory.end(raw.decode())
            except Exception:
                self.log.exception("logout failed")
            kernels: Any = self.settings.get("kernel_manager")
            if session is not None and hasattr(kernels, "shutdown_user_kernels"):
                await kernels.shutdown_user_kernels(session.user_id)
        provider.clear_login_cookie(self)
        login = self.settings.get("login_url", "/login")
        self.redirect(f"{login}?logged_out=1")
