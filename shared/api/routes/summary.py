"""`GET /api/v1/summary`: jobs by health and status code, runs by state with totals and success
rate, the top failing and escrow-heavy jobs of a window, quarantined jobs, the last poll.
Read from the Jobs partition and the daily rollups only (the pure counting is in `views`).
shared/api/app.py includes `router` under /api/v1 behind the caller check; docs/api.md is the
reader's guide.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from shared.api.current import current_jobs
from shared.api.deps import Minute, SettingsDep, StoreDep
from shared.api.models import Summary
from shared.api.params import problems
from shared.api.views import count_by, execution_counts, job_ranks, quarantined_jobs, top_jobs
from shared.domain.timestamps import isoformat_utc

WINDOW_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}

router = APIRouter()


@router.get(
    "/summary",
    response_model=Summary,
    responses=problems(400, 401, 403, 503),
    tags=["summary"],
    operation_id="getSummary",
    summary="Summarize the tenant",
)
async def summary(
    store: StoreDep,
    settings: SettingsDep,
    now: Minute,
    window: Annotated[
        Literal["24h", "7d", "30d", "90d"] | None,
        Query(
            description="Count runs of the UTC days overlapping this window (24h: yesterday and today), and "
            "rank jobs by failed runs and escrows in it; without it, runs of all stored days and no ranking"
        ),
    ] = None,
) -> dict[str, object]:
    """Jobs by health and status code, runs by state with totals and success rate, the top failing
    and escrow-heavy jobs, quarantined jobs, and the last poll. Read from the daily rollups only."""
    first_day = (now - timedelta(days=WINDOW_DAYS[window])).date().isoformat() if window else None
    jobs, days, last_poll = await asyncio.gather(
        current_jobs(store, now, settings), store.run_days(first_day), store.last_poll()
    )
    executions, totals = execution_counts(days)
    result: dict[str, object] = {
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
