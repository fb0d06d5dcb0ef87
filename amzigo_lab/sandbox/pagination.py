"""Opaque, stable, tamper-evident pagination tokens carrying the query and the position."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from .errors import invalid_input


class Paginator:
    """Issues and validates next-page tokens bound to an operation and a seller."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> str:
        """Truncated HMAC-SHA256 of ``payload``."""
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def issue(self, operation: str, seller_id: str, state: dict[str, Any]) -> str:
        """Token for the page described by ``state`` (same inputs give the same token)."""
        document = {"o": operation, "s": seller_id, "q": state}
        payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
        body = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
        return f"{body}.{self._sign(payload)}"

    def resolve(self, token: str, operation: str, seller_id: str) -> dict[str, Any]:
        """State stored in ``token``; 400 ``InvalidInput`` if it is forged or foreign."""
        body, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            document = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid_input("Invalid pagination token.") from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise invalid_input("Invalid pagination token.")
        if document.get("o") != operation or document.get("s") != seller_id:
            raise invalid_input("The pagination token does not belong to this request.")
        state = document.get("q")
        if not isinstance(state, dict):
            raise invalid_input("Invalid pagination token.")
        return state
