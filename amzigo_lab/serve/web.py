"""Web hardening shared by `amzigo dashboard` (Voila) and `amzigo lab` (JupyterLab).

- `security_headers(app, tls)`: HSTS (over TLS), a Content-Security-Policy naming no other
  host, X-Frame-Options DENY, Referrer-Policy no-referrer and nosniff, set on every response by
  jupyter_server's `JupyterHandler.set_default_headers` (API responses add `default-src 'none'`).
- `xsrf_cookie_kwargs(tls)`: the `_xsrf` cookie Secure over TLS, SameSite=Strict. It stays
  readable by scripts: the pages send it back in the `X-XSRFToken` header.
- `LoginThrottle`: failed logins per client address in a sliding window; past the limit the
  address gets 429 (no password check, so the targeted account's lockout count is not raised).
- `error_page(handler, status, exc_info)`: the HTML error page sellers see: a plain message and
  a reference id, never a traceback or an exception's text; the details go to the operator log
  under the same reference id.
"""

from __future__ import annotations

import html
import ipaddress
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from tornado import web

HSTS = "max-age=31536000; includeSubDomains"

#: Measured in chromium (tests/serve: the browser tests fail on any CSP violation): Voila's page
#: runs several inline scripts whose text differs per page (kernel id, page config), so hashes
#: cannot list them and 'unsafe-inline' is needed for scripts; nothing needs 'unsafe-eval'.
#: ipywidgets and the dashboard's HTML use inline styles; the favicon and icons are data: URIs.
DASHBOARD_CSP = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
#: JupyterLab also compiles its settings schemas with `new Function` (ajv): measured in chromium,
#: without 'unsafe-eval' the settings plugin fails to activate and no notebook opens.
LAB_CSP = (
    *DASHBOARD_CSP[:1],
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    *DASHBOARD_CSP[2:],
)


def security_headers(csp: tuple[str, ...], tls: bool) -> dict[str, str]:
    """The headers every response carries (HSTS only over TLS: browsers ignore it on HTTP)."""
    headers = {
        "Content-Security-Policy": "; ".join(csp),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if tls:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def xsrf_cookie_kwargs(tls: bool, path: str = "/") -> dict[str, Any]:
    """Attributes of the `_xsrf` cookie (Secure over TLS)."""
    return {"secure": tls, "samesite": "Strict", "path": path}


def tornado_settings(csp: tuple[str, ...], tls: bool) -> dict[str, Any]:
    """The tornado settings both servers add: XSRF cookies and the security headers."""
    return {
        "xsrf_cookies": True,
        "xsrf_cookie_kwargs": xsrf_cookie_kwargs(tls),
        "headers": security_headers(csp, tls),
    }


# -- the client's address, behind trusted reverse proxies ---------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """`--trusted-proxy` values (addresses or CIDR networks); ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {entry!r} is not an IP address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/24)"
            ) from None
    return tuple(networks)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """Who is really asking: the connection's peer, unless that peer is a trusted reverse
    proxy; then the nearest address in `X-Forwarded-For` (read right to left) that is not a
    trusted proxy. A header from an untrusted peer is ignored (anyone can send one), and so
    is an entry that is not an IP address (the last trusted hop is used then)."""
    if not trusted or not _trusted(peer, trusted) or not forwarded_for:
        return peer
    address = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # garbage: stop at the last hop a trusted proxy vouched for
        address = hop
        if not _trusted(hop, trusted):
            return hop
    return address


# -- per-address login throttling -------------------------------------------------------------


class LoginThrottle:
    """Failed logins per client address: `max_failures` within `window` seconds block that
    address until the oldest of them is `window` seconds old. Successes do not clear the count
    (an attacker's own account must not reset it). At most `max_addresses` are tracked."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0: it may now)."""
        if self.max_failures <= 0:
            return 0.0
        now = self.clock()
        times = self._recent(address, now)
        if times is None or len(times) < self.max_failures:
            return 0.0
        return max(0.0, times[-self.max_failures] + self.window - now)

    def failed(self, address: str) -> None:
        """Count one failed login from `address`."""
        now = self.clock()
        times = self._recent(address, now) or deque()
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)


# -- error pages ------------------------------------------------------------------------------

_MESSAGES = {
    403: (
        "No access",
        "Your account cannot open this page. Dashboards are for seller accounts; analysts "
        "use the lab. Log out to sign in with another account.",
    ),
    404: ("Not found", "There is no such page."),
}
_GENERIC = (
    "Something went wrong",
    "The server could not show this page. Try again in a moment; if it keeps happening, "
    "tell your administrator the reference below.",
)

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>amzigo: {title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}}
main{{max-width:440px;margin:10vh auto;background:#fff;padding:24px 28px;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.15)}} h1{{font-size:20px;margin:0 0 12px}}
p{{font-size:14px;line-height:1.45}} .ref{{color:#555;font-size:12px}}
a{{color:#1f5fa8}}
</style></head><body><main id="amz-error" data-status="{status}">
<h1>{title}</h1><p id="amz-error-text">{text}</p>
<p class="ref">Reference: <code id="amz-error-ref">{ref}</code></p>
<p>{links}</p></main></body></html>"""


def reference_id() -> str:
    """A short random id tying what a user sees to the operator log."""
    return secrets.token_hex(6)


def error_page(handler: web.RequestHandler, status_code: int, **kwargs: Any) -> None:
    """Write a plain error page (no exception text) and log the details under a reference."""
    ref = reference_id()
    exc_info = kwargs.get("exc_info")
    exc = exc_info[1] if exc_info else None
    log = getattr(handler, "log", None)
    if log is not None:
        detail = getattr(exc, "log_message", None) or (repr(exc) if exc else "-")
        if status_code >= 500 and exc_info:
            log.error("error ref %s: %s %s", ref, status_code, detail, exc_info=exc_info)
        else:
            log.warning("error ref %s: %s %s", ref, status_code, detail)
    title, text = _MESSAGES.get(status_code, _GENERIC if status_code >= 500 else ("Error", ""))
    if not text:
        text = "The request could not be handled."
    base = str(handler.settings.get("base_url", "/") or "/")
    links = f"<a id='amz-home' href='{html.escape(base)}'>Home</a>"
    if handler.current_user:
        links += f" · <a id='amz-logout' href='{html.escape(base)}logout'>Log out</a>"
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.finish(
        _ERROR_PAGE.format(
            title=html.escape(title),
            text=html.escape(text),
            status=status_code,
            ref=ref,
            links=links,
        )
    )


class SafeErrorPages:
    """Mixin for page handlers: `write_error` renders `error_page` (no traceback, a reference)."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The plain error page."""
        assert isinstance(self, web.RequestHandler)
        error_page(self, status_code, **kwargs)


def with_safe_errors(handler_class: type) -> type:
    """A subclass of `handler_class` whose error pages come from `error_page`."""
    return type(handler_class.__name__, (SafeErrorPages, handler_class), {})
