"""`GET /api/v1/metrics`: the monitor's stored state for Prometheus, every tenant the caller may
see (or the one `?tenant=` names), as the Prometheus text format or OpenMetrics (by Accept).

Read from storage only (each tenant's Jobs partition, its last poll records, its open alerts),
never from this process's memory, so any instance answers the same; at most `TENANTS_AT_ONCE`
tenants are read at a time. The families and their rendering are `shared.api.metrics_text`;
docs/metrics.md is the reader's guide. shared/api/app.py includes `router` under /api/v1
behind the caller check.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from shared import __version__
from shared.alerts.store import list_alerts
from shared.api.current import current_job, each_tenant, stopped_at, tenant_state_now
from shared.api.deps import CallerDep, DeploymentSettingsDep, Minute, visible_tenant, visible_tenants
from shared.api.metrics_text import (
    OPENMETRICS_FORMAT,
    TEXT_FORMAT,
    TenantFigures,
    metric_families,
    render,
    wants_openmetrics,
)
from shared.api.params import problems
from shared.domain.tenants import Tenant
from shared.settings import Settings
from shared.storage.store import open_store

router = APIRouter(tags=["metrics"])

_EXPOSITION = {"schema": {"type": "string", "description": "metric families (docs/metrics.md)"}}
_RESPONSES = {
    200: {
        "description": "The Prometheus text format 0.0.4, or OpenMetrics 1.0.0 when Accept prefers it",
        "content": {"text/plain": _EXPOSITION, "application/openmetrics-text": _EXPOSITION},
    },
    **problems(400, 401, 403, 404, 503),
}


async def _figures(settings: Settings, tenant: Tenant, minute: datetime, now: datetime) -> TenantFigures:
    own = settings.for_tenant(tenant)
    store = open_store(own)
    stored, last, last_ok, alerts = await asyncio.gather(
        store.list_jobs(),
        store.last_poll(),
        store.last_successful_poll(),
        list_alerts(store, status="open"),
    )
    stopped = stopped_at(last_ok, own, minute)  # the last successful poll, read once
    jobs = [current_job(job, minute, own, stopped) for job in stored]
    return TenantFigures(tenant.tenant_id, tenant_state_now(settings, tenant, last, now), jobs, last, last_ok, alerts)


@router.get(
    "/metrics",
    response_class=Response,
    responses=_RESPONSES,
    operation_id="getMetrics",
    summary="Metrics for Prometheus: jobs, tenants and polls",
)
async def metrics(
    request: Request,
    settings: DeploymentSettingsDep,
    caller: CallerDep,
    minute: Minute,
    tenant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Only this tenant (its GUID); without it, every tenant the caller may see",
        ),
    ] = None,
) -> Response:
    """Each job's health, last run state, escrowed entries, time since its last success and in
    quarantine; each tenant's jobs by health and status code, open alerts and state; the age and
    status of its last poll; the monitor's version. Health is as GET /api/v1/jobs answers it this
    minute; ages are seconds before the answer. docs/metrics.md lists the families and labels."""
    tenants = await visible_tenants(settings, caller)
    if tenant is not None:
        tenants = [visible_tenant(tenants, tenant)]
    now = datetime.now(UTC)

    async def figures_of(watched: Tenant) -> TenantFigures:
        return await _figures(settings, watched, minute, now)

    figures = await each_tenant(tenants, figures_of)
    openmetrics = wants_openmetrics(request.headers.get("accept"))
    body = render(metric_families(figures, now, __version__), openmetrics=openmetrics)
    return Response(body, media_type=OPENMETRICS_FORMAT if openmetrics else TEXT_FORMAT)
