"""The jobs: `GET /api/v1/jobs` (filtered, sorted, paged, with health as of now) and
`GET /api/v1/jobs/{servicePrincipalId}/{jobId}` (a job, its newest runs and its timeline).
A job's runs are in `routes.executions`. shared/api/app.py includes `router` under /api/v1
behind the caller check; docs/api.md is the reader's guide.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, TypeGuard

from fastapi import APIRouter, Query
from pydantic import Field

from shared.api.current import current_job, current_jobs, job_or_404, polls_stopped_at
from shared.api.deps import Minute, PagesDep, SettingsDep, StoreDep
from shared.api.models import JobDetail, JobList
from shared.api.params import MAX_PAGE, Continuation, JobId, ServicePrincipalId, problems
from shared.api.views import JobSort, filter_jobs, job_sort_key
from shared.domain.model import HealthValue

JOB_DETAIL_RUNS = 10
JOB_DETAIL_EVENTS = 100

router = APIRouter()


def _is_job_position(position: object) -> TypeGuard[list[str]]:
    """The jobs list's position: the sort key of the last job served (strings only)."""
    return isinstance(position, list) and all(isinstance(part, str) for part in position)


@router.get(
    "/jobs",
    response_model=JobList,
    responses=problems(400, 401, 403, 503),
    tags=["jobs"],
    operation_id="listJobs",
    summary="List jobs",
)
async def list_jobs(
    pages: PagesDep,
    store: StoreDep,
    settings: SettingsDep,
    now: Minute,
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
) -> dict[str, object]:
    """The tenant's provisioning jobs with their health, filtered and sorted, paged."""
    jobs = filter_jobs(
        await current_jobs(store, now, settings),
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
    after = await pages.resume("jobs", query, continuation, _is_job_position)
    if after is not None:
        jobs = [job for job in jobs if (key(job) < after if descending else key(job) > after)]
    page = jobs[:top]
    next_link = await pages.next_link("jobs", query, key(page[-1]) if len(jobs) > top else None, top=top)
    return {"value": page, "count": count, "nextLink": next_link}


@router.get(
    "/jobs/{servicePrincipalId}/{jobId}",
    response_model=JobDetail,
    responses=problems(400, 401, 403, 404, 503),
    tags=["jobs"],
    operation_id="getJob",
    summary="Get a job",
)
async def get_job(
    servicePrincipalId: ServicePrincipalId, jobId: JobId, store: StoreDep, settings: SettingsDep, now: Minute
) -> dict[str, object]:
    """One job, its most recent runs and its timeline of state transitions."""
    job = await job_or_404(store, servicePrincipalId, jobId)
    (executions, _), events, stopped_at = await asyncio.gather(
        store.executions_page(servicePrincipalId, jobId, top=JOB_DETAIL_RUNS),
        store.list_events(servicePrincipalId, jobId, top=JOB_DETAIL_EVENTS),
        polls_stopped_at(store, settings, now),
    )
    return {"job": current_job(job, now, settings, stopped_at), "executions": executions, "events": events}
