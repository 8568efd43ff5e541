"""The runs: `GET /api/v1/jobs/{servicePrincipalId}/{jobId}/executions` (a job's runs) and
`GET /api/v1/executions` (every job's runs in a time window: with `state=Failed`, the
failure feed). Both are newest first, take the same parameters (`params.RunsQuery`), page
through `deps.Pages` and answer JSON or CSV. shared/api/app.py includes `router` under
/api/v1 behind the caller check; docs/api.md is the reader's guide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, TypedDict, TypeGuard

from fastapi import APIRouter, Depends, Request, Response

from shared.api.current import job_or_404
from shared.api.deps import Minute, PagesDep, StoreDep
from shared.api.http import csv_page, executions_csv, wants_csv
from shared.api.models import ExecutionPage, TenantExecutionPage
from shared.api.params import JobRef, RunsQuery, empty_window, instant_text, problems
from shared.storage.rollups import DayRollup
from shared.storage.store import Store

FEED_DEFAULT_SPAN = timedelta(hours=24)
# The most UTC days of the window one request of the tenant feed looks at: a window of any
# length (from=0001-01-01) costs a bounded number of Table reads per request and continues by
# nextLink, even when those days held none of the runs asked for.
FEED_DAYS_PER_PAGE = 31
_ROW_KEY = re.compile(r"^\d{19}\|[^\x00-\x1f]{1,1200}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

router = APIRouter(tags=["executions"])
Runs = Annotated[RunsQuery, Depends()]


class FeedPosition(TypedDict):
    """Where the tenant feed continues: a UTC day, and the RowKey to continue after on it."""

    d: str
    a: str | None


def _is_row_key(position: object) -> TypeGuard[str]:
    return isinstance(position, str) and bool(_ROW_KEY.match(position))


def _is_feed_position(position: object) -> TypeGuard[FeedPosition]:
    if not isinstance(position, dict):
        return False
    day, after = position.get("d"), position.get("a")
    return isinstance(day, str) and bool(_DAY.match(day)) and (after is None or _is_row_key(after))


def _page_response(
    request: Request,
    runs: RunsQuery,
    page: Sequence[Mapping[str, object]],
    next_link: str | None,
    *,
    with_job: bool,
    **extra: object,
) -> Mapping[str, object] | Response:
    """The JSON page (`value`, `nextLink` and `extra`), or its CSV with the next page in a Link
    header."""
    if not wants_csv(runs.format, request.headers.get("accept")):
        return {"value": page, "nextLink": next_link, **extra}
    return csv_page(executions_csv(page, with_job=with_job), "executions.csv", next_link)


@router.get(
    "/jobs/{servicePrincipalId}/{jobId}/executions",
    response_model=ExecutionPage,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="listJobExecutions",
    summary="List a job's runs",
)
async def list_executions(
    request: Request, job: Annotated[JobRef, Depends()], runs: Runs, store: StoreDep, pages: PagesDep
) -> Mapping[str, object] | Response:
    """The job's runs, newest first by timeBegan, optionally within [from, to) and of some states; paged."""
    start, end = runs.window()
    await job_or_404(store, job.service_principal_id, job.job_id)
    query = {
        "servicePrincipalId": job.service_principal_id,
        "jobId": job.job_id,
        "from": instant_text(start) if start else None,
        "to": instant_text(end) if end else None,
        "state": runs.states,
    }
    after = await pages.resume("jobExecutions", query, runs.continuation, _is_row_key)
    page, next_after = await store.executions_page(
        job.service_principal_id,
        job.job_id,
        top=runs.top,
        since=start,
        until=end,
        states=runs.states,
        after_row_key=after,
    )
    next_link = await pages.next_link("jobExecutions", query, next_after, top=runs.top)
    return _page_response(request, runs, page, next_link, with_job=False)


@router.get(
    "/executions",
    response_model=TenantExecutionPage,
    responses=problems(400, 401, 403, 503),
    operation_id="listExecutions",
    summary="List the tenant's runs in a time window",
)
async def list_tenant_executions(
    request: Request, runs: Runs, store: StoreDep, pages: PagesDep, now: Minute
) -> Mapping[str, object] | Response:
    """Every job's runs that began in [from, to) (default: the last 24 hours), newest first,
    optionally of some states (`state=Failed` is the failure feed); paged."""
    start, end = runs.window()
    end = end or now + timedelta(minutes=1)  # the end of this minute: the answer holds still within it
    start = start or end - FEED_DEFAULT_SPAN
    if start >= end:
        raise empty_window(start, end)
    window = {"from": instant_text(start), "to": instant_text(end)}
    query = {**window, "state": runs.states}
    position = await pages.resume("executions", query, runs.continuation, _is_feed_position)
    page, next_position = await _feed_page(store, start, end, runs.states, runs.top, position, now)
    next_link = await pages.next_link("executions", query, next_position, top=runs.top, **window)
    return _page_response(request, runs, page, next_link, with_job=True, window=window)


async def _feed_page(
    store: Store,
    start: datetime,
    end: datetime,
    states: Sequence[str],
    top: int,
    position: FeedPosition | None,
    now: datetime,
) -> tuple[list[dict[str, object]], FeedPosition | None]:
    """Up to `top` of the tenant's runs in [start, end) from `position` on, newest first, and
    where the next page starts (None at the end). Reads RunsByTime a UTC day at a time, only
    the days `_feed_days` picks for this request; a page may therefore be short, or empty,
    and still have a next one."""
    at_day, after = (position["d"], position["a"]) if position else (None, None)
    days, rest = await _feed_days(store, start, end, states, at_day, now)
    page: list[dict[str, object]] = []
    for index, day in enumerate(days):
        rows, next_after = await store.runs_by_time_page(
            day,
            top=top - len(page),
            since=start,
            until=end,
            states=states,
            after_row_key=after if day == at_day else None,
        )
        page.extend(rows)
        if next_after is not None:
            return page, {"d": day, "a": next_after}
        if len(page) >= top and index + 1 < len(days):
            return page, {"d": days[index + 1], "a": None}
    return page, ({"d": rest, "a": None} if rest else None)


async def _feed_days(
    store: Store, start: datetime, end: datetime, states: Sequence[str], at_day: str | None, now: datetime
) -> tuple[list[str], str | None]:
    """The UTC days one feed request reads, newest first, from `at_day` (or the window's last
    day) down; and the day the next request starts from once they are read (None: the window
    ends with them). At most FEED_DAYS_PER_PAGE days, whatever the window.

    The days read are those whose rollup counts matching runs, and the newest day looked at
    (the window's last day, whose rollup may trail the runs of a poll writing right now, or
    the position's day). The window is cut to the days that can hold runs: from the first day
    anything was rolled up (one row read), so from=0001-01-01 does not walk the centuries;
    up to tomorrow (a clock a little ahead), so to=2999-01-01 does not either. Days after
    tomorrow are read only where a rollup lists them (Graph's odd dates are stored as given)."""
    budget = FEED_DAYS_PER_PAGE
    first_day = start.date().isoformat()
    top_day = at_day or (end - timedelta(microseconds=1)).date().isoformat()
    first_day = max(first_day, await store.first_run_day(first_day) or top_day)
    horizon = (now + timedelta(days=1)).date()
    days: list[str] = []
    if top_day > horizon.isoformat():
        rows = await store.run_days((horizon + timedelta(days=1)).isoformat(), top_day)
        later = {row["day"] for row in rows if _counts_runs(row, states)} | ({at_day} if at_day else set())
        days = sorted(later, reverse=True)
        if len(days) > budget:
            return days[:budget], days[budget]
        budget -= len(days)
        top_day = horizon.isoformat()
    if budget == 0 or first_day > top_day:
        return days, (top_day if budget == 0 and first_day <= top_day else None)
    span = timedelta(days=budget - 1)
    top_date = date.fromisoformat(top_day)
    low_day = max(first_day, (top_date - span).isoformat() if top_date - date.min > span else first_day)
    listed = {row["day"] for row in await store.run_days(low_day, top_day) if _counts_runs(row, states)}
    today = now.date().isoformat()  # its rollup may trail a poll writing right now, too
    days += sorted(listed | {top_day} | ({today} if low_day <= today <= top_day else set()), reverse=True)
    return days, ((date.fromisoformat(low_day) - timedelta(days=1)).isoformat() if low_day > first_day else None)


def _counts_runs(rollup: DayRollup, states: Sequence[str]) -> bool:
    return any(rollup["byState"].get(s, 0) for s in states) if states else rollup["runs"] > 0
