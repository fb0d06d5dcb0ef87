"""The one factory that builds `python-amazon-sp-api` clients, for the sandbox or for Amazon.

Traps handled here (see facts/spapi.md):
- `SP_API_DEFAULT_MARKETPLACE` silently overrides `marketplace=` and `AWS_ENV` changes the
  library's behaviour at import: both are removed from the environment before sp_api is used.
- Access tokens are cached module-globally per refresh token for 3200 s, ignoring `expires_in`:
  `forget_token()` evicts one tenant's entry (used once when a token is reported expired).
- A non-JSON or empty error body (e.g. 503 with no body) gives `ApiResponse(payload={})` and no
  exception: `CheckedResponses._check_response` raises on every status >= 400 and on a 2xx body
  that is not JSON (`MalformedResponse`).
- Report documents default to iso-8859-1: `download_document` always decodes UTF-8.
- sp_api loggers at DEBUG write tokens and payloads: they are pinned at INFO or above.

Credentials never come from code: the encrypted store of the home (`lake.secret`) or the
environment (`AMZIGO_LWA_CLIENT_ID`, `AMZIGO_LWA_CLIENT_SECRET`, `AMZIGO_REFRESH_TOKEN_<TENANT>`,
`AMZIGO_MARKETPLACES_<TENANT>`). With none configured the embedded sandbox is used.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from amzigo_lab.errors import AmzigoError, KeyProviderError

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

SECRET_CLIENT_ID = "spapi.lwa_client_id"  # noqa: S105 - names of secrets, not secrets
SECRET_CLIENT_SECRET = "spapi.lwa_client_secret"  # noqa: S105 - a secret's name, not a secret
SECRET_REFRESH_PREFIX = "spapi.refresh_token."  # noqa: S105
SECRET_MARKETPLACES_PREFIX = "spapi.marketplaces."  # noqa: S105
_SP_LOGGERS = ("sp_api", "sp_api.base.client", "sp_api.auth", "sp_api.auth.access_token_client")

C = TypeVar("C")


class SourceError(AmzigoError):
    """An SP-API call or stream failed in a way retries cannot fix."""


class ReportMismatch(SourceError):
    """A report or document that is not the one requested (never written): SP-API's and the
    Ads API's report streams check the answers they get against their request."""


class MalformedResponse(SourceError):
    """A 2xx response whose body is not valid JSON (a truncated or corrupted page)."""


class EmptyErrorResponse(SourceError):
    """An error status with no parseable body (e.g. 503 with an empty body)."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status} with an empty or non-JSON body")
        self.code = status
        self.headers = dict(headers)


def clean_environment() -> None:
    """Drop variables that silently change sp_api (marketplace override, AWS_ENV)."""
    os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
    os.environ.pop("AWS_ENV", None)


def quiet_loggers() -> None:
    """Keep sp_api loggers at INFO or above: their DEBUG output carries tokens and payloads."""
    for name in _SP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


clean_environment()


class CheckedResponses:
    """Mixin for sp_api clients: raise on any status >= 400 and on non-JSON 2xx bodies.

    Parses the body once (the library would parse it again) and builds the same `ApiResponse`.
    """

    method: str

    def _check_response(
        self, res: Any, res_no_data: bool = False, bulk: bool = False, wrap_list: bool = False
    ) -> Any:
        from sp_api.base import ApiResponse
        from sp_api.base.exceptions import get_exception_for_code

        status = int(res.status_code)
        content = res.content
        try:
            body: Any = json.loads(content) if content else {}
        except ValueError:
            body = None
        if status >= 400:
            errors = body.get("errors") if isinstance(body, dict) else None
            if errors:
                raise get_exception_for_code(status)(errors, headers=res.headers)
            raise EmptyErrorResponse(status, res.headers)
        if body is None:
            raise MalformedResponse(
                f"HTTP {status} response of {len(content)} bytes is not valid JSON "
                "(truncated or corrupted page)"
            )
        if isinstance(body, list):
            body = {"payload": body} if wrap_list else (body[0] if body else {})
        if not isinstance(body, dict):
            raise MalformedResponse(f"HTTP {status} response is JSON but not an object")
        return ApiResponse(**body, headers=res.headers)


_CHECKED: dict[type, type] = {}


def checked(api_class: type[C]) -> type[C]:
    """The `CheckedResponses` subclass of an sp_api client class (cached)."""
    if api_class not in _CHECKED:
        _CHECKED[api_class] = type(
            f"Checked{api_class.__name__}", (CheckedResponses, api_class), {}
        )
    return _CHECKED[api_class]


@dataclass(frozen=True)
class Marketplace:
    """Duck-typed stand-in for `sp_api.base.Marketplaces` (endpoint, id, region)."""

    endpoint: str
    marketplace_id: str
    region: str


@dataclass(frozen=True)
class Connection:
    """How to reach an SP-API: endpoint(s), LWA host, TLS verification and credentials."""

    kind: str  # "sandbox" or "amazon"
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_tokens: Mapping[str, str] = field(repr=False)
    marketplaces: Mapping[str, tuple[str, ...]]
    lwa_host: str | None = None  # None: Amazon's api.amazon.com
    endpoint: str | None = None  # None: the marketplace's regional endpoint
    ca_file: str | None = None
    time_scale: float = 1.0  # the sandbox runs its clocks faster; Amazon runs at 1

    @property
    def tenants(self) -> list[str]:
        """Tenants with a refresh token."""
        return sorted(self.refresh_tokens)


class ClientFactory:
    """Builds checked sp_api clients for one connection (the only place clients are made)."""

    def __init__(self, connection: Connection) -> None:
        clean_environment()
        quiet_loggers()
        self.connection = connection
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=connection.ca_file) if connection.ca_file else True
        )
        self._token_class = self._token_client_class()

    def _token_client_class(self) -> type:
        from sp_api.auth import AccessTokenClient

        if self.connection.lwa_host is None:
            return AccessTokenClient
        return type(
            "SandboxAccessTokenClient", (AccessTokenClient,), {"host": self.connection.lwa_host}
        )

    def marketplace(self, marketplace_id: str) -> Marketplace:
        """The endpoint/region of a marketplace for this connection."""
        from sp_api.base import Marketplaces

        known = next((m for m in Marketplaces if m.marketplace_id == marketplace_id), None)
        region = known.region if known is not None else "NA"
        endpoint = self.connection.endpoint or (known.endpoint if known is not None else None)
        if endpoint is None:
            raise SourceError(f"unknown marketplace id {marketplace_id!r}: no endpoint for it")
        return Marketplace(endpoint, marketplace_id, region)

    def client(self, api_class: type[C], tenant: str, marketplace_id: str, **kwargs: Any) -> C:
        """A checked client of `api_class` acting for `tenant` in `marketplace_id`."""
        from sp_api.base.credential_provider import FromCodeCredentialProvider

        token = self.connection.refresh_tokens.get(tenant)
        if token is None:
            raise SourceError(
                f"no refresh token for tenant {tenant!r}: set AMZIGO_REFRESH_TOKEN_"
                f"{env_suffix(tenant)} or store secret {SECRET_REFRESH_PREFIX}{tenant}"
            )
        credentials = {
            "refresh_token": token,
            "lwa_app_id": self.connection.client_id,
            "lwa_client_secret": self.connection.client_secret,
        }
        cls: Any = checked(api_class)
        return cls(
            marketplace=self.marketplace(marketplace_id),
            credentials=credentials,
            credential_providers=[FromCodeCredentialProvider],
            auth_token_client_class=self._token_class,
            verify=self._verify,
            timeout=60,
            **kwargs,
        )

    def forget_token(self, tenant: str) -> None:
        """Evict the cached access token of `tenant` (sp_api caches them for 3200 s)."""
        from sp_api.auth import access_token_client
        from sp_api.auth._core import build_cache_key

        token = self.connection.refresh_tokens.get(tenant)
        if token is not None:
            access_token_client.cache.pop(build_cache_key(token, ""), None)


def download_document(reports_client: Any, document_id: str) -> Any:
    """Fetch and decode (UTF-8, GZIP handled) one report document via the reports client.

    Returns the `ApiResponse` (its `rate_limit` feeds the scheduler); the text is in
    `payload["document"]`. A truncated GZIP stream raises `zlib.error` (retried by the caller).
    """
    response = reports_client.get_report_document(
        document_id, download=True, character_code="utf-8"
    )
    document = response.payload.get("document")
    if isinstance(document, bytes):  # sp_api returns bytes when decoding fails
        raise MalformedResponse(f"report document {document_id} is not valid UTF-8")
    if not isinstance(document, str):
        raise MalformedResponse(f"report document {document_id} has no content")
    return response


def env_suffix(tenant: str) -> str:
    """`acme-outdoor` -> `ACME_OUTDOOR` (environment variable suffix)."""
    return tenant.upper().replace("-", "_")


def amazon_connection(
    lake: Lake | None, env: Mapping[str, str] | None = None, tenants: list[str] | None = None
) -> Connection | None:
    """The Amazon connection configured in the encrypted store or the environment, or None.

    The encrypted store wins over the environment. Tenants are those with a refresh token.
    """
    env = os.environ if env is None else env
    stored: dict[str, str] = {}
    if lake is not None:
        for name, _created, _rotated in lake.secret_names():
            if name.startswith("spapi."):
                try:
                    stored[name] = lake.secret(name, create=False).decode("utf-8")
                except (KeyProviderError, UnicodeDecodeError):
                    continue
    client_id = stored.get(SECRET_CLIENT_ID) or env.get("AMZIGO_LWA_CLIENT_ID")
    client_secret = stored.get(SECRET_CLIENT_SECRET) or env.get("AMZIGO_LWA_CLIENT_SECRET")
    if not client_id or not client_secret:
        return None
    tokens: dict[str, str] = {}
    markets: dict[str, tuple[str, ...]] = {}
    for name, value in stored.items():
        if name.startswith(SECRET_REFRESH_PREFIX):
            tokens[name[len(SECRET_REFRESH_PREFIX) :]] = value
    for name, value in env.items():
        if name.startswith("AMZIGO_REFRESH_TOKEN_"):
            tenant = name[len("AMZIGO_REFRESH_TOKEN_") :].lower().replace("_", "-")
            tokens.setdefault(tenant, value)
    for tenant in tokens:
        raw = stored.get(SECRET_MARKETPLACES_PREFIX + tenant) or env.get(
            "AMZIGO_MARKETPLACES_" + env_suffix(tenant), "ATVPDKIKX0DER"
        )
        markets[tenant] = tuple(m.strip() for m in raw.split(",") if m.strip())
    if tenants is not None:
        tokens = {t: v for t, v in tokens.items() if t in tenants}
    if not tokens:
        return None
    return Connection("amazon", client_id, client_secret, tokens, markets)


def sandbox_connection(server: Any, time_scale: float = 1.0) -> Connection:
    """The connection to a running `SandboxServer` (its sellers are the tenants)."""
    from amzigo_lab.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SELLERS

    return Connection(
        kind="sandbox",
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        refresh_tokens={s.tenant: s.refresh_token for s in SELLERS},
        marketplaces={s.tenant: tuple(m.marketplace_id for m in s.marketplaces) for s in SELLERS},
        lwa_host=server.lwa_url.removeprefix("https://").removesuffix("/auth/o2/token"),
        endpoint=server.endpoint,
        ca_file=str(server.ca_path),
        time_scale=time_scale,
    )
