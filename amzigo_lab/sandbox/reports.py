"""Report jobs: IN_QUEUE -> IN_PROGRESS -> DONE (or FATAL) over scaled time, and their documents.

Report ids are random (unique across processes and restarts, as Amazon's are), so an id kept by
a client of an earlier sandbox is "not found" here, never another report. Reports (and their
documents) are forgotten `ReportTimings.retention` seconds after creation (scaled).
"""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .documents import ReportRequest, render
from .world import World

REPORT_ID_BASE = 50_000_000_000
REPORT_ID_SPAN = 10**15  # ids are REPORT_ID_BASE + a random number below this
DOCUMENT_PREFIX = "sandbox.spdoc."


@dataclass(frozen=True, slots=True)
class ReportTimings:
    """Seconds a report spends queued and processing at ``time_scale`` 1."""

    queued: float = 20.0
    processing: float = 40.0
    retention: float = 90 * 86_400.0  # Amazon keeps reports about 90 days


@dataclass(slots=True)
class ReportJob:
    """A report requested by a seller."""

    report_id: str
    request: ReportRequest
    created_at: datetime
    created_clock: float
    fatal: bool

    @property
    def document_id(self) -> str:
        """Id of the report's document (also exists for FATAL reports: the error document)."""
        return f"{DOCUMENT_PREFIX}{self.report_id}"


@dataclass(frozen=True, slots=True)
class ReportState:
    """Processing status of a job at a point in time."""

    status: str
    started_at: datetime | None
    ended_at: datetime | None


class ReportStore:
    """Keeps report jobs and renders (and caches) their GZIP documents."""

    def __init__(
        self,
        world: World,
        time_scale: float | None,
        timings: ReportTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.world = world
        self.time_scale = time_scale
        self.timings = timings or ReportTimings()
        self._clock = clock
        self._jobs: dict[str, ReportJob] = {}
        self._documents: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _durations(self) -> tuple[float, float]:
        """Scaled (queued, processing) durations in seconds."""
        if not self.time_scale:
            return 0.0, 0.0
        return self.timings.queued / self.time_scale, self.timings.processing / self.time_scale

    def _retention(self) -> float:
        """Scaled seconds a job is kept after its creation."""
        if not self.time_scale:
            return self.timings.retention
        return self.timings.retention / self.time_scale

    def _expire(self) -> None:
        """Forget jobs (and documents) older than the retention (called with the lock held)."""
        horizon = self._clock() - self._retention()
        for report_id in [r for r, j in self._jobs.items() if j.created_clock < horizon]:
            job = self._jobs.pop(report_id)
            self._documents.pop(job.document_id, None)

    def _live(self, report_id: str) -> ReportJob | None:
        with self._lock:
            self._expire()
            return self._jobs.get(report_id)

    def create(self, request: ReportRequest, fatal: bool) -> ReportJob:
        """Register a new job (a random id, never one another process or run gave)."""
        with self._lock:
            self._expire()
            report_id = str(REPORT_ID_BASE + secrets.randbelow(REPORT_ID_SPAN))
            while report_id in self._jobs:
                report_id = str(REPORT_ID_BASE + secrets.randbelow(REPORT_ID_SPAN))
            job = ReportJob(
                report_id, request, datetime.now(UTC).replace(microsecond=0), self._clock(), fatal
            )
            self._jobs[report_id] = job
        return job

    def get(self, tenant: str, report_id: str) -> ReportJob | None:
        """Job ``report_id`` if it belongs to ``tenant`` (and is not past its retention)."""
        job = self._live(report_id)
        return job if job is not None and job.request.tenant == tenant else None

    def state(self, job: ReportJob) -> ReportState:
        """Where ``job`` is in its lifecycle now."""
        queued, processing = self._durations()
        elapsed = self._clock() - job.created_clock
        started = job.created_at + timedelta(seconds=queued)
        ended = started + timedelta(seconds=processing)
        if elapsed < queued:
            return ReportState("IN_QUEUE", None, None)
        if elapsed < queued + processing:
            return ReportState("IN_PROGRESS", started, None)
        return ReportState("FATAL" if job.fatal else "DONE", started, ended)

    def job_for_document(self, tenant: str, document_id: str) -> ReportJob | None:
        """The finished job owning ``document_id`` (for ``tenant``)."""
        if not document_id.startswith(DOCUMENT_PREFIX):
            return None
        job = self.get(tenant, document_id[len(DOCUMENT_PREFIX) :])
        if job is None or self.state(job).status not in ("DONE", "FATAL"):
            return None
        return job

    def job_by_document(self, document_id: str) -> ReportJob | None:
        """The job owning ``document_id`` (any tenant)."""
        if not document_id.startswith(DOCUMENT_PREFIX):
            return None
        return self._live(document_id[len(DOCUMENT_PREFIX) :])

    def document(self, document_id: str) -> bytes | None:
        """GZIP-compressed document bytes (rendered once, then cached)."""
        job = self.job_by_document(document_id)  # forgets expired jobs and their documents
        if job is None:
            return None
        with self._lock:
            cached = self._documents.get(document_id)
        if cached is not None:
            return cached
        if job.fatal:
            raw = json.dumps({"errorDetails": "Report processing failed (sandbox fault)."}).encode()
        else:
            raw = render(self.world, job.request)
        data = gzip.compress(raw, mtime=0)
        with self._lock:
            self._documents[document_id] = data
        return data
