"""Asking the home's running gateway to empty its hot cache, for a drop run by another process.

A crypto-shred (`amzigo purge`, `amzigo doctor --fix`, the demo's purge) refuses to destroy a key
while any process holds decrypted copies in its hot cache (`lake/hot_cache.py`). The gateway is
the process that caches; the command that drops injects `release_gateway_cache` as the drop's
`on_busy` callback (`amzigo_lab.home.release_gateway_cache_on_drop`), so the drop asks the
gateway (operator credential, audited there as `gateway.hot_cache`) and tries once more. No
gateway is started for this: one that is not running holds nothing.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient

#: How long the drop waits for the gateway's answer: the gateway empties its cache on its home
#: thread, after the call it is running (a long query, or a gateway write waiting for the lake
#: lock this drop holds: then the drop is refused after this long, nothing changed).
RELEASE_TIMEOUT_S = 120.0


def release_gateway_cache(home: Path, reason: str) -> dict[str, Any]:
    """Have the home's running gateway empty its hot cache; what it released. Raises
    `GatewayUnavailable` (no gateway answers) or `AccessDenied` (not the service account)."""
    try:
        token = operator_token(home)
        with GatewayClient(protocol.default_address(home), token) as client:
            return client.action(
                protocol.HOT_CACHE_RELEASE,
                {"reason": reason, "os_user": getpass.getuser()},
                timeout=RELEASE_TIMEOUT_S,
            )
    except protocol.GatewayUnavailable as exc:
        raise protocol.GatewayUnavailable(
            f"the home's gateway did not answer ({exc}); if none runs, the holder is another "
            "process (a notebook or job that enabled a hot cache on this home): stop it"
        ) from None
