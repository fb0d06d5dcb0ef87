"""Dropping partitions in batches: the one step every destruction shares.

The retention purge (`retention.py`), a deletion notice (`notices.py`) and the recovery of an
interrupted drop (`recovery.py`) all drop their partitions here: PII and other partitions in
separate batches, each batch through `Lake.drop_partitions` with PII canaries sampled before
and verified absent after, its blind-index entries forgotten, and one audit event per batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amzigo_lab.compliance.blind_index import forget_partitions
from amzigo_lab.compliance.common import EventLog, forget_canaries, sample_canaries

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake


def batches(lake: Lake, parts: list[Partition], size: int) -> list[list[Partition]]:
    """PII partitions and others in separate batches (only PII batches carry canaries)."""
    pii = [p for p in parts if lake.spec(p.dataset).pii]
    rest = [p for p in parts if not lake.spec(p.dataset).pii]
    return [g[i : i + size] for g in (pii, rest) for i in range(0, len(g), size)]


def drop_batch(
    lake: Lake, batch: list[Partition], reason: str, events: EventLog, action: str
) -> tuple[str, int]:
    """Drop one batch with PII canaries, forget its blind-index entries, audit it."""
    canaries = sample_canaries(lake, batch)
    record = lake.drop_partitions(batch, canaries=canaries, reason=reason)
    forget_canaries(lake, [p.id for p in batch])
    forget_partitions(lake, [p.id for p in batch])
    events.emit(
        action,
        resource=f"destruction:{record.record_id}",
        row_count=record.rows,
        reason=f"{len(record.partitions)} partition(s), {len(canaries)} canaries verified absent",
    )
    return record.record_id, record.rows
