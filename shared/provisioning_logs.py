"""Collecting the provisioning logs' errors (`PROVISIONING_LOGS=counts|samples`), once per poll.

The log is read tenant-wide, one time window after another from a cursor (ProvisioningErrors
`!cursor`), filtered to the events that are not a success. A window is counted only when it
was read whole: its hours' error groups are then stored (replacing, never adding: an hour
read again writes the same rows) and the cursor moves past it. A poll reads at most
`PROVISIONING_LOG_PAGES` pages; a window cut short by that or by the poll's deadline is read
again, smaller, by the next poll, so a backlog is caught up over later polls. Hours still
being written (the last `LAG`) wait for a later poll. The first poll starts a day back.

Graph answering 403 (the app lacks AuditLog.Read.All and Directory.Read.All) is reported as
`notPermitted` in the poll record and on /api/health; it never fails the poll.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, TypedDict

from shared.domain.provisioning_logs import (
    COLLECTED_STATUSES,
    ErrorGroupHour,
    LogEvent,
    LogEventError,
    count_hours,
    normalize_log_event,
)
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.graph.types import JobsReader
from shared.settings import Settings
from shared.storage.store import Store

log = logging.getLogger("entra_sync_monitor.provisioning_logs")

LAG = timedelta(minutes=15)  # events reach the log minutes after they happen
FIRST_LOOK_BACK = timedelta(days=1)
PAGE_SIZE = 500
_MAX_WINDOW_HOURS = 24


class ProvisioningLogsSection(TypedDict, total=False):
    """A poll record's `provisioningLogs` section."""

    mode: str
    status: str  # ok | notPermitted | error | off
    error: str
    pagesRead: int
    eventsRead: int
    eventsSkipped: int  # could not be placed (no id, time or job)
    eventsUnmatched: int  # of jobs the monitor does not know
    rowsWritten: int
    cursor: str | None  # every hour before it is counted
    behindHours: float


def _floor_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


def window_filter(start: datetime, end: datetime) -> str:
    """Graph's filter for one window (documented operators: eq, gt, lt). `gt` a second before
    the start, so an event stamped on the hour is not lost; the collector drops what falls
    outside [start, end)."""
    since = isoformat_utc(start - timedelta(seconds=1))
    until = isoformat_utc(end)
    statuses = " or ".join(f"provisioningStatusInfo/status eq '{status}'" for status in COLLECTED_STATUSES)
    return f"activityDateTime gt {since} and activityDateTime lt {until} and ({statuses})"


async def collect_provisioning_logs(
    settings: Settings, reader: JobsReader, store: Store, *, now: datetime, deadline: float
) -> ProvisioningLogsSection:
    section: ProvisioningLogsSection = {
        "mode": settings.provisioning_logs,
        "status": "ok",
        "pagesRead": 0,
        "eventsRead": 0,
        "eventsSkipped": 0,
        "eventsUnmatched": 0,
        "rowsWritten": 0,
    }
    await store.ensure_error_tables()
    state: dict[str, Any] = await store.load_log_cursor() or {}
    safe_end = _floor_hour(now - LAG)
    cursor = parse_timestamp(state.get("cursor")) or _floor_hour(now - FIRST_LOOK_BACK)
    window = int(state.get("windowHours") or 6)
    pages_left = settings.provisioning_log_pages
    service_principal_of: dict[str, str] | None = None
    while cursor < safe_end and pages_left > 0:
        end = min(cursor + timedelta(hours=window), safe_end)
        read = await reader.provisioning_events(
            window_filter(cursor, end), page_size=PAGE_SIZE, max_pages=pages_left, deadline=deadline
        )
        section["pagesRead"] += read.pages
        pages_left -= read.pages
        if read.status == 403:
            section["status"] = "notPermitted"
            section["error"] = (
                "Graph refused the provisioning logs (HTTP 403): the app needs the application "
                "permissions AuditLog.Read.All and Directory.Read.All, with admin consent"
            )
            break
        if read.error_code or read.status != 200:
            section["status"] = "error"
            section["error"] = f"HTTP {read.status} {read.error_code}: {read.error_message}"[:500]
            break
        if not read.complete:  # out of pages or time mid-window: read again, smaller, next poll
            window = max(1, window // 2)
            break
        events: list[LogEvent] = []
        for raw in read.events:
            try:
                event = normalize_log_event(raw)
            except LogEventError:
                section["eventsSkipped"] += 1
                continue
            if cursor <= event.at < end:
                events.append(event)
        section["eventsRead"] += len(events)
        rows = count_hours(events, settings.provisioning_log_samples if settings.provisioning_logs == "samples" else 0)
        if any(row["servicePrincipalId"] is None for row in rows) and service_principal_of is None:
            service_principal_of = {
                stored.document["jobId"]: stored.document["servicePrincipalId"]
                for stored in (await store.load_jobs()).values()
            }
        placed: list[tuple[str, ErrorGroupHour]] = []
        for row in rows:
            sp_id = row["servicePrincipalId"] or (service_principal_of or {}).get(row["jobId"])
            if sp_id is None:
                section["eventsUnmatched"] += row["count"]
                continue
            placed.append((sp_id, row))
        section["rowsWritten"] += await store.save_error_hours(placed)
        cursor = end
        if read.pages <= 1:
            window = min(_MAX_WINDOW_HOURS, window * 2)  # quiet: take larger steps
        await store.save_log_cursor({"cursor": isoformat_utc(cursor), "windowHours": window})
    if state.get("windowHours") != window and section["status"] == "ok":
        await store.save_log_cursor({"cursor": isoformat_utc(cursor), "windowHours": window})
    section["cursor"] = isoformat_utc(cursor)
    section["behindHours"] = round(max(0.0, (safe_end - cursor).total_seconds()) / 3600, 2)
    return section
