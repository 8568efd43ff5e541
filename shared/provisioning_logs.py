"""Collecting the provisioning logs' errors (`PROVISIONING_LOGS=counts|samples`), once per poll.

The log is read tenant-wide, oldest first, one time window after another from a cursor
(ProvisioningErrors `!cursor`), filtered to the events that are not a success. Whole hours
are counted and their error groups stored (replacing, never adding: an hour read again writes
the same rows); the cursor moves past them. A poll reads at most `PROVISIONING_LOG_PAGES`
pages: a read cut short by that or by the poll's deadline keeps every hour before its last
event's, carries what it read of that hour in the cursor's state, and the next poll reads on
from there (`shared.domain.log_cursor` decides, and falls back to reading the window again,
smaller, if Graph ever answers out of order). A backlog is caught up over later polls, each
page read once. Hours still being written (the last `LAG`) wait for a later poll. The first
poll starts a day back.

Graph answering 403 (the app lacks AuditLog.Read.All and Directory.Read.All) is reported as
`notPermitted` in the poll record and on /api/health; it never fails the poll.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TypedDict

from shared.domain.log_cursor import LogCursor, after_read, floor_hour
from shared.domain.provisioning_logs import (
    COLLECTED_STATUSES,
    ErrorGroupHour,
    LogEvent,
    LogEventError,
    normalize_log_event,
)
from shared.domain.timestamps import isoformat_utc
from shared.graph.types import JobsReader
from shared.settings import Settings
from shared.storage.store import Store

log = logging.getLogger("entra_sync_monitor.provisioning_logs")

LAG = timedelta(minutes=15)  # events reach the log minutes after they happen
FIRST_LOOK_BACK = timedelta(days=1)
PAGE_SIZE = 500
# Documented for activityDateTime (resources/provisioningobjectsummary: "Supports $filter
# (eq, gt, lt) and orderby"); shared.domain.log_cursor checks that a cut read honoured it.
ORDER = "activityDateTime asc"


class ProvisioningLogsSection(TypedDict, total=False):
    """A poll record's `provisioningLogs` section."""

    mode: str
    status: str  # ok | notPermitted | error | off
    error: str
    pagesRead: int
    eventsRead: int  # counted: in the hours stored, or carried for the hour read in part
    eventsSkipped: int  # could not be placed (no id, time or job)
    eventsUnmatched: int  # of jobs the monitor does not know
    rowsWritten: int
    cursor: str | None  # every hour before it is counted
    behindHours: float  # from where the next read starts (resumeAt, else cursor)
    queries: int  # list queries (each ends in a page that may be part full)
    eventsDiscarded: int  # read, not counted, to be read again (ties at a cut, out-of-order reads)
    unorderedReads: int  # reads cut short whose events were not in time order
    resumeAt: str  # the cursor's hour is counted up to here; the next read starts here
    windowHours: int  # how many hours past the cursor the next read asks for
    pageBudget: int  # pages this poll could read: PROVISIONING_LOG_PAGES, or more after a stall
    nextPageBudget: int  # the next poll's, raised because this one could not move


def window_filter(start: datetime, end: datetime) -> str:
    """Graph's filter for one window (documented operators: eq, gt, lt). `gt` a second before
    the start, so an event stamped on the start is not lost; the collector drops what falls
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
        "queries": 0,
        "eventsDiscarded": 0,
        "unorderedReads": 0,
    }
    await store.ensure_error_tables()
    stored = await store.load_log_cursor()
    state = LogCursor.from_document(stored, floor_hour(now - FIRST_LOOK_BACK))
    safe_end = floor_hour(now - LAG)
    samples = settings.provisioning_log_samples if settings.provisioning_logs == "samples" else 0
    budget = state.budget(settings.provisioning_log_pages)
    section["pageBudget"] = budget
    pages_left = budget
    service_principals = _ServicePrincipals(store)
    while state.read_from < safe_end and pages_left > 0:
        start = state.read_from
        end = min(state.cursor + timedelta(hours=state.window_hours), safe_end)
        read = await reader.provisioning_events(
            window_filter(start, end), page_size=PAGE_SIZE, max_pages=pages_left, deadline=deadline, orderby=ORDER
        )
        section["queries"] += 1
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
        served: list[LogEvent] = []
        for raw in read.events:
            try:
                served.append(normalize_log_event(raw))
            except LogEventError:
                section["eventsSkipped"] += 1
        outcome = after_read(
            state,
            served,
            end=end,
            complete=read.complete,
            pages=read.pages,
            budget=budget,
            samples=samples,
        )
        section["eventsRead"] += outcome.counted
        section["eventsDiscarded"] += outcome.discarded
        if outcome.unordered:
            section["unorderedReads"] += 1
            log.warning(
                "provisioning log read from %s cut short and not in time order (Graph ignored $orderby): "
                "its %d events are not counted; read again in windows of %d h",
                isoformat_utc(start),
                outcome.discarded,
                outcome.state.window_hours,
            )
        if outcome.stalled:
            log.warning(
                "provisioning log: %d pages could not get past %s; the next poll reads up to %d pages",
                read.pages,
                isoformat_utc(start),
                outcome.state.budget(settings.provisioning_log_pages),
            )
        section["rowsWritten"] += await service_principals.save(outcome.rows, section)
        state = outcome.state
        if not read.complete:
            break
    document = state.to_document()
    if document != stored:
        # Once a poll, after the rows of every hour it passes. A crash before this save leaves
        # the previous state: the next poll reads those hours again and replaces their rows
        # with the same counts (nothing lost, nothing counted twice). The counts of a part-read
        # hour live only here, so they always agree with the resumeAt saved with them.
        await store.save_log_cursor(document)
    section["cursor"] = isoformat_utc(state.cursor)
    if state.resume is not None:
        section["resumeAt"] = isoformat_utc(state.resume)
    section["windowHours"] = state.window_hours
    if state.page_budget is not None and state.budget(settings.provisioning_log_pages) > budget:
        section["nextPageBudget"] = state.budget(settings.provisioning_log_pages)
    section["behindHours"] = round(max(0.0, (safe_end - state.read_from).total_seconds()) / 3600, 2)
    return section


class _ServicePrincipals:
    """Rows' service principals: from the event, else from the stored job (loaded once)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._of_job: dict[str, str] | None = None

    async def save(self, rows: list[ErrorGroupHour], section: ProvisioningLogsSection) -> int:
        if any(row["servicePrincipalId"] is None for row in rows) and self._of_job is None:
            self._of_job = {
                stored.document["jobId"]: stored.document["servicePrincipalId"]
                for stored in (await self._store.load_jobs()).values()
            }
        placed: list[tuple[str, ErrorGroupHour]] = []
        for row in rows:
            sp_id = row["servicePrincipalId"] or (self._of_job or {}).get(row["jobId"])
            if sp_id is None:
                section["eventsUnmatched"] += row["count"]
                continue
            placed.append((sp_id, row))
        return await self._store.save_error_hours(placed) if placed else 0
