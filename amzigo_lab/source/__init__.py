"""SP-API ingestion: client factory, rate-limit scheduler, streams -> datasets, sync state.

It writes only through the lake and never imports governance. Public entry points:
`ingest()` (and `IngestReport`), `ClientFactory`, `Scheduler`, `sync_status()`.
"""

from amzigo_lab.source.client import ClientFactory, Connection, SourceError
from amzigo_lab.source.ingest import IngestReport, embedded_sandbox, ingest
from amzigo_lab.source.ratelimit import Scheduler
from amzigo_lab.source.status import sync_status

__all__ = [
    "ClientFactory",
    "Connection",
    "IngestReport",
    "Scheduler",
    "SourceError",
    "embedded_sandbox",
    "ingest",
    "sync_status",
]
