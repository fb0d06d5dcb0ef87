"""Test-only recipe for pointing the real ``python-amazon-sp-api`` client at the sandbox."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from amzigo_lab.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SandboxServer


@dataclass(frozen=True)
class SandboxMarketplace:
    """Duck-typed stand-in for ``sp_api.base.Marketplaces`` (endpoint, id, region)."""

    endpoint: str
    marketplace_id: str
    region: str


def clean_environment() -> None:
    """Drop env vars that silently change sp_api's behaviour."""
    os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
    os.environ.pop("AWS_ENV", None)


def clear_token_cache() -> None:
    """Forget access tokens cached (per refresh token, for 3200 s) by sp_api."""
    from sp_api.auth import access_token_client

    access_token_client.cache.clear()
    access_token_client.grantless_cache.clear()


def client_kwargs(
    server: SandboxServer, tenant: str, marketplace_id: str = "ATVPDKIKX0DER"
) -> dict[str, Any]:
    """Keyword arguments for any ``sp_api.api.*`` client talking to ``server`` as ``tenant``."""
    from sp_api.auth import AccessTokenClient
    from sp_api.base.credential_provider import FromCodeCredentialProvider

    token_client = type(
        "SandboxAccessTokenClient",
        (AccessTokenClient,),
        {"host": server.lwa_url.removeprefix("https://").removesuffix("/auth/o2/token")},
    )
    return {
        "credentials": {
            "refresh_token": f"sandbox-refresh-{tenant}",
            "lwa_app_id": SANDBOX_CLIENT_ID,
            "lwa_client_secret": SANDBOX_CLIENT_SECRET,
        },
        "marketplace": SandboxMarketplace(server.endpoint, marketplace_id, "NA"),
        "auth_token_client_class": token_client,
        "verify": ssl.create_default_context(cafile=str(server.ca_path)),
        "credential_providers": [FromCodeCredentialProvider],
    }
