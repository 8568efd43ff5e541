"""Jobs as the API serves them: with health and reasons as of the answer's minute, and
unobserved (the monitor's blind spot, not a stopped job) once polls have stopped reading
Graph for longer than the health check allows. Also the 404 for a job not stored, a tenant's
state as of now, and the bounded reads of an answer about several tenants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar, cast

from fastapi import HTTPException

from shared.api.service_health import max_poll_age_seconds
from shared.domain.health import with_current_health
from shared.domain.model import Job
from shared.domain.tenants import Tenant, TenantState, tenant_state
from shared.domain.timestamps import parse_timestamp
from shared.settings import Settings
from shared.storage.store import Store

T = TypeVar("T")
TENANTS_AT_ONCE = 8  # tenants read at once by an answer about several
POLLS_STOPPED = "no poll has read Microsoft Graph since then (GET /api/health says why)"


async def polls_stopped_at(store: Store, settings: Settings, now: datetime) -> str | None:
    """When polling last read Graph, if it has stopped since (no successful poll within the
    health check's allowed age); None while polls keep up."""
    return stopped_at(await store.last_successful_poll(), settings, now)


def stopped_at(last_ok: Mapping[str, Any] | None, settings: Settings, now: datetime) -> str | None:
    """`polls_stopped_at` from the last successful poll already read."""
    ended = parse_timestamp((last_ok or {}).get("endedAt"))
    if last_ok is None or ended is None or (now - ended).total_seconds() <= max_poll_age_seconds(settings):
        return None
    return str(last_ok["startedAt"])


def tenant_state_now(settings: Settings, tenant: Tenant, last: Mapping[str, Any] | None, now: datetime) -> TenantState:
    """The tenant's state from its last poll, that poll's age measured at `now`."""
    ended = parse_timestamp(last.get("endedAt")) if last else None
    age = (now - ended).total_seconds() if ended else None
    return tenant_state(last, enabled=tenant.enabled, age_seconds=age, max_age=max_poll_age_seconds(settings))


async def each_tenant(tenants: Iterable[Tenant], read: Callable[[Tenant], Awaitable[T]]) -> list[T]:
    """`read` of every tenant, in their order, at most TENANTS_AT_ONCE at a time."""
    limit = asyncio.Semaphore(TENANTS_AT_ONCE)

    async def one(tenant: Tenant) -> T:
        async with limit:
            return await read(tenant)

    return list(await asyncio.gather(*(one(tenant) for tenant in tenants)))


def current_job(job: Job, now: datetime, settings: Settings, stopped_at: str | None) -> Job:
    """The job with health as of `now`; unobserved since `stopped_at` when polls have stopped."""
    if stopped_at is not None and not job.get("notObservedSince"):
        job = {**job, "notObservedSince": stopped_at, "notObservedReason": POLLS_STOPPED}
    return cast(Job, with_current_health(job, now=now, rules=settings.health_rules))


async def current_jobs(store: Store, now: datetime, settings: Settings) -> list[Job]:
    """Every stored job, as of `now` (one partition read)."""
    jobs, stopped_at = await asyncio.gather(store.list_jobs(), polls_stopped_at(store, settings, now))
    return [current_job(job, now, settings, stopped_at) for job in jobs]


async def job_or_404(store: Store, service_principal_id: str, job_id: str) -> Job:
    job = await store.get_job(service_principal_id, job_id)
    if job is None:
        raise HTTPException(
            404,
            f"No job {job_id!r} is stored for service principal {service_principal_id!r}: "
            "GET /api/v1/jobs lists the jobs there are",
        )
    return job
