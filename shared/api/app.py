"""The HTTP API's app factory (FastAPI), served by the Functions host through AsgiFunctionApp
and locally by uvicorn (`python -m shared serve`). It never imports msgraph. docs/api.md is
the reader's guide.

`create_app` puts together: the routers, one per resource in `routes/` (`jobs`,
`executions`, `summary`, `alerts`, `tenants` and `metrics` under /api/v1 behind the caller
check, `health` open, the `dashboard` page, and the OpenAPI document with its UI,
`reference`, behind the caller check too); the problem answers for every error; the middleware (ETags and 304s,
CORS from a setting: `http`); and the exact OpenAPI document (`openapi`). What the routes
share is elsewhere: dependencies (settings once per request, store, caller check, the
minute, paging) in `deps`, parameters in `params`, jobs as of now in `current`, the pure job
and summary logic in `views`, continuation tokens in `paging`, the health check in
`service_health`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from azure.core.exceptions import AzureError
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import __version__
from shared.api.deps import API_PREFIX, require_caller
from shared.api.http import ConditionalGetMiddleware, SettingsCorsMiddleware, problem
from shared.api.openapi import build_openapi
from shared.api.paging import ContinuationError
from shared.api.params import problems
from shared.api.routes import (
    actions,
    alerts,
    dashboard,
    errors,
    executions,
    health,
    jobs,
    metrics,
    reference,
    summary,
    tenants,
)
from shared.storage.store import close_store

log = logging.getLogger("entra_sync_monitor.api")


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
        # Served by routes/reference.py, behind the caller check and without FastAPI's CDN page.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    _install_problem_handlers(app)
    caller = [Depends(require_caller)]
    # Every route of one tenant's data takes `?tenant=`: missing when it must be given (400),
    # or not one the caller may see (404).
    of_a_tenant = problems(400, 404)
    for resource in (jobs, executions, errors, summary):
        app.include_router(resource.router, prefix=API_PREFIX, dependencies=caller, responses=of_a_tenant)
    app.include_router(tenants.router, prefix=API_PREFIX, dependencies=caller)
    # Prometheus text of every tenant the caller may see (docs/metrics.md): the same caller check.
    app.include_router(metrics.router, prefix=API_PREFIX, dependencies=caller)
    # The alert endpoints (docs/alerts.md) answer to the same caller checks as the rest of /api/v1;
    # the dashboard page (docs/dashboard.md) holds no data and calls the API like any portal.
    app.include_router(
        alerts.router, prefix=API_PREFIX, dependencies=caller, responses={**problems(401, 403), **of_a_tenant}
    )
    app.include_router(actions.router, prefix=API_PREFIX, dependencies=caller, responses=of_a_tenant)
    app.include_router(dashboard.router)
    app.include_router(reference.router, dependencies=caller)
    app.include_router(health.router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(SettingsCorsMiddleware)
    return app
