"""`sync_status()`: cursors, last runs, quarantined counts and pending reports per stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake


def sync_status(lake: Lake) -> list[dict[str, Any]]:
    """One row per (tenant, stream) with a sync state."""
    rows = []
    for tenant, stream, state, updated in lake.catalog.all_sync_states():
        cursor = state.get("cursor")
        if isinstance(cursor, dict):
            cursor = ", ".join(f"{k}:{v}" for k, v in sorted(cursor.items()))
        rows.append(
            {
                "tenant": tenant,
                "stream": stream,
                "cursor": cursor
                or state.get("snapshot_date")
                or state.get("fetched_on")
                or state.get("checked_on")
                or "",
                "last_run": state.get("last_run", ""),
                "last_status": state.get("last_status", ""),
                "last_rows": state.get("last_rows", 0),
                "quarantined": state.get("quarantined_total", 0),
                "pending_reports": len(state.get("pending") or {}),
                "cooldowns": len(state.get("cooldown") or {}),
                "last_error": state.get("last_error", ""),
                "updated_at": updated,
            }
        )
    return rows
