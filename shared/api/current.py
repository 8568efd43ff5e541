"""Jobs as the API serves them: with health and reasons as of the answer's minute, and
unobserved (the monitor's blind spot, not a stopped job) once polls have stopped reading
Graph for longer than the health check allows. Also the 404 for a job not stored.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import cast

from fastapi import HTTPException

from shared.api.service_health import max_poll_age_seconds
from shared.domain.health import with_current_health
from shared.domain.model import Job
from shared.domain.timestamps import parse_timestamp
from shared.settings import Settings
from shared.storage.store import Store

POLLS_STOPPED = "no poll has read Microsoft Graph since then (GET /api/health says why)"


async def polls_stopped_at(store: Store, settings: Settings, now: datetime) -> str | None:
    """When polling last read Graph, if it has stopped since (no successful poll within the
    health check's allowed age); None while polls keep up."""
    last_ok = await store.last_successful_poll()
    ended = parse_timestamp((last_ok or {}).get("endedAt"))
    if last_ok is None or ended is None or (now - ended).total_seconds() <= max_poll_age_seconds(settings):
        return None
    return str(last_ok["startedAt"])


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
