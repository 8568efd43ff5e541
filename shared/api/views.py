"""What the API computes from stored rows: job filters and order, and the summary. Pure.

Jobs are the domain's `Job` (with current health, `shared.api.current`); rollup rows
(TenantDays, JobDays) are the store's mappings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from shared.domain.health import quarantine_since
from shared.domain.model import HEALTH_VALUES, Job
from shared.domain.timestamps import parse_timestamp
from shared.storage.keys import job_key
from shared.storage.rollups import DayRollup, JobDayRollup

JobSort = Literal["name", "health", "statusCode", "templateId", "lastRun", "escrowed"]
TOP_JOBS = 10
_SEVERITY = {health: index for index, health in enumerate(HEALTH_VALUES)}


def filter_jobs(
    jobs: Iterable[Job],
    *,
    health: Sequence[str] = (),
    status_codes: Sequence[str] = (),
    template_ids: Sequence[str] = (),
    q: str | None = None,
) -> list[Job]:
    """Jobs matching every given filter; a filter's values are alternatives. Status codes and
    template ids match whole and ignore case; `q` is a substring of the service principal's
    name or the job id, ignoring case."""
    codes = {code.lower() for code in status_codes}
    templates = {template.lower() for template in template_ids}
    needle = (q or "").strip().lower()
    return [
        job
        for job in jobs
        if (not health or job["health"] in health)
        and (not codes or (job.get("statusCode") or "").lower() in codes)
        and (not templates or (job.get("templateId") or "").lower() in templates)
        and (
            not needle
            or needle in (job.get("servicePrincipalName") or "").lower()
            or needle in (job.get("jobId") or "").lower()
        )
    ]


def job_sort_key(sort: JobSort) -> Callable[[Job], list[str]]:
    """A key of strings only (so it survives a continuation token as JSON and compares the
    same afterwards), ending with the job's unique key. `health` orders worst first."""

    def primary(job: Job) -> str:
        last = job.get("lastExecution")
        if sort == "health":
            return f"{_SEVERITY.get(job['health'], 99):02d}"
        if sort == "statusCode":
            return (job.get("statusCode") or "").lower()
        if sort == "templateId":
            return (job.get("templateId") or "").lower()
        if sort == "lastRun":  # a partial last run (no timeBegan) sorts by its end
            return (last.get("timeBegan") or last.get("timeEnded") if last else None) or ""
        if sort == "escrowed":
            return f"{(last.get('countEscrowed') if last else None) or 0:020d}"
        return ""

    def key(job: Job) -> list[str]:
        name = (job.get("servicePrincipalName") or "").lower()
        return [primary(job), name, job["jobId"].lower(), job_key(job["servicePrincipalId"], job["jobId"])]

    return key


def count_by(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _sum_states(rows: Iterable[DayRollup]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        for state, count in row["byState"].items():
            totals[state] = totals.get(state, 0) + count
    return totals


def execution_counts(days: Sequence[DayRollup]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs and runs by state of rollup rows; and their summed counts and success rate
    (Succeeded / runs)."""
    runs = sum(row["runs"] for row in days)
    by_state = _sum_states(days)
    totals = {
        "countImported": sum(row["countImported"] for row in days),
        "countExported": sum(row["countExported"] for row in days),
        "countEscrowed": sum(row["countEscrowed"] for row in days),
        "successRate": round(by_state.get("Succeeded", 0) / runs, 4) if runs else None,
    }
    return {"total": runs, "byState": by_state}, totals


def job_ranks(job_days: Iterable[JobDayRollup], jobs: Iterable[Job]) -> list[dict[str, Any]]:
    """Each job's runs over the given JobDays rows, with its current name and health."""
    current = {(job["servicePrincipalId"], job["jobId"]): job for job in jobs}
    grouped: dict[tuple[str, str], list[JobDayRollup]] = {}
    for row in job_days:
        sp_id, job_id = row["servicePrincipalId"], row["jobId"]
        if sp_id and job_id:
            grouped.setdefault((sp_id, job_id), []).append(row)
    ranks = []
    for (sp_id, job_id), rows in grouped.items():
        job: Mapping[str, object] = current.get((sp_id, job_id), {})
        by_state = _sum_states(rows)
        ranks.append(
            {
                "servicePrincipalId": sp_id,
                "servicePrincipalName": job.get("servicePrincipalName"),
                "jobId": job_id,
                "templateId": job.get("templateId"),
                "health": job.get("health"),
                "runs": sum(row["runs"] for row in rows),
                "failedRuns": by_state.get("Failed", 0),
                "byState": by_state,
                "countEscrowed": sum(row["countEscrowed"] for row in rows),
            }
        )
    return ranks


def top_jobs(ranks: Sequence[Mapping[str, Any]], field: str, limit: int = TOP_JOBS) -> list[Mapping[str, Any]]:
    """The jobs with the largest non-zero `field`, largest first, then by name."""
    ranked = [rank for rank in ranks if rank[field] > 0]
    ranked.sort(key=lambda r: (-r[field], (r["servicePrincipalName"] or "").lower(), r["jobId"]))
    return ranked[:limit]


def quarantined_jobs(jobs: Iterable[Job], now: datetime) -> list[dict[str, Any]]:
    """Jobs quarantined now, longest in quarantine first, with the time in whole minutes."""
    found: list[dict[str, Any]] = []
    for job in jobs:
        if job["health"] != "quarantined":
            continue
        quarantine: Mapping[str, object] = job.get("quarantine") or {}
        since = quarantine_since(quarantine)
        began = parse_timestamp(since)
        seconds = int(max(0.0, (now - began).total_seconds()) // 60 * 60) if began is not None else None
        found.append(
            {
                "servicePrincipalId": job["servicePrincipalId"],
                "servicePrincipalName": job.get("servicePrincipalName"),
                "jobId": job["jobId"],
                "templateId": job.get("templateId"),
                "reason": quarantine.get("reason"),
                "since": since,
                "currentBegan": quarantine.get("currentBegan"),
                "seriesBegan": quarantine.get("seriesBegan"),
                "nextAttempt": quarantine.get("nextAttempt"),
                "secondsInQuarantine": seconds,
            }
        )
    found.sort(key=lambda q: (-(q["secondsInQuarantine"] or -1), (q["servicePrincipalName"] or "").lower()))
    return found
