"""The one factory that builds `python-amazon-ad-api` clients, for the sandbox or for Amazon.

Traps of the library (1.2.x) handled here:
- `AD_API_CLIENT_ID`/`AD_API_CLIENT_SECRET`/`AD_API_REFRESH_TOKEN` in the environment silently
  replace the credentials given in code, and `AD_API_DEFAULT_MARKETPLACE` is read at import: all
  `AD_API_*` variables are removed before the library is used.
- Importing `ad_api` calls `logging.basicConfig(level=INFO)` (root handler + level): the root
  logger is restored after the import, and the library's loggers are pinned at WARNING (their
  INFO output in debug mode carries headers with tokens).
- The LWA host is a class attribute (`api.amazon.com`) and the endpoint comes from a
  `Marketplaces` enum: a token-client subclass and a duck-typed marketplace point both at the
  sandbox, as `client.py` does for sp_api.
- `verify=` is handed to `requests`: a CA bundle path, never an `ssl.SSLContext`.
- Access tokens are cached module-globally per refresh token for 3200 s: `forget_token` evicts.
- A 2xx with a non-JSON body becomes `{}` silently: `MalformedResponse` is raised instead.
- `download_report` swallows transport errors into a 2xx-looking `ApiResponse` and ignores the
  HTTP status: `download` checks the bytes are GZIP (an expired URL answers XML).
- `post_report` sends `application/json`; the documented v3 content type is sent instead.
Credentials never come from code: the sandbox's fixed ones, or the environment
(`AMZIGO_ADS_CLIENT_ID`, `AMZIGO_ADS_CLIENT_SECRET`, `AMZIGO_ADS_REFRESH_TOKEN_<TENANT>`).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amzigo_lab.source.client import Connection, MalformedResponse, SourceError, env_suffix

ADS_HOSTS = {
    "NA": "https://advertising-api.amazon.com",
    "EU": "https://advertising-api-eu.amazon.com",
    "FE": "https://advertising-api-fe.amazon.com",
}
V3_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LOGGERS = ("ad_api", "ad_api.base.client", "ad_api.auth")


class DownloadFailed(SourceError):
    """A report URL that did not give a GZIP document (expired, or not the report's)."""


def clean_environment() -> None:
    """Drop `AD_API_*` variables (they override credentials given in code)."""
    for name in [n for n in os.environ if n.startswith("AD_API_")]:
        os.environ.pop(name, None)


def import_ad_api() -> Any:
    """Import `ad_api.api` without letting it reconfigure the root logger.

    Its import calls `logging.basicConfig(level=INFO)`, which is a no-op while the root logger
    has a handler: a placeholder handler during the import keeps it from ever installing one
    (removing it afterwards left a window in which other ingest threads' INFO lines reached
    stderr)."""
    clean_environment()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        import ad_api.api as api
    finally:
        root.removeHandler(placeholder)

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return api


@dataclass(frozen=True)
class AdsConnection:
    """How to reach the Ads API: its own LWA client and refresh tokens, endpoint, TLS."""

    kind: str
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_tokens: Mapping[str, str] = field(repr=False)
    lwa_host: str | None = None
    endpoint: str | None = None  # None: the region's Ads host
    ca_file: str | None = None


def ads_connection(
    connection: Connection, env: Mapping[str, str] | None = None
) -> AdsConnection | None:
    """The Ads connection that goes with an SP-API connection (None: no Ads credentials)."""
    if connection.kind == "sandbox":
        from amzigo_lab.sandbox.ads import ADS_CLIENT_ID, ADS_CLIENT_SECRET
        from amzigo_lab.sandbox.routes.ads import ads_refresh_token
        from amzigo_lab.sandbox.tenants import SELLERS

        return AdsConnection(
            "sandbox",
            ADS_CLIENT_ID,
            ADS_CLIENT_SECRET,
            {s.tenant: ads_refresh_token(s) for s in SELLERS},
            lwa_host=connection.lwa_host,
            endpoint=connection.endpoint,
            ca_file=connection.ca_file,
        )
    env = os.environ if env is None else env
    client_id, secret = env.get("AMZIGO_ADS_CLIENT_ID"), env.get("AMZIGO_ADS_CLIENT_SECRET")
    if not client_id or not secret:
        return None
    tokens = {
        t: env[f"AMZIGO_ADS_REFRESH_TOKEN_{env_suffix(t)}"]
        for t in connection.tenants
        if env.get(f"AMZIGO_ADS_REFRESH_TOKEN_{env_suffix(t)}")
    }
    return AdsConnection("amazon", client_id, secret, tokens)


@dataclass(frozen=True)
class _Endpoint:
    """Duck-typed stand-in for `ad_api.base.Marketplaces` (the client reads `.endpoint`)."""

    endpoint: str


def _checked_response(res: Any) -> Any:
    """The library's answer check, plus: a 2xx body that is not JSON is an error."""
    from ad_api.base import ApiResponse
    from ad_api.base.exceptions import get_exception_for_code

    status = int(res.status_code)
    try:
        body: Any = res.json() if res.content else {}
    except ValueError:
        body = None
    if status >= 400:
        raise get_exception_for_code(status)(status, body if body is not None else {}, res.headers)
    if body is None:
        raise MalformedResponse(f"Ads API HTTP {status} response is not valid JSON")
    return ApiResponse(body, None, headers=res.headers)


class AdsFactory:
    """Builds Ads API clients for one connection (the only place they are made)."""

    def __init__(self, connection: AdsConnection) -> None:
        self.connection = connection
        self.api = import_ad_api()
        from ad_api.auth import AccessTokenClient

        self._token_class: type = AccessTokenClient
        if connection.lwa_host is not None:
            self._token_class = type(
                "SandboxAdsTokenClient", (AccessTokenClient,), {"host": connection.lwa_host}
            )
        self._verify: str | bool = connection.ca_file or True
        self._classes: dict[type, type] = {}
        #: seller profiles by tenant and marketplace, listed once per ingest
        self.profiles: dict[str, dict[str, dict[str, Any]]] = {}

    def _class(self, api_class: type) -> type:
        if api_class not in self._classes:

            def create_report(client: Any, body: dict[str, Any]) -> Any:
                return client._request(
                    "/reporting/reports",
                    data=json.dumps(body),
                    params={"method": "POST"},
                    headers={"Content-Type": V3_CONTENT_TYPE, "Accept": V3_CONTENT_TYPE},
                )

            self._classes[api_class] = type(
                f"Checked{api_class.__name__}",
                (api_class,),
                {
                    "_check_response": staticmethod(_checked_response),
                    "create_report": create_report,
                },
            )
        return self._classes[api_class]

    def endpoint(self, region: str) -> str:
        """The Ads host of a region (or the sandbox)."""
        return self.connection.endpoint or ADS_HOSTS.get(region, ADS_HOSTS["NA"])

    def client(
        self, api_class: type, tenant: str, region: str, profile_id: str | None = None
    ) -> Any:
        """A checked client of `api_class` for `tenant` (scoped to `profile_id` if given)."""
        token = self.connection.refresh_tokens.get(tenant)
        if token is None:
            raise SourceError(
                f"no Ads refresh token for tenant {tenant!r}: set AMZIGO_ADS_REFRESH_TOKEN_"
                f"{env_suffix(tenant)}"
            )
        credentials = {
            "refresh_token": token,
            "client_id": self.connection.client_id,
            "client_secret": self.connection.client_secret,
        }
        if profile_id is not None:
            credentials["profile_id"] = str(profile_id)
        cls = self._class(api_class)
        clean_environment()
        client = cls(
            marketplace=_Endpoint(self.endpoint(region)),
            credentials=credentials,
            verify=self._verify,
            timeout=60,
            verify_additional_credentials=profile_id is not None,
        )
        client._auth = self._token_class(
            credentials=client.credentials, verify=self._verify, timeout=60
        )
        return client

    def forget_token(self, tenant: str) -> None:
        """Evict the cached Ads access token of `tenant`."""
        from ad_api.auth import access_token_client

        token = self.connection.refresh_tokens.get(tenant)
        if token is not None:
            client = access_token_client.AccessTokenClient(
                credentials={"refresh_token": token, "client_id": "", "client_secret": ""}
            )
            access_token_client.cache.pop(client._get_cache_key(), None)


def duplicate_of(exc: BaseException) -> str | None:
    """The report id a 425 duplicate-request answer names, if `exc` is one."""
    if getattr(exc, "code", None) != 425:
        return None
    found = _UUID.search(json.dumps(getattr(exc, "error", None), default=str))
    return found.group(0) if found else None


def download(client: Any, url: str) -> list[Any]:
    """Download and decode one report (GZIP JSON array of rows) through the client.

    A truncated GZIP raises `zlib.error`/`EOFError` (transient: retried by the scheduler); an
    answer that is not GZIP at all (expired URL, transport error) raises `DownloadFailed`.
    """
    response = client.download_report(url=url, format="raw")
    data = response.payload
    if not isinstance(data, bytes | bytearray) or data[:2] != b"\x1f\x8b":
        raise DownloadFailed("report URL did not answer a GZIP document (expired?)")
    text = gzip.decompress(bytes(data))
    try:
        rows = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("report document is not UTF-8 JSON") from None
    if not isinstance(rows, list):
        raise MalformedResponse("report document is not a JSON array")
    return rows


__all__ = [
    "AdsConnection",
    "AdsFactory",
    "DownloadFailed",
    "ads_connection",
    "download",
    "duplicate_of",
]
