"""Why jobs fail: error groups from the provisioning logs (`PROVISIONING_LOGS`, docs/api.md).

- `GET /api/v1/jobs/{servicePrincipalId}/{jobId}/errors`: a job's error groups in a window.
- `GET /api/v1/errors`: every job's, the most frequent first.

A group is one status, provisioningAction and errorCode of one job, with its count, first
and last seen, a count per UTC day (the trend) and, with `samples`, example objects. Groups
are summed from the hour rows of the window's days (shared.domain.provisioning_logs); both
endpoints page through `deps.Pages` and answer JSON or CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeGuard

from fastapi import APIRouter, Depends, Query, Request, Response

from shared.api.current import job_or_404
from shared.api.deps import Minute, PagesDep, SettingsDep, StoreDep
from shared.api.http import cell, csv_page, wants_csv
from shared.api.models import ErrorGroupPage
from shared.api.params import Continuation, Format, JobRef, problems
from shared.domain.provisioning_logs import ErrorGroup, merge_hours
from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings
from shared.storage.store import Store

WINDOW_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
DEFAULT_GROUPS = 50
CSV_COLUMNS = (
    "servicePrincipalId",
    "jobId",
    "status",
    "action",
    "errorCode",
    "errorCategory",
    "count",
    "firstSeen",
    "lastSeen",
    "days",
    "reason",
)

router = APIRouter(tags=["errors"])
Window = Annotated[
    Literal["24h", "7d", "30d", "90d"],
    Query(description="The UTC days overlapping this window (24h: yesterday and today)"),
]
Groups = Annotated[int, Query(ge=1, le=1000, description="Error groups per page (1-1000)")]


class ErrorsQuery:
    """The query parameters of both error lists, as a dependency (as `params.RunsQuery`)."""

    def __init__(
        self,
        window: Window = "7d",
        top: Groups = DEFAULT_GROUPS,
        continuation: Continuation = None,
        format_: Format = None,
    ) -> None:
        self.window = window
        self.top = top
        self.continuation = continuation
        self.format = format_


def _is_offset(position: object) -> TypeGuard[int]:
    return isinstance(position, int) and not isinstance(position, bool) and position >= 0


def _days(now: datetime, window: str) -> list[str]:
    first = (now - timedelta(days=WINDOW_DAYS[window])).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((now.date() - first).days + 1)]


async def _sections(
    store: Store, settings: Settings, window: str, days: Sequence[str], now: datetime
) -> dict[str, object]:
    """The answer's `window`, and `collection`: how the last poll read the logs."""
    last = await store.last_poll()
    section: Mapping[str, Any] = (last.get("provisioningLogs") if last else None) or {}
    return {
        "window": {"name": window, "from": f"{days[0]}T00:00:00Z", "to": isoformat_utc(now)},
        "collection": {
            "mode": settings.provisioning_logs,
            "status": section.get("status"),
            "cursor": section.get("cursor"),
        },
    }


async def _answer(
    request: Request,
    pages: Any,
    endpoint: str,
    signed: dict[str, object],
    groups: Sequence[ErrorGroup],
    params: ErrorsQuery,
    extra: Mapping[str, object],
) -> Mapping[str, object] | Response:
    """A page of `groups` from the continuation's offset, as JSON (with `extra`) or CSV."""
    offset = await pages.resume(endpoint, signed, params.continuation, _is_offset) or 0
    page = list(groups[offset : offset + params.top])
    following = offset + params.top if offset + params.top < len(groups) else None
    next_link = await pages.next_link(endpoint, signed, following, top=params.top, window=params.window)
    if not wants_csv(params.format, request.headers.get("accept")):
        return {"value": page, "nextLink": next_link, **extra}
    return csv_page(errors_csv(page), "errors.csv", next_link)


def errors_csv(groups: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for group in groups:
        days = ";".join(f"{day}={count}" for day, count in sorted(group["days"].items()))
        writer.writerow([cell(days if column == "days" else group.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


@router.get(
    "/jobs/{servicePrincipalId}/{jobId}/errors",
    response_model=ErrorGroupPage,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="listJobErrors",
    summary="List a job's error groups from the provisioning logs",
)
async def list_job_errors(
    request: Request,
    job: Annotated[JobRef, Depends()],
    store: StoreDep,
    settings: SettingsDep,
    pages: PagesDep,
    now: Minute,
    query: Annotated[ErrorsQuery, Depends()],
) -> Mapping[str, object] | Response:
    """The job's error groups in the window, most events first, each with a count per day and
    (with PROVISIONING_LOGS=samples) example objects; paged."""
    await job_or_404(store, job.service_principal_id, job.job_id)
    days = _days(now, query.window)
    hours = await store.job_error_hours(job.service_principal_id, job.job_id, days[0], days[-1])
    groups = merge_hours(hours, settings.provisioning_log_samples)
    signed: dict[str, object] = {
        "servicePrincipalId": job.service_principal_id,
        "jobId": job.job_id,
        "window": query.window,
    }
    extra = await _sections(store, settings, query.window, days, now)
    return await _answer(request, pages, "jobErrors", signed, groups, query, extra)


@router.get(
    "/errors",
    response_model=ErrorGroupPage,
    responses=problems(400, 401, 403, 503),
    operation_id="listErrors",
    summary="List the tenant's top error groups from the provisioning logs",
)
async def list_errors(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    pages: PagesDep,
    now: Minute,
    query: Annotated[ErrorsQuery, Depends()],
) -> Mapping[str, object] | Response:
    """Every job's error groups in the window, most events first; paged."""
    days = _days(now, query.window)
    groups = merge_hours(await store.error_hours_of_days(days), settings.provisioning_log_samples)
    extra = await _sections(store, settings, query.window, days, now)
    return await _answer(request, pages, "errors", {"window": query.window}, groups, query, extra)
