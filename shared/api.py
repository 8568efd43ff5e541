"""The HTTP API (FastAPI), served by the Functions host through AsgiFunctionApp and locally
by uvicorn (`python -m shared serve`). It only reads the tables; it never imports msgraph.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared import __version__
from shared.api_models import (
    Execution,
    ExecutionPage,
    Job,
    JobDetail,
    JobList,
    Problem,
    Summary,
)
from shared.health import with_current_health
from shared.settings import SettingsError, load_settings
from shared.store import Store, open_store

API_PREFIX = "/api/v1"
PROBLEM_JSON = "application/problem+json"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_ROW_KEY = re.compile(r"^\d{19}\|[^\x00-\x1f/\\#?]{1,1024}$")
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A parameter is malformed"},
    503: {"model": Problem, "description": "The app is not configured"},
}


def problem(status: int, title: str, detail: str | None = None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def get_store() -> Store:
    try:
        settings = load_settings()
    except SettingsError as error:
        raise HTTPException(503, f"The app is misconfigured: {error}") from None
    return open_store(settings)


StoreDep = Annotated[Store, Depends(get_store)]
ServicePrincipalId = Annotated[str, Path(min_length=1, max_length=100, description="Service principal object ID")]
JobId = Annotated[str, Path(min_length=1, max_length=400, description="synchronizationJob id")]


def encode_continuation(row_key: str) -> str:
    raw = json.dumps({"v": 1, "after": row_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str) -> str:
    """The RowKey a page continues after; a token this API did not make is a 400."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    after = data.get("after") if isinstance(data, dict) and data.get("v") == 1 else None
    if not isinstance(after, str) or not _ROW_KEY.match(after):
        raise HTTPException(400, "continuation is not a token this API issued: start again without it")
    return after


async def _current_jobs(store: Store) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [with_current_health(job, now=now) for job in await store.list_jobs()]


def create_app() -> FastAPI:
    app = FastAPI(
        title="Entra Sync Monitor API",
        version=__version__,
        description="Tenant-wide state and history of Microsoft Entra provisioning jobs.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )

    @app.exception_handler(HTTPException)
    async def http_problem(_: Request, error: HTTPException) -> JSONResponse:
        titles = {400: "Bad request", 404: "Not found", 503: "Service unavailable"}
        return problem(error.status_code, titles.get(error.status_code, "Error"), str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            f"{'.'.join(str(p) for p in item.get('loc', ())[1:]) or 'request'}: {item.get('msg')}"
            for item in error.errors()
        ]
        return problem(400, "Bad request", "; ".join(details))

    @app.get(f"{API_PREFIX}/jobs", response_model=JobList, responses=_PROBLEMS, tags=["jobs"])
    async def list_jobs(store: StoreDep) -> dict[str, Any]:
        """Every provisioning job in the tenant with its health."""
        jobs = await _current_jobs(store)
        jobs.sort(key=lambda job: ((job["servicePrincipalName"] or "").lower(), job["jobId"]))
        return {"value": jobs}

    @app.get(
        f"{API_PREFIX}/jobs/{{servicePrincipalId}}/{{jobId}}",
        response_model=JobDetail,
        responses={**_PROBLEMS, 404: {"model": Problem, "description": "No such job"}},
        tags=["jobs"],
    )
    async def get_job(servicePrincipalId: ServicePrincipalId, jobId: JobId, store: StoreDep) -> dict[str, Any]:
        """One job, its most recent runs and its timeline."""
        job = await store.get_job(servicePrincipalId, jobId)
        if job is None:
            raise HTTPException(404, f"No job {jobId!r} is stored for service principal {servicePrincipalId!r}")
        executions, _ = await store.list_executions(servicePrincipalId, jobId, top=10)
        events = await store.list_events(servicePrincipalId, jobId, top=100)
        return {"job": with_current_health(job, now=datetime.now(UTC)), "executions": executions, "events": events}

    @app.get(
        f"{API_PREFIX}/jobs/{{servicePrincipalId}}/{{jobId}}/executions",
        response_model=ExecutionPage,
        responses={**_PROBLEMS, 404: {"model": Problem, "description": "No such job"}},
        tags=["executions"],
    )
    async def list_executions(
        request: Request,
        servicePrincipalId: ServicePrincipalId,
        jobId: JobId,
        store: StoreDep,
        top: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page")] = DEFAULT_PAGE,
        continuation: Annotated[
            str | None, Query(max_length=2048, description="From a previous page's nextLink")
        ] = None,
    ) -> dict[str, Any]:
        """The job's runs, newest first by timeBegan, paged."""
        after = decode_continuation(continuation) if continuation is not None else None
        if await store.get_job(servicePrincipalId, jobId) is None:
            raise HTTPException(404, f"No job {jobId!r} is stored for service principal {servicePrincipalId!r}")
        page, next_after = await store.list_executions(servicePrincipalId, jobId, top=top, after_row_key=after)
        next_link = None
        if next_after is not None:
            next_link = str(request.url.include_query_params(top=top, continuation=encode_continuation(next_after)))
        return {"value": page, "nextLink": next_link}

    @app.get(f"{API_PREFIX}/summary", response_model=Summary, responses=_PROBLEMS, tags=["summary"])
    async def summary(store: StoreDep) -> dict[str, Any]:
        """Jobs by status code and health, runs by state, and the last poll."""
        jobs = await _current_jobs(store)
        by_code: dict[str, int] = {}
        by_health: dict[str, int] = {}
        for job in jobs:
            code = job["statusCode"] or "unknown"
            by_code[code] = by_code.get(code, 0) + 1
            by_health[job["health"]] = by_health.get(job["health"], 0) + 1
        runs = await store.run_counts()
        return {
            "jobs": {"total": len(jobs), "byStatusCode": by_code, "byHealth": by_health},
            "executions": {"total": runs.runs, "byState": runs.by_state},
            "lastPoll": await store.last_poll(),
        }

    return app


__all__ = ["Execution", "Job", "create_app"]
