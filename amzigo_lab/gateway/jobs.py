"""Job tokens: the credential a distributed read's workers present to the unwrap endpoint.

`scale.plan` mints one per job (Spark or Dask): bound to the user who planned it, the datasets,
tenants and partition key ids of exactly the planned scope, and an expiry (15 minutes by
default). Like service tokens they live only in the gateway's memory (a restart ends every
job) and only their SHA-256 is kept. A job ends when it is revoked (`scale.revoke`, a purge,
deletion notice or drop that covers one of its partitions, incident isolation) or expires;
its unwrap counts are then audited once (`scale.job`), never per unwrap.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from amzigo_lab.gateway.tokens import digest

DEFAULT_TTL = dt.timedelta(minutes=15)
MIN_TTL = dt.timedelta(seconds=1)
MAX_TTL = dt.timedelta(hours=4)


@dataclass
class Job:
    """One distributed read: its scope, expiry and unwrap counts (no token, no key)."""

    job_id: str
    actor: str  # the user (or service) that planned it
    session: str  # "s<id>" of a person's login session, "" for a service
    purpose: str
    engine: str
    datasets: tuple[str, ...]
    tenants: tuple[str, ...]
    key_partitions: dict[str, int]  # partition key id -> partition id
    files: int
    expires: dt.datetime
    #: the token that planned the job (a login, kernel or service token; memory only, like the
    #: kernel-token table): each unwrap re-checks that it still lives and still grants the scope
    credential: str = field(default="", repr=False)
    scope: dict[str, frozenset[str]] = field(default_factory=dict)  # dataset -> tenants read
    checked_at: float = 0.0  # time.monotonic() of the last re-check of the planner's rights
    denied_audited_at: float = 0.0  # time.monotonic() of the last audited refusal
    denied_unaudited: int = 0  # refusals since then (in the next audited one's count)
    unwraps: int = 0
    keys_used: set[str] = field(default_factory=set)
    denied: int = 0
    ended: str = ""  # why the job ended ("" while live)

    @property
    def key_ids(self) -> frozenset[str]:
        """The partition key ids the job may have unwrapped."""
        return frozenset(self.key_partitions)


class JobTokens:
    """The gateway's table of jobs, by the digest of their token."""

    PREFIX = "job_"

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @classmethod
    def looks_like(cls, token: str) -> bool:
        """True for a job token (they carry a prefix; login and service tokens do not)."""
        return token.startswith(cls.PREFIX)

    def mint(self, job: Job) -> str:
        """A new token for `job` (>= 32 random bytes, urlsafe base64)."""
        token = self.PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            self._jobs[digest(token)] = job
        return token

    def find(self, token: str) -> Job | None:
        """The job of `token`, live or ended (None if unknown)."""
        with self._lock:
            return self._jobs.get(digest(token))

    def by_id(self, job_id: str) -> Job | None:
        """A job by its id (live or ended but not yet forgotten)."""
        with self._lock:
            return next((j for j in self._jobs.values() if j.job_id == job_id), None)

    def live(self) -> list[Job]:
        """Jobs neither ended nor expired."""
        now = self._clock()
        with self._lock:
            return [j for j in self._jobs.values() if not j.ended and j.expires > now]

    def end(self, job: Job, why: str) -> bool:
        """Mark a job ended (its token answers 401 from now on); False if it already was."""
        with self._lock:
            if job.ended:
                return False
            job.ended = why
            return True

    def due(self) -> list[Job]:
        """Jobs not yet ended whose time is up (the caller ends and audits them)."""
        now = self._clock()
        with self._lock:
            return [j for j in self._jobs.values() if not j.ended and j.expires <= now]

    def forget(self, older_than: dt.timedelta = dt.timedelta(hours=1)) -> None:
        """Drop ended jobs whose expiry is long past (a 401 either way)."""
        cut = self._clock() - older_than
        with self._lock:
            for d in [d for d, j in self._jobs.items() if j.ended and j.expires < cut]:
                del self._jobs[d]

    def __len__(self) -> int:
        return len(self.live())
