"""Helpers for the sandbox tests: model validators and a small HTTPS client."""

from __future__ import annotations

import json
import ssl
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from amzigo_lab.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SandboxServer,
)

MODELS = Path("/work/shared/spapi-models/models")
SCHEMAS = Path("/work/shared/spapi-models/schemas")
TODAY = date(2026, 11, 20)
SEED = 7
US = "ATVPDKIKX0DER"
UK = "A1F83G8C2ARO7P"
DE = "A1PA6795UKMFR9"

MODEL_FILES = {
    "orders_v0": "orders-api-model/ordersV0.json",
    "orders_2026": "orders-api-model/orders_2026-01-01.json",
    "reports": "reports-api-model/reports_2021-06-30.json",
    "inventory": "fba-inventory-api-model/fbaInventory.json",
    "finances": "finances-api-model/financesV0.json",
    "catalog": "catalog-items-api-model/catalogItems_2022-04-01.json",
    "feedback": "customer-feedback-api-model/customerFeedback_2024-06-01.json",
    "solicitations": "solicitations-api-model/solicitations.json",
    "sales": "sales-api-model/sales.json",
    "tokens": "tokens-api-model/tokens_2021-03-01.json",
}


@cache
def model(name: str) -> dict[str, Any]:
    """Load an official Swagger model."""
    return json.loads((MODELS / MODEL_FILES[name]).read_text())


def validate_response(name: str, path: str, method: str, body: Any, status: str = "200") -> None:
    """Validate ``body`` against the response schema the model gives ``method path``."""
    spec = model(name)
    responses = spec["paths"][path][method]["responses"]
    ref = responses[status]["schema"]["$ref"]
    schema = {"$ref": ref, "definitions": spec["definitions"]}
    jsonschema.Draft4Validator(schema).validate(body)


def validate_sales_and_traffic(document: Any) -> None:
    """Validate a Sales & Traffic document against the official JSON Schema."""
    schema = json.loads((SCHEMAS / "reports/sellerSalesAndTrafficReport.json").read_text())
    jsonschema.Draft7Validator(schema).validate(document)


def lwa_form(tenant: str) -> dict[str, str]:
    """LWA refresh-token form of ``tenant``."""
    return {
        "grant_type": "refresh_token",
        "refresh_token": f"sandbox-refresh-{tenant}",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
    }


class Api:
    """A tiny HTTPS client for a sandbox server, authenticated as one tenant."""

    def __init__(self, server: SandboxServer, tenant: str = "acme-outdoor") -> None:
        self.server = server
        self.context = ssl.create_default_context(cafile=str(server.ca_path))
        self.http = httpx.Client(base_url=server.endpoint, verify=self.context, timeout=30)
        self.tenant = tenant
        self._token: str | None = None

    def token(self, refresh: bool = False) -> str:
        """An access token for the tenant."""
        if self._token is None or refresh:
            response = self.http.post("/auth/o2/token", data=lwa_form(self.tenant))
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """Authenticated GET."""
        headers = {"x-amz-access-token": token or self.token()}
        return self.http.get(path, params=params, headers=headers)

    def post(self, path: str, body: Any, token: str | None = None, **params: Any) -> httpx.Response:
        """Authenticated POST with a JSON body."""
        headers = {"x-amz-access-token": token or self.token()}
        return self.http.post(path, json=body, params=params, headers=headers)
