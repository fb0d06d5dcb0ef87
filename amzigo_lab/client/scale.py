"""Distributed reads, client side: plan a job at the gateway, and a pyarrow KMS client that asks
the gateway's unwrap endpoint for each KEK with the job token.

No key lives here: a worker holds the job token (scope-bound, short-lived), sends a file's
wrapped KEK and its partition key id, and gets the KEK back (HTTPS, TLS 1.2+, trusting only
the CA the plan names). pyarrow caches KEKs per token for `CACHE_SECONDS`; a revoked job is
refused at its next unwrap (401). The protocol: docs/architecture.md ("Key service").

    from amzigo_lab.client.scale import plan_job
    plan = plan_job(wb, ["orders"], tenants=["acme"], engine="dask")
    props = file_decryption_properties(plan.connection())
    pq.ParquetFile(plan.files["orders"][0], decryption_properties=props)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.client
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet.encryption as pe

from amzigo_lab.client import protocol
from amzigo_lab.client.transport import GatewayClient
from amzigo_lab.errors import AccessDenied

#: How long workers keep an unwrapped KEK (pyarrow's cache; Spark's cache.lifetime): a revoked
#: job stops within this time even on a worker that already holds its keys.
CACHE_SECONDS = 60
TIMEOUT = 30.0


class KeyServiceError(protocol.GatewayError):
    """The unwrap endpoint answered with an error other than a refusal."""


@dataclass(frozen=True)
class JobPlan:
    """A planned distributed read: `scale.plan`'s answer (see the protocol)."""

    job_id: str
    job_token: str = field(repr=False)
    expires_at: str
    unwrap_url: str
    ca_pem: str = field(repr=False)
    lake_dir: str
    files: dict[str, list[str]]
    key_ids: list[str]
    datasets: dict[str, dict[str, Any]]

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> JobPlan:
        """Build from the action's JSON answer."""
        return cls(
            job_id=str(answer["job_id"]),
            job_token=str(answer["job_token"]),
            expires_at=str(answer["expires_at"]),
            unwrap_url=str(answer["unwrap_url"]),
            ca_pem=str(answer["ca_pem"]),
            lake_dir=str(answer["lake_dir"]),
            files={k: [str(p) for p in v] for k, v in answer["files"].items()},
            key_ids=[str(k) for k in answer["key_ids"]],
            datasets=dict(answer.get("datasets") or {}),
        )

    def connection(self) -> KeyService:
        """What a worker needs to unwrap (URL, token, CA): small and picklable."""
        return KeyService(self.unwrap_url, self.job_token, self.ca_pem)


@dataclass(frozen=True)
class KeyService:
    """The unwrap endpoint and the job token, as shipped to workers."""

    url: str
    token: str = field(repr=False)
    ca_pem: str = field(repr=False)


def _client_of(conn: Any) -> tuple[GatewayClient, str]:
    """(GatewayClient, default purpose) of a client Workbench or a GatewayClient."""
    if isinstance(conn, GatewayClient):
        return conn, ""
    client = getattr(conn, "_client", None)
    if isinstance(client, GatewayClient):
        return client, str(getattr(conn, "purpose", "") or "")
    raise TypeError(
        "plan_job needs amzigo_lab.connect(...)'s session or a GatewayClient with a token"
    )


def _iso(value: dt.date | str | None) -> str | None:
    return None if value is None else str(value if isinstance(value, str) else value.isoformat())


def plan_job(
    session_or_connection: Any,
    datasets: list[str],
    tenants: list[str] | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
    purpose: str | None = None,
    engine: str = "dask",
    ttl_s: float | None = None,
) -> JobPlan:
    """Ask the gateway for a job over `datasets` (tenants None: every granted one; ingest dates
    within [since, until]) for `purpose` (default: the session's). The gateway applies the
    governed read's policy (refusals raise AccessDenied, audited) and answers with the
    committed files and a job token (expires in 15 minutes unless `ttl_s`)."""
    client, default_purpose = _client_of(session_or_connection)
    body: dict[str, Any] = {
        "datasets": list(datasets),
        "tenants": None if tenants is None else list(tenants),
        "since": _iso(since),
        "until": _iso(until),
        "purpose": purpose or default_purpose,
        "engine": engine,
    }
    if ttl_s is not None:
        body["ttl_s"] = ttl_s
    return JobPlan.from_answer(client.action(protocol.SCALE_PLAN, body))


def revoke_job(session_or_connection: Any, plan: JobPlan) -> bool:
    """End a job now (its workers' next unwrap is refused); True if it was live."""
    client, _ = _client_of(session_or_connection)
    return bool(client.action(protocol.SCALE_REVOKE, {"job_token": plan.job_token})["revoked"])


def _context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def unwrap(service: KeyService, wrapped_kek: str, key_id: str) -> bytes:
    """Ask the unwrap endpoint for one KEK. AccessDenied on 401/403 (the message says why),
    KeyServiceError otherwise."""
    url = urllib.parse.urlsplit(service.url)
    if url.scheme != "https" or not url.hostname:
        raise KeyServiceError(f"the unwrap URL must be https://HOST:PORT/...: {service.url!r}")
    body = json.dumps({"key_id": key_id, "wrapped_kek": wrapped_kek}).encode()
    conn = http.client.HTTPSConnection(
        url.hostname, url.port or 443, timeout=TIMEOUT, context=_context(service.ca_pem)
    )
    try:
        conn.request(
            "POST",
            url.path,
            body=body,
            headers={
                "Authorization": f"Bearer {service.token}",
                "Content-Type": "application/json",
            },
        )
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise KeyServiceError(
            f"cannot reach the key service at {service.url} ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        conn.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    if response.status in (401, 403):
        raise AccessDenied(f"key service: {answer.get('error') or response.reason}")
    if response.status != 200:
        raise KeyServiceError(
            f"key service answered {response.status}: {answer.get('error') or response.reason}"
        )
    try:
        return base64.b64decode(str(answer["kek"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise KeyServiceError("the key service's answer holds no KEK") from None


class GatewayKmsClient(pe.KmsClient):
    """A pyarrow KMS client whose unwrap asks the gateway; wrapping is refused (read-only)."""

    def __init__(self, service: KeyService) -> None:
        pe.KmsClient.__init__(self)
        self._service = service

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Refused: distributed readers never write lake files."""
        raise AccessDenied("the lake's key service is read-only: write through the lake")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        """The KEK of `wrapped_key` under partition key `master_key_identifier`."""
        return unwrap(self._service, wrapped_key, master_key_identifier)


_FACTORIES: dict[KeyService, pe.CryptoFactory] = {}
_FACTORIES_LOCK = threading.Lock()


def file_decryption_properties(service: KeyService) -> pe.FileDecryptionProperties:
    """Decryption properties for lake files, unwrapping through `service`. One factory per
    job and process, so each KEK is unwrapped once per `CACHE_SECONDS` per worker."""
    with _FACTORIES_LOCK:
        factory = _FACTORIES.get(service)
        if factory is None:
            factory = pe.CryptoFactory(lambda _config: GatewayKmsClient(service))
            _FACTORIES[service] = factory
    return factory.file_decryption_properties(
        pe.KmsConnectionConfig(),
        pe.DecryptionConfiguration(cache_lifetime=dt.timedelta(seconds=CACHE_SECONDS)),
    )


def forget(service: KeyService) -> None:
    """Drop this process's cached KEKs of a job (after the job ends)."""
    with _FACTORIES_LOCK:
        factory = _FACTORIES.pop(service, None)
    if factory is not None:
        factory.remove_cache_entries_for_all_tokens()
