"""The HTTP API (FastAPI), served by the Functions host through AsgiFunctionApp and locally
by uvicorn (`python -m shared serve`). Its own routes only read the tables (their one write
is the continuation-signing key); it also mounts the alert endpoints (`routes.alerts`, which
write mutes) and the dashboard page (`routes.dashboard`). It never imports msgraph.
docs/api.md is the reader's guide.

Routes live here; the HTTP mechanics (problems, ETags, CORS, CSV) are in `http`, the
continuation tokens in `paging`, the caller checks in `auth`, the health check in
`service_health`, the pure job and summary logic in `views`, and the exact OpenAPI document
in `openapi`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from azure.core.exceptions import AzureError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import __version__
from shared.api.auth import PRINCIPAL_HEADER, AccessDenied, authorize
from shared.api.http import (
    CSV_MEDIA_TYPE,
    ConditionalGetMiddleware,
    SettingsCorsMiddleware,
    executions_csv,
    problem,
    wants_csv,
)
from shared.api.models import (
    Execution,
    ExecutionPage,
    Job,
    JobDetail,
    JobList,
    MonitorHealth,
    Problem,
    Summary,
    TenantExecutionPage,
)
from shared.api.openapi import build_openapi
from shared.api.paging import ContinuationError, issue, redeem
from shared.api.routes.alerts import router as alerts_router
from shared.api.routes.dashboard import router as dashboard_router
from shared.api.service_health import max_poll_age_seconds, monitor_health
from shared.api.views import (
    JobSort,
    count_by,
    execution_counts,
    filter_jobs,
    job_ranks,
    job_sort_key,
    quarantined_jobs,
    top_jobs,
)
from shared.domain.health import with_current_health
from shared.domain.model import HealthValue
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.settings import Settings, SettingsError, load_settings
from shared.storage.store import Store, close_store, open_store

log = logging.getLogger("entra_sync_monitor.api")

API_PREFIX = "/api/v1"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
FEED_DEFAULT_SPAN = timedelta(hours=24)
JOB_DETAIL_RUNS = 10
JOB_DETAIL_EVENTS = 100
WINDOW_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
KNOWN_STATES = {state.lower(): state for state in ("Succeeded", "Failed", "EntryLevelErrors")}
_ROW_KEY = re.compile(r"^\d{19}\|[^\x00-\x1f]{1,1200}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2}))?$")
_PROBLEM_TEXT = {
    400: "A parameter is malformed; `detail` names it",
    401: "App Service Authentication is on and there is no signed-in caller",
    403: "The caller lacks the app role API_REQUIRED_ROLE names",
    404: "No such job",
    503: "The app is misconfigured or its storage is unreachable; `detail` says which",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Problem, "description": _PROBLEM_TEXT[status]} for status in statuses}


# ------------------------------------------------------------ dependencies


async def get_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise HTTPException(503, f"The app is misconfigured: {error}") from None


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_store(settings: SettingsDep) -> Store:
    return open_store(settings)


async def require_caller(request: Request, settings: SettingsDep) -> None:
    try:
        authorize(
            auth_enabled=settings.auth_enabled,
            required_role=settings.api_required_role,
            header=request.headers.get(PRINCIPAL_HEADER),
        )
    except AccessDenied as denied:
        headers = {"WWW-Authenticate": 'Bearer realm="App Service Authentication"'} if denied.status == 401 else None
        raise HTTPException(denied.status, denied.detail, headers=headers) from None


StoreDep = Annotated[Store, Depends(get_store)]
ServicePrincipalId = Annotated[str, Path(min_length=1, max_length=100, description="Service principal object ID")]
JobId = Annotated[str, Path(min_length=1, max_length=400, description="synchronizationJob id")]
Top = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page (1-1000)")]
Continuation = Annotated[
    str | None,
    Query(max_length=4096, description="Opaque; only ever from a previous page's nextLink"),
]
Since = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=128,
        description="Runs that began at or after this instant: RFC 3339 (2026-11-25T08:00:00Z) or a date "
        "(2026-11-25: its midnight UTC)",
        json_schema_extra={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]},
    ),
]
Until = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=128,
        description="Runs that began before this instant (exclusive), as `from`",
        json_schema_extra={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]},
    ),
]
States = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
    Query(
        max_length=10,
        description="Only runs in these states (repeat to allow several): Succeeded, Failed, EntryLevelErrors, "
        "or a newer value Graph sends",
    ),
]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="csv: the page as CSV (as does `Accept: text/csv`); default json"),
]


# ------------------------------------------------------------ parameters


def parse_instant(name: str, value: str) -> datetime:
    """An RFC 3339 date-time or a date (midnight UTC) as an aware UTC datetime; 400 otherwise."""
    match = _INSTANT.match(value)
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        micro = int((fraction or "0").ljust(6, "0")[:6])
        local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    except ValueError:
        raise HTTPException(
            400,
            f"{name} must be an RFC 3339 date-time such as 2026-11-25T08:00:00Z, or a date such as 2026-11-25 "
            f"(midnight UTC); got {value[:64]!r}",
        ) from None
    instant = local.replace(tzinfo=UTC)
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        try:
            instant -= sign * shift
        except OverflowError:  # beyond year 1 or 9999: as far as the calendar goes
            instant = datetime.min.replace(tzinfo=UTC) if sign > 0 else datetime.max.replace(tzinfo=UTC)
    return instant


def instant_text(instant: datetime) -> str:
    """Canonical UTC text: the same instant always reads the same (tokens bind to it)."""
    fraction = f".{instant.microsecond:06d}".rstrip("0") if instant.microsecond else ""
    return (
        f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}T"
        f"{instant.hour:02d}:{instant.minute:02d}:{instant.second:02d}{fraction}Z"
    )


def _states(values: Sequence[str] | None) -> list[str]:
    """Graph's spelling for the states it documents, whatever the case; others as given."""
    return list(dict.fromkeys(KNOWN_STATES.get(value.lower(), value) for value in values or ()))


def _empty_window(start: datetime, end: datetime) -> HTTPException:
    return HTTPException(
        400,
        f"from ({instant_text(start)}) must be earlier than to ({instant_text(end)}): to is exclusive, so one "
        "day is from=2026-11-25&to=2026-11-26; without to, the window ends now",
    )


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    start = parse_instant("from", since) if since is not None else None
    end = parse_instant("to", until) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise _empty_window(start, end)
    return start, end


def _is_feed_position(position: Any) -> bool:
    """The failure feed's position: a day, and the RowKey to continue after on it (or None)."""
    if not isinstance(position, dict):
        return False
    day, after = position.get("d"), position.get("a")
    return (
        isinstance(day, str)
        and bool(_DAY.match(day))
        and (after is None or (isinstance(after, str) and bool(_ROW_KEY.match(after))))
    )


async def _resume(
    store: Store, endpoint: str, query: dict[str, Any], continuation: str | None, valid: Callable[[Any], bool]
) -> Any:
    """Where a page continues: the position a token of this endpoint and query carries
    (None without a token); a forged, moved or malformed one is a 400."""
    if continuation is None:
        return None
    position = redeem(await store.api_signing_key(), endpoint, query, continuation)
    if not valid(position):
        raise ContinuationError
    return position


async def _next_link(
    request: Request, store: Store, endpoint: str, query: dict[str, Any], position: Any, **params: Any
) -> str:
    """This URL with a signed token for the next page (and `params` pinned)."""
    token = issue(await store.api_signing_key(), endpoint, query, position)
    return str(request.url.include_query_params(**params, continuation=token))


def _page_response(
    request: Request, format_: str | None, body: dict[str, Any], *, with_job: bool
) -> dict[str, Any] | Response:
    """The JSON page, or its CSV with the next page in a Link header."""
    if not wants_csv(format_, request.headers.get("accept")):
        return body
    headers = {"Content-Disposition": 'inline; filename="executions.csv"'}
    if body["nextLink"]:
        headers["Link"] = f'<{body["nextLink"]}>; rel="next"'
    return Response(executions_csv(body["value"], with_job=with_job), media_type=CSV_MEDIA_TYPE, headers=headers)


def _minute(now: datetime | None = None) -> datetime:
    """Now to the minute: answers (and so their ETags) hold still within a minute."""
    return (now or datetime.now(UTC)).replace(second=0, microsecond=0)


POLLS_STOPPED = "no poll has read Microsoft Graph since then (GET /api/health says why)"


async def _polls_stopped_at(store: Store, settings: Settings, now: datetime) -> str | None:
    """When polling last read Graph, if it has stopped since (no successful poll within the
    health check's allowed age); None while polls keep up. Jobs are then the monitor's blind
    spot, not stopped jobs."""
    last_ok = await store.last_successful_poll()
    ended = parse_timestamp((last_ok or {}).get("endedAt"))
    if last_ok is None or ended is None or (now - ended).total_seconds() <= max_poll_age_seconds(settings):
        return None
    return str(last_ok["startedAt"])


def _current(job: Mapping[str, Any], now: datetime, settings: Settings, stopped_at: str | None) -> dict[str, Any]:
    """The job with health as of `now`; unobserved since `stopped_at` when polls have stopped."""
    if stopped_at is not None and not job.get("notObservedSince"):
        job = {**job, "notObservedSince": stopped_at, "notObservedReason": POLLS_STOPPED}
    return with_current_health(job, now=now, rules=settings.health_rules)


async def _current_jobs(store: Store, now: datetime, settings: Settings) -> list[dict[str, Any]]:
    jobs, stopped_at = await asyncio.gather(store.list_jobs(), _polls_stopped_at(store, settings, now))
    return [_current(job, now, settings, stopped_at) for job in jobs]


async def _job_or_404(store: Store, service_principal_id: str, job_id: str) -> Mapping[str, Any]:
    job = await store.get_job(service_principal_id, job_id)
    if job is None:
        raise HTTPException(
            404,
            f"No job {job_id!r} is stored for service principal {service_principal_id!r}: "
            "GET /api/v1/jobs lists the jobs there are",
        )
    return job


# ------------------------------------------------------------ routes

v1 = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_caller)])


@v1.get(
    "/jobs",
    response_model=JobList,
    responses=_problems(400, 401, 403, 503),
    tags=["jobs"],
    operation_id="listJobs",
    summary="List jobs",
)
async def list_jobs(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    health: Annotated[
        list[HealthValue] | None, Query(max_length=8, description="Only jobs with this health (repeatable)")
    ] = None,
    statusCode: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
        Query(max_length=10, description="Only jobs with this status code, e.g. Quarantine (repeatable, any case)"),
    ] = None,
    templateId: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]] | None,
        Query(max_length=20, description="Only jobs made from this template, e.g. scim (repeatable, any case)"),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Service principal name or job id contains this (any case)")
    ] = None,
    sort: Annotated[
        JobSort, Query(description="health orders worst first; lastRun by lastExecution.timeBegan")
    ] = "name",
    order: Annotated[Literal["asc", "desc"], Query(description="ties: by name, then job id, same direction")] = "asc",
    top: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page (1-1000)")] = MAX_PAGE,
    continuation: Continuation = None,
) -> dict[str, Any]:
    """The tenant's provisioning jobs with their health, filtered and sorted, paged."""
    jobs = filter_jobs(
        await _current_jobs(store, _minute(), settings),
        health=health or (),
        status_codes=statusCode or (),
        template_ids=templateId or (),
        q=q,
    )
    key = job_sort_key(sort)
    descending = order == "desc"
    jobs.sort(key=key, reverse=descending)
    query = {
        "health": health or [],
        "statusCode": statusCode or [],
        "templateId": templateId or [],
        "q": q or "",
        "sort": sort,
        "order": order,
    }
    count = len(jobs)
    after = await _resume(
        store, "jobs", query, continuation, lambda p: isinstance(p, list) and all(isinstance(x, str) for x in p)
    )
    if after is not None:
        jobs = [job for job in jobs if (key(job) < after if descending else key(job) > after)]
    page = jobs[:top]
    next_link = None
    if len(jobs) > top:
        next_link = await _next_link(request, store, "jobs", query, key(page[-1]), top=top)
    return {"value": page, "count": count, "nextLink": next_link}


@v1.get(
    "/jobs/{servicePrincipalId}/{jobId}",
    response_model=JobDetail,
    responses=_problems(400, 401, 403, 404, 503),
    tags=["jobs"],
    operation_id="getJob",
    summary="Get a job",
)
async def get_job(
    servicePrincipalId: ServicePrincipalId, jobId: JobId, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    """One job, its most recent runs and its timeline of state transitions."""
    job = await _job_or_404(store, servicePrincipalId, jobId)
    now = _minute()
    (executions, _), events, stopped_at = await asyncio.gather(
        store.executions_page(servicePrincipalId, jobId, top=JOB_DETAIL_RUNS),
        store.list_events(servicePrincipalId, jobId, top=JOB_DETAIL_EVENTS),
        _polls_stopped_at(store, settings, now),
    )
    return {"job": _current(job, now, settings, stopped_at), "executions": executions, "events": events}


@v1.get(
    "/jobs/{servicePrincipalId}/{jobId}/executions",
    response_model=ExecutionPage,
    responses=_problems(400, 401, 403, 404, 503),
    tags=["executions"],
    operation_id="listJobExecutions",
    summary="List a job's runs",
)
async def list_executions(
    request: Request,
    servicePrincipalId: ServicePrincipalId,
    jobId: JobId,
    store: StoreDep,
    top: Top = DEFAULT_PAGE,
    continuation: Continuation = None,
    since: Since = None,
    until: Until = None,
    state: States = None,
    format_: Format = None,
) -> Any:
    """The job's runs, newest first by timeBegan, optionally within [from, to) and of some states; paged."""
    start, end = _window(since, until)
    states = _states(state)
    await _job_or_404(store, servicePrincipalId, jobId)
    query = {
        "servicePrincipalId": servicePrincipalId,
        "jobId": jobId,
        "from": instant_text(start) if start else None,
        "to": instant_text(end) if end else None,
        "state": states,
    }
    after = await _resume(
        store, "jobExecutions", query, continuation, lambda p: isinstance(p, str) and bool(_ROW_KEY.match(p))
    )
    page, next_after = await store.executions_page(
        servicePrincipalId, jobId, top=top, since=start, until=end, states=states, after_row_key=after
    )
    next_link = None
    if next_after is not None:
        next_link = await _next_link(request, store, "jobExecutions", query, next_after, top=top)
    return _page_response(request, format_, {"value": page, "nextLink": next_link}, with_job=False)


@v1.get(
    "/executions",
    response_model=TenantExecutionPage,
    responses=_problems(400, 401, 403, 503),
    tags=["executions"],
    operation_id="listExecutions",
    summary="List the tenant's runs in a time window",
)
async def list_tenant_executions(
    request: Request,
    store: StoreDep,
    top: Top = DEFAULT_PAGE,
    continuation: Continuation = None,
    since: Since = None,
    until: Until = None,
    state: States = None,
    format_: Format = None,
) -> Any:
    """Every job's runs that began in [from, to) (default: the last 24 hours), newest first,
    optionally of some states (`state=Failed` is the failure feed); paged."""
    start, end = _window(since, until)
    end = end or _minute() + timedelta(minutes=1)  # the end of this minute: the answer holds still within it
    start = start or end - FEED_DEFAULT_SPAN
    if start >= end:
        raise _empty_window(start, end)
    states = _states(state)
    query = {"from": instant_text(start), "to": instant_text(end), "state": states}
    position = await _resume(store, "executions", query, continuation, _is_feed_position) or {}
    at_day, after = position.get("d"), position.get("a")
    first_day, last_day = start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()
    # Only days whose rollup counts matching runs are read; the window's last day always is,
    # as its rollup may trail the runs of a poll that is writing right now.
    days = {last_day} | {at_day or last_day}
    for row in await store.run_days(first_day, last_day):
        if any(row["byState"].get(s, 0) for s in states) if states else row["runs"] > 0:
            days.add(row["day"])
    ordered = sorted((day for day in days if at_day is None or day <= at_day), reverse=True)
    page: list[dict[str, Any]] = []
    next_position: dict[str, Any] | None = None
    for index, day in enumerate(ordered):
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
            next_position = {"d": day, "a": next_after}
            break
        if len(page) >= top:
            if index + 1 < len(ordered):
                next_position = {"d": ordered[index + 1], "a": None}
            break
    next_link = None
    if next_position is not None:
        next_link = await _next_link(
            request, store, "executions", query, next_position, top=top, **{"from": query["from"], "to": query["to"]}
        )
    body = {"value": page, "nextLink": next_link, "window": {"from": query["from"], "to": query["to"]}}
    return _page_response(request, format_, body, with_job=True)


@v1.get(
    "/summary",
    response_model=Summary,
    responses=_problems(400, 401, 403, 503),
    tags=["summary"],
    operation_id="getSummary",
    summary="Summarize the tenant",
)
async def summary(
    store: StoreDep,
    settings: SettingsDep,
    window: Annotated[
        Literal["24h", "7d", "30d", "90d"] | None,
        Query(
            description="Count runs of the UTC days overlapping this window (24h: yesterday and today), and "
            "rank jobs by failed runs and escrows in it; without it, runs of all stored days and no ranking"
        ),
    ] = None,
) -> dict[str, Any]:
    """Jobs by health and status code, runs by state with totals and success rate, the top failing
    and escrow-heavy jobs, quarantined jobs, and the last poll. Read from the daily rollups only."""
    now = _minute()
    first_day = (now - timedelta(days=WINDOW_DAYS[window])).date().isoformat() if window else None
    jobs, days, last_poll = await asyncio.gather(
        _current_jobs(store, now, settings), store.run_days(first_day), store.last_poll()
    )
    executions, totals = execution_counts(days)
    result: dict[str, Any] = {
        "jobs": {
            "total": len(jobs),
            "byStatusCode": count_by(job["statusCode"] or "unknown" for job in jobs),
            "byHealth": count_by(job["health"] for job in jobs),
        },
        "executions": executions,
        "executionTotals": totals,
        "window": None,
        "topFailingJobs": None,
        "topEscrowedJobs": None,
        "quarantinedJobs": quarantined_jobs(jobs, now),
        "lastPoll": last_poll,
    }
    if window and first_day:
        days_with_runs = [row["day"] for row in days if row["runs"]]
        ranks = job_ranks(await store.job_days(first_day, max([now.date().isoformat(), *days_with_runs])), jobs)
        result["window"] = {
            "name": window,
            "from": f"{first_day}T00:00:00Z",
            "to": isoformat_utc(now),
            "days": (now.date() - date.fromisoformat(first_day)).days + 1,
        }
        result["topFailingJobs"] = top_jobs(ranks, "failedRuns")
        result["topEscrowedJobs"] = top_jobs(ranks, "countEscrowed")
    return result


# ------------------------------------------------------------ the app


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_: Request, error: StarletteHTTPException) -> Response:
        return problem(error.status_code, str(error.detail), error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_: Request, error: RequestValidationError) -> Response:
        details = [
            f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'request'}: {item.get('msg')}"
            for item in error.errors()
        ]
        return problem(400, "; ".join(details))

    @app.exception_handler(ContinuationError)
    async def continuation_problem(_: Request, error: ContinuationError) -> Response:
        return problem(400, str(error))

    @app.exception_handler(AzureError)
    async def storage_problem(_: Request, error: AzureError) -> Response:
        log.warning("Table Storage failed a request: %s", type(error).__name__)
        return problem(503, "Table Storage did not answer as expected; try again shortly", {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def unexpected_problem(_: Request, error: Exception) -> Response:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "An unexpected error occurred; it has been logged")


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await close_store()  # the process's table client, in the loop that made it


def create_app() -> FastAPI:
    app = FastAPI(
        title="Entra Sync Monitor API",
        version=__version__,
        description="Tenant-wide state and history of Microsoft Entra provisioning jobs.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    _install_problem_handlers(app)
    app.include_router(v1)
    # The alert endpoints (docs/alerts.md) answer to the same caller checks as the rest of /api/v1;
    # the dashboard page (docs/dashboard.md) holds no data and calls the API like any portal.
    app.include_router(
        alerts_router, prefix=API_PREFIX, dependencies=[Depends(require_caller)], responses=_problems(401, 403)
    )
    app.include_router(dashboard_router)

    @app.get(
        "/api/health",
        response_model=MonitorHealth,
        responses={503: {"model": MonitorHealth, "description": "Polling has stopped keeping up, or cannot run"}},
        tags=["health"],
        operation_id="getHealth",
        summary="The monitor's own health",
    )
    async def health(response: Response) -> dict[str, Any]:
        """The monitor's own freshness, for platform health checks: open without a key, and
        nothing about the tenant in it."""
        status, body = await monitor_health()
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return body

    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(SettingsCorsMiddleware)
    return app


__all__ = ["Execution", "Job", "create_app"]
