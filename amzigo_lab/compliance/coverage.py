"""Certificate coverage: destroyed partitions that no destruction certificate covers.

Read by `amzigo certificate verify` and `amzigo doctor`, and by the recovery of interrupted
destructions (compliance/recovery.py), which certifies what it finds here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from amzigo_lab.lake.records import Certificates, Destructions, SubjectRequests

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


@dataclass(frozen=True)
class Uncovered:
    """A destroyed partition that no destruction certificate covers."""

    partition_id: int
    dataset: str
    tenant: str
    ingest_date: str
    record_id: str | None  # its destruction record, if one exists

    def message(self) -> str:
        """One line naming the partition and what to do."""
        where = f"record {self.record_id}" if self.record_id else "no destruction record"
        return (
            f"partition {self.partition_id} ({self.dataset}, {self.tenant}, ingest "
            f"{self.ingest_date}) was destroyed but no certificate covers it ({where}); run "
            "`amzigo doctor --fix` to finish interrupted runs, else restore the catalog from "
            "backup"
        )


def uncovered_partitions(lake: Lake) -> list[Uncovered]:
    """Dropped partitions not covered by any certificate (a rectification's rewrite of a
    partition is not a destruction of its data and needs none)."""
    record_of: dict[int, str] = {}
    rectified = {
        f"dsr [{req}]" for req in SubjectRequests(lake.catalog).ids_of_kind("rectification")
    }
    exempt: set[int] = set()
    for record_id, rec_json in Destructions(lake.catalog).of_kind("partition_drop"):
        rec = json.loads(rec_json)
        for p in rec.get("partitions", []):
            record_of[int(p["partition_id"])] = record_id
            if rec.get("reason") in rectified:
                exempt.add(int(p["partition_id"]))
    covered_records: set[str] = set()
    for body in Certificates(lake.catalog).bodies():
        covered_records.update(json.loads(body).get("destruction_records", {}))
    out = []
    for p in lake.catalog.partitions(states=("dropped",)):
        rid = record_of.get(p.id)
        if p.id in exempt or (rid is not None and rid in covered_records):
            continue
        out.append(Uncovered(p.id, p.dataset, p.tenant, p.ingest_date.isoformat(), rid))
    return out
