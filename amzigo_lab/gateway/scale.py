"""The gateway as key service for distributed engines (Spark, Dask): plan a job, unwrap KEKs.

`scale.plan` (a person's login or kernel token, or a service token) runs the governed read's
own policy decision (`Policy.access`, as `governance.session.Workbench` and `ServiceReader`
use it) for each dataset, chooses the files from the catalog exactly as a governed read does
(`Lake.scan`: row MACs checked, live partitions only, never a directory listing), and mints a
job token bound to that scope's partition key ids (`amzigo_lab.gateway.jobs`). The reply gives
the files, key ids, the unwrap endpoint's URL and CA, and per dataset its schema and the
latest-state rule; see /work/notes/scale-protocol.md (docs/architecture.md, "Key service").

Unwrapping (`unwrap`, called by the HTTPS endpoint in `amzigo_lab.gateway.unwrap_endpoint`)
turns a wrapped KEK into the KEK with `PartitionKms.unwrap_key`, the very function the lake's
pyarrow KmsClient uses, and only for a key id in the token's scope whose partition is still
live. Audit: one `scale.plan` per plan (allow or deny), `scale.unwrap` for refused unwraps (403,
or 401 for a token that was once valid: per job the first at once, then at most one a minute
with the count since), and one `scale.job` summary when a job ends
(revoked, expired, scope dropped, gateway stopped) with its unwrap counts. Unwraps that succeed
are counted in memory, not audited one by one: a Spark job over a year of partitions makes
thousands. Never a key, a KEK or a token in an event or the log.

Revocation: a drop of a partition in a job's scope (purge, deletion notice, DSR erasure, an
operator's drop) ends the job: at once when the drop ran in this gateway (its `lake.drop`
event), else at the job's next unwrap (each unwrap looks up the key's partition in the
catalog) or within the gateway's 30-second housekeeping, whichever is first. Drops do not wait
for running jobs: the job is refused from then on (401) and the files are gone.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import threading
import time
import uuid
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayProtocolError
from amzigo_lab.client.workbench import schema_to_b64
from amzigo_lab.errors import AccessDenied, AmzigoError, KeyProviderError
from amzigo_lab.gateway.calls import Calls, date_of
from amzigo_lab.gateway.jobs import DEFAULT_TTL, MAX_TTL, MIN_TTL, Job, JobTokens
from amzigo_lab.names import tenant_id

LOG = logging.getLogger("amzigo.gateway")
ENGINES = ("spark", "dask")
UNWRAP_PATH = "/v1/unwrap"
#: How long a plan waits for the unwrap endpoint of a gateway that is still starting.
ENDPOINT_WAIT = 30.0
#: Seconds between re-checks of a job planner's session and rights (at its next unwrap).
RECHECK_EVERY = 5.0
#: At most one audit event per job per this many seconds for its refused unwraps (with a count).
DENIAL_EVERY = 60.0
#: At most one audit event per this many seconds for unwraps with an unknown token (each with
#: the count since the last one): an unauthenticated caller cannot flood the audit log.
UNKNOWN_TOKEN_EVERY = 60.0


class ScaleKeys:
    """Plans jobs and unwraps KEKs for them; all methods run on the gateway's home thread,
    except `notice_drop` (an audit listener) and the endpoint bookkeeping."""

    def __init__(self, calls: Calls) -> None:
        self._calls = calls
        self.jobs = JobTokens(calls.clock)
        self.unwrap_url = ""
        self.ca_pem = ""
        self._unknown_last = 0.0
        self._unknown_count = 0
        self._settled = threading.Event()  # the endpoint started, failed, or is not wanted
        self._drops_seen = False  # a `lake.drop` was audited during the running call
        calls.gov.sink.listeners.append(self.notice_drop)

    # -- the endpoint --------------------------------------------------------------------------
    def attach_endpoint(self, url: str, ca_pem: str) -> None:
        """Record where the unwrap endpoint listens and the CA that signed its certificate."""
        self.unwrap_url, self.ca_pem = url, ca_pem
        self._settled.set()

    def settle(self) -> None:
        """No endpoint will be attached (none configured, or it failed): plans stop waiting."""
        self._settled.set()

    # -- planning ------------------------------------------------------------------------------
    def plan(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """`scale.plan`: check the policy for the scope, choose the files, mint the token."""
        from amzigo_lab.governance.policy import Principal
        from amzigo_lab.governance.service import SERVICE_ROLE

        calls, gov = self._calls, self._calls.gov
        action = protocol.SCALE_PLAN
        purpose = str(body.get("purpose") or "")
        engine = str(body.get("engine") or "")
        if engine not in ENGINES:
            raise GatewayProtocolError(f"scale.plan: engine must be one of {', '.join(ENGINES)}")
        datasets = body.get("datasets")
        if not isinstance(datasets, list) or not datasets:
            raise GatewayProtocolError("scale.plan needs datasets (a non-empty list)")
        names = sorted({gov.lake.spec(str(d)).name for d in datasets})  # UnknownDataset
        wanted = _tenants(body.get("tenants"))
        since, until = date_of(body, "since"), date_of(body, "until")
        ttl = _ttl(body.get("ttl_s"))
        if JobTokens.looks_like(token):
            calls.deny("a job token cannot plan another job", action)
        if token and calls.tokens.looks_like(token):
            grant = calls.service_grant(token, action)
            who = Principal(grant.actor, (SERVICE_ROLE,), grant.tenant)
            actor, session = grant.actor, ""
            if purpose not in grant.purposes:
                self._refuse(actor, session, purpose, names, "purpose not in the service token")
        else:
            if calls.is_operator(token):
                calls.deny("the operator credential reads no data; log in as a person", action)
            person = calls.user_session(token, action)
            who = gov.principal_of(person)
            actor, session = str(person.user_id), f"s{person.session_id}"
        check = gov.policy.check_purpose(who, purpose)
        if not check.allowed:
            self._refuse(actor, session, purpose, names, check.reason)
        scope: dict[str, list[str] | None] = {}
        for name in names:
            spec = gov.lake.spec(name)
            access = gov.policy.access(who, spec, purpose)
            if not access.allowed:
                self._refuse(actor, session, purpose, [name], access.reason)
            if access.tenants is None:
                scope[name] = wanted
                continue
            outside = [t for t in wanted or [] if t not in access.tenants]
            if outside:
                decision = gov.policy.decide(who, spec, outside[0], purpose)
                self._refuse(actor, session, purpose, [name], decision.reason)
            scope[name] = sorted(access.tenants) if wanted is None else wanted
        files: dict[str, list[str]] = {}
        described: dict[str, dict[str, Any]] = {}
        key_partitions: dict[str, int] = {}
        tenants: set[str] = set()
        read: dict[str, frozenset[str]] = {}
        for name, chosen in scope.items():
            scan = gov.lake.scan(name, chosen, since, until) if chosen != [] else None
            spec = gov.lake.spec(name)
            files[name] = [] if scan is None else list(scan.paths)
            if scan is not None:
                key_partitions.update({p.key_id: p.id for p in scan.partitions})
                tenants.update(p.tenant for p in scan.partitions)
                read[name] = frozenset(p.tenant for p in scan.partitions)
                scan.keys.clear()  # the plan needs key ids only
            described[name] = {
                "dir": str(gov.lake.root / spec.origin / spec.name),
                "schema": schema_to_b64(_schema(spec)),
                "partition_fields": list(spec.partition_fields),
                "latest": _latest_rule(spec),
            }
        if not self.unwrap_url:  # the Flight server answers before the endpoint is up
            self._settled.wait(ENDPOINT_WAIT)
        if not self.unwrap_url:
            raise AmzigoError(
                "this gateway serves no unwrap endpoint (it failed to start: see the gateway "
                "log), so no distributed read can get keys"
            )
        now = calls.clock()
        job = Job(
            job_id="job-" + uuid.uuid4().hex[:16],
            actor=actor,
            session=session,
            purpose=purpose,
            engine=engine,
            datasets=tuple(names),
            tenants=tuple(sorted(tenants)),
            key_partitions=key_partitions,
            files=sum(len(f) for f in files.values()),
            expires=now + ttl,
            credential=token,
            scope=read,
            checked_at=time.monotonic(),
        )
        secret = self.jobs.mint(job)
        gov.emit(
            "scale.plan",
            actor=actor,
            session=session,
            purpose=purpose,
            resource=f"job:{job.job_id}",
            tenant=job.tenants[0] if len(job.tenants) == 1 else "",
            decision="allow",
            row_count=job.files,
            reason=_scope_text(job)[:900],
        )
        return {
            "job_id": job.job_id,
            "job_token": secret,
            "expires_at": job.expires.isoformat(),
            "unwrap_url": self.unwrap_url,
            "ca_pem": self.ca_pem,
            "lake_dir": str(gov.lake.root),
            "files": files,
            "key_ids": sorted(key_partitions),
            "datasets": described,
        }

    def _refuse(
        self, actor: str, session: str, purpose: str, names: list[str], reason: str
    ) -> None:
        self._calls.gov.emit(
            "scale.plan",
            actor=actor,
            session=session,
            purpose=purpose,
            resource="dataset:" + "+".join(names),
            decision="deny",
            reason=reason[:900],
        )
        raise AccessDenied(reason)

    def revoke(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """`scale.revoke`: end a job, by its token (whoever holds it), or by its id (the user
        who planned it, or the operator credential)."""
        calls = self._calls
        target = str(body.get("job_token") or "")
        if target:
            job = self.jobs.find(target)
        else:
            job = self.jobs.by_id(str(body.get("job_id") or ""))
            if job is not None and not calls.is_operator(token):
                person = calls.user_session(token, protocol.SCALE_REVOKE)
                if str(person.user_id) != job.actor:
                    calls.deny("only the user who planned a job may revoke it by id")
        if job is None:
            return {"revoked": False}
        ended = self._end(job, "revoked by scale.revoke")
        return {"revoked": ended, "job_id": job.job_id}

    # -- unwrapping ----------------------------------------------------------------------------
    def serve_unwrap(self, token: str, body: Any) -> tuple[int, dict[str, str]]:
        """`unwrap` as the endpoint calls it: with the policy file re-read if it changed."""
        self._calls.reload_policy_if_changed()
        return self.unwrap(token, body)

    def unwrap(self, token: str, body: Any) -> tuple[int, dict[str, str]]:
        """(HTTP status, JSON answer) of one unwrap request; see the module docstring."""
        from amzigo_lab.lake.pme import PartitionKms

        gov = self._calls.gov
        job = self.jobs.find(token) if token else None
        if job is None:
            self._unknown_token()
            return 401, {"error": "unknown job token: plan the job again (scale.plan)"}
        if not job.ended and job.expires <= self._calls.clock():
            self._end(job, "expired")
        if not job.ended and self._calls.incidents.mode() == "deny-all":
            self._end(job, "incident isolation (deny-all)")
        if not job.ended:
            lost = self._lost_rights(job)
            if lost:
                self._end(job, lost)
        if job.ended:
            self._deny(job, 401, f"job token refused: the job ended ({job.ended})")
            return 401, {"error": f"job {job.job_id} has ended ({job.ended}); plan it again"}
        if not isinstance(body, dict):
            return 400, {"error": "the body must be a JSON object with key_id and wrapped_kek"}
        key_id, wrapped = body.get("key_id"), body.get("wrapped_kek")
        if not isinstance(key_id, str) or not isinstance(wrapped, str) or not key_id:
            return 400, {"error": "key_id and wrapped_kek (base64) are required strings"}
        try:
            base64.b64decode(wrapped, validate=True)
        except (binascii.Error, ValueError):
            return 400, {"error": "wrapped_kek is not base64"}
        partition = job.key_partitions.get(key_id)
        if partition is None:
            self._deny(job, 403, f"key id {key_id[:40]} is outside the job's scope")
            return 403, {"error": f"key id {key_id[:40]} is outside job {job.job_id}'s scope"}
        if gov.lake.catalog.partition(partition).state != "live":
            self._end(job, "a partition in its scope was dropped")
            self._deny(job, 401, "job token refused: a partition in its scope was dropped")
            return 401, {"error": f"job {job.job_id} was revoked: a partition was dropped"}
        keys = gov.lake.partition_keys([key_id])
        if key_id not in keys:  # destroyed (a drop in progress)
            self._end(job, "a partition key in its scope was destroyed")
            self._deny(job, 401, "job token refused: a partition key was destroyed")
            return 401, {"error": f"job {job.job_id} was revoked: a partition key was destroyed"}
        try:
            kek = PartitionKms(keys).unwrap_key(wrapped, key_id)
        except KeyProviderError:
            self._deny(job, 400, f"wrapped_kek does not unwrap under key id {key_id[:40]}")
            return 400, {"error": "wrapped_kek does not unwrap under this key id"}
        finally:
            keys.clear()
        job.unwraps += 1
        job.keys_used.add(key_id)
        return 200, {"kek": base64.b64encode(kek).decode()}

    def _lost_rights(self, job: Job) -> str:
        """Why the job's planner may no longer read its scope ("" if it still may): its login
        session ended (logout, disable, expiry, incident), its service token was revoked, or
        the policy or its grants changed. At most every RECHECK_EVERY seconds per job."""
        from amzigo_lab.gateway.tokens import ServiceTokens
        from amzigo_lab.governance.policy import Principal
        from amzigo_lab.governance.service import SERVICE_ROLE

        now = time.monotonic()
        if now - job.checked_at < RECHECK_EVERY:
            return ""
        job.checked_at = now
        calls, gov = self._calls, self._calls.gov
        try:
            if ServiceTokens.looks_like(job.credential):
                grant = calls.tokens.check(job.credential)
                who = Principal(grant.actor, (SERVICE_ROLE,), grant.tenant)
            else:  # a job's unwraps are its user's activity: they keep the session from idling
                who = gov.principal_of(calls.user_session(job.credential, "scale.unwrap"))
        except AccessDenied:
            return "the planner's session or service token ended"
        for name, tenants in job.scope.items():
            access = gov.policy.access(who, gov.lake.spec(name), job.purpose)
            if not access.allowed or (access.tenants is not None and tenants - access.tenants):
                return f"the policy no longer grants {name} of its tenants for {job.purpose}"
        return ""

    def _deny(self, job: Job, status: int, reason: str) -> None:
        """Count a refused unwrap; audit the first at once, then at most one per
        DENIAL_EVERY seconds per job with the count since (the workers of a revoked Spark job
        keep asking: thousands of identical events would drown the log)."""
        job.denied += 1
        job.denied_unaudited += 1
        now = time.monotonic()
        if job.denied_audited_at and now - job.denied_audited_at < DENIAL_EVERY:
            return
        count, job.denied_unaudited, job.denied_audited_at = job.denied_unaudited, 0, now
        self._calls.gov.emit(
            "scale.unwrap",
            actor=job.actor,
            session=job.session,
            purpose=job.purpose,
            resource=f"job:{job.job_id}",
            tenant=job.tenants[0] if len(job.tenants) == 1 else "",
            decision="deny",
            row_count=count,
            reason=f"{status}: {reason} (refusals counted since the last such event)"[:500],
        )

    def _unknown_token(self) -> None:
        self._unknown_count += 1
        now = time.monotonic()
        if self._unknown_last and now - self._unknown_last < UNKNOWN_TOKEN_EVERY:
            return
        count, self._unknown_count, self._unknown_last = self._unknown_count, 0, now
        self._calls.gov.emit(
            "scale.unwrap",
            actor="unknown",
            resource="job:unknown",
            decision="deny",
            row_count=count,
            reason="401: unknown job token (count since the last such event)",
        )

    # -- ending jobs ---------------------------------------------------------------------------
    def _end(self, job: Job, why: str) -> bool:
        if not self.jobs.end(job, why):
            return False
        self._calls.gov.emit(
            "scale.job",
            actor=job.actor,
            session=job.session,
            purpose=job.purpose,
            resource=f"job:{job.job_id}",
            tenant=job.tenants[0] if len(job.tenants) == 1 else "",
            decision="allow",
            row_count=job.unwraps,
            reason=(
                f"ended: {why}; unwraps {job.unwraps} over {len(job.keys_used)} of "
                f"{len(job.key_partitions)} key ids; refused {job.denied}; {_scope_text(job)}"
            )[:900],
        )
        return True

    def housekeeping(self) -> None:
        """Audit expired jobs, end jobs whose scope lost a partition, forget old ones."""
        for job in self.jobs.due():
            self._end(job, "expired")
        self.recheck()
        self.jobs.forget()

    def recheck(self) -> None:
        """End every live job with a partition in its scope that is no longer live."""
        catalog = self._calls.gov.lake.catalog
        for job in self.jobs.live():
            for partition in job.key_partitions.values():
                if catalog.partition(partition).state != "live":
                    self._end(job, "a partition in its scope was dropped")
                    break

    def notice_drop(self, event: Any) -> None:
        """An audit listener: a drop written by this gateway marks the jobs for a re-check
        at the end of the running call (`after_call`), not inside the audit write."""
        if event.action == "lake.drop":
            self._drops_seen = True

    def after_call(self) -> None:
        """(Home thread, after every Flight call.) End the jobs whose scope the call dropped,
        before its answer reaches the caller."""
        if not self._drops_seen:
            return
        self._drops_seen = False
        try:
            self.recheck()
        except Exception as exc:  # housekeeping and each unwrap check again
            LOG.error("scale_recheck_failed", extra={"fields": {"error": type(exc).__name__}})

    def stop(self) -> None:
        """(Home thread.) End every live job: the gateway is stopping."""
        for job in self.jobs.live():
            self._end(job, "the gateway stopped")


def _tenants(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise GatewayProtocolError("tenants must be a list of tenant ids, or null for all granted")
    try:
        return sorted({tenant_id(str(t)) for t in value})
    except AmzigoError as exc:
        raise GatewayProtocolError(f"bad tenant: {exc}") from None


def _ttl(value: Any) -> dt.timedelta:
    if value is None:
        return DEFAULT_TTL
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise GatewayProtocolError("ttl_s must be a number of seconds") from None
    return min(max(dt.timedelta(seconds=seconds), MIN_TTL), MAX_TTL)


def _schema(spec: Any) -> Any:
    """The dataset's columns followed by its partition columns (as the governed views)."""
    import pyarrow as pa

    types = {"tenant": pa.string(), "ingest_date": pa.date32(), "purge_date": pa.date32()}
    fields = list(spec.schema) + [pa.field(n, types[n]) for n in spec.partition_fields]
    return pa.schema(fields)


def _latest_rule(spec: Any) -> dict[str, list[str]] | None:
    """The lake reader's latest-state rule (`lake.reader.latest_sql`): per key, the row first
    in `order`, each column descending with nulls last. None: every row is current."""
    if not spec.natural_key:
        return None
    order = [spec.version_column] if spec.version_column else []
    return {"keys": ["tenant", *spec.natural_key], "order": [*order, "ingest_date"]}


def _scope_text(job: Job) -> str:
    return (
        f"job {job.job_id}; engine {job.engine}; datasets {','.join(job.datasets)}; "
        f"tenants {','.join(job.tenants) or '-'}; files {job.files}; "
        f"key ids {len(job.key_partitions)}; expires {job.expires:%Y-%m-%dT%H:%M:%SZ}"
    )
