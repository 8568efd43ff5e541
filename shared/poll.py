"""One poll of the tenant: Graph -> normalize -> Table Storage, and a record of what happened.

The timer trigger and `python -m shared poll` both call `run_poll`. The order of writes makes
a poll safe to repeat, overlap or crash: runs first, then their daily rollups, then the job's
current state. A job's state is written only after its runs are stored, so a crash leaves
the job looking unchanged and the next poll writes the same runs again (the same keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.normalize import (
    Execution,
    Job,
    PayloadError,
    ServicePrincipal,
    distinct_runs,
    normalize_job,
    normalize_service_principal,
)
from shared.settings import Settings, load_settings
from shared.store import Store, StoredJob, job_content_hash, job_key, open_store
from shared.timestamps import isoformat_utc

log = logging.getLogger("entra_sync_monitor.poll")

_STORE_CONCURRENCY = 8
_MAX_ERRORS_KEPT = 200


class PollFailedError(RuntimeError):
    """The poll could not do its work (Graph or storage unreachable); its record says why."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


@dataclass
class PollRecord:
    poll_id: str
    tenant_id: str
    started_at: datetime
    trigger: str
    past_due: bool = False
    service_principals_scanned: int = 0
    service_principals_with_jobs: int = 0
    jobs_read: int = 0
    jobs_changed: int = 0
    jobs_skipped: int = 0
    runs_stored: int = 0
    unfinished: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def error(self, kind: str, message: str, **where: Any) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append({"kind": kind, "message": message[:500], **where})

    def to_dict(self, *, status: str, ended_at: datetime, graph: dict[str, Any]) -> dict[str, Any]:
        errors_by_kind: dict[str, int] = {}
        for error in self.errors:
            errors_by_kind[error["kind"]] = errors_by_kind.get(error["kind"], 0) + 1
        return {
            "pollId": self.poll_id,
            "tenantId": self.tenant_id,
            "trigger": self.trigger,
            "pastDue": self.past_due,
            "status": status,
            "startedAt": isoformat_utc(self.started_at),
            "endedAt": isoformat_utc(ended_at),
            "durationSeconds": round((ended_at - self.started_at).total_seconds(), 3),
            "servicePrincipalsScanned": self.service_principals_scanned,
            "servicePrincipalsWithJobs": self.service_principals_with_jobs,
            "jobsRead": self.jobs_read,
            "jobsChanged": self.jobs_changed,
            "jobsSkipped": self.jobs_skipped,
            "runsStored": self.runs_stored,
            "unfinishedServicePrincipals": self.unfinished,
            "graph": graph,
            "errorCount": self.error_count,
            "errorsByKind": errors_by_kind,
            "errors": self.errors,
        }


@dataclass
class _JobWrite:
    job: Job
    new_runs: list[Execution]
    # Rows of runs whose timeBegan moved: the run is stored once, under its new key.
    moved_runs: list[Execution]


def plan_job_write(job: Job, previous: StoredJob | None) -> _JobWrite | None:
    """What a job needs written: None when nothing changed since the stored state."""
    if previous is not None and previous.content_hash == job_content_hash(job):
        return None
    known: dict[str, Execution] = {}
    if previous is not None:
        known = {run["activityIdentifier"]: run for run in distinct_runs(previous.document)}
    new_runs = [run for run in distinct_runs(job) if known.get(run["activityIdentifier"]) != run]
    moved = [
        old
        for run in new_runs
        if (old := known.get(run["activityIdentifier"])) is not None and old["timeBegan"] != run["timeBegan"]
    ]
    return _JobWrite(job, new_runs, moved)


async def _service_principals(settings: Settings, reader: Any, record: PollRecord) -> list[ServicePrincipal]:
    """The service principals to read: the pinned list, or all of them."""
    if settings.service_principal_ids:
        found = await reader.get_service_principals(settings.service_principal_ids)
        principals = []
        for sp_id in settings.service_principal_ids:
            result = found.get(sp_id)
            sp = normalize_service_principal(result.body) if result is not None and result.ok else None
            if sp is None:
                status = result.status if result is not None else 0
                code = result.error_code if result is not None else "NotRead"
                record.error("servicePrincipal", f"HTTP {status} {code}", servicePrincipalId=sp_id)
                if status in (401, 403, 404):
                    continue  # this one is gone or hidden; its jobs cannot be read either
                sp = {"id": sp_id, "appId": None, "displayName": None}
            principals.append(sp)
        return principals
    raw = await reader.list_service_principals()
    return [sp for item in raw if (sp := normalize_service_principal(item)) is not None]


async def poll_tenant(
    settings: Settings, *, trigger: str = "manual", past_due: bool = False, store: Store | None = None
) -> dict[str, Any]:
    """Poll every job once and store what changed; returns the poll record.

    Raises PollFailedError (after storing the record) when Graph cannot be read at all."""
    from shared import graph  # msgraph is heavy: imported only when a poll runs

    started = datetime.now(UTC)
    clock_start = time.monotonic()
    record = PollRecord(str(uuid.uuid4()), settings.tenant_id, started, trigger, past_due)
    counters = graph.start_counting()
    store = store or open_store(settings)
    reader = graph.graph_reader(settings)
    failure: str | None = None
    try:
        await store.ensure_tables()
        principals = await _service_principals(settings, reader, record)
        record.service_principals_scanned = len(principals)
        deadline = clock_start + settings.poll_deadline_seconds
        by_id = {sp["id"]: sp for sp in principals}
        results = await reader.get_jobs(list(by_id), should_start=lambda: time.monotonic() < deadline)
        record.unfinished = [sp_id for sp_id in by_id if sp_id not in results]
        previous = await store.load_jobs()
        jobs: list[Job] = []
        failed_reads = 0
        for sp_id, result in results.items():
            if not result.ok:
                failed_reads += 1
                record.error(
                    "graphRead",
                    f"HTTP {result.status} {result.error_code}: {result.error_message}",
                    servicePrincipalId=sp_id,
                    status=result.status,
                )
                continue
            raw_jobs = result.body or []
            if raw_jobs:
                record.service_principals_with_jobs += 1
            for raw in raw_jobs:
                try:
                    jobs.append(
                        normalize_job(
                            raw, tenant_id=settings.tenant_id, service_principal=by_id[sp_id], observed_at=started
                        )
                    )
                except PayloadError as error:
                    record.jobs_skipped += 1
                    job_id = raw.get("id") if isinstance(raw, dict) else None
                    record.error("malformedJob", str(error), servicePrincipalId=sp_id, jobId=job_id)
        record.jobs_read = len(jobs)
        if results and failed_reads == len(results) and not any(r.status in (403, 404) for r in results.values()):
            failure = f"Graph failed every job read ({failed_reads} service principals)"
        await _store_jobs(store, jobs, previous, record)
    except graph.GraphUnavailableError as error:
        failure = f"Graph unavailable: {error}"
        record.error("graphUnavailable", str(error))
    except Exception as error:  # storage down, a bug: the record still tells what happened
        failure = f"{type(error).__name__}: {error}"
        record.error("pollFailed", failure)
        log.exception("poll failed")
    status = "failed" if failure else ("partial" if record.error_count or record.unfinished else "succeeded")
    summary = record.to_dict(status=status, ended_at=datetime.now(UTC), graph=counters.as_dict())
    try:
        await store.save_poll(summary)
    except Exception as error:  # storage itself may be what failed
        failure = failure or f"could not store the poll record: {type(error).__name__}"
        summary["status"] = "failed"
    log.info("poll %s", json.dumps(_log_line(summary), separators=(",", ":")))
    if failure:
        raise PollFailedError(failure, summary)
    return summary


def _log_line(record: dict[str, Any]) -> dict[str, Any]:
    """The record for the log: errors by kind only (the full list is in the table)."""
    return {k: v for k, v in record.items() if k != "errors"}


async def _store_jobs(store: Store, jobs: list[Job], previous: dict[str, StoredJob], record: PollRecord) -> None:
    plans = [
        plan
        for job in jobs
        if (plan := plan_job_write(job, previous.get(job_key(job["servicePrincipalId"], job["jobId"]))))
    ]
    limit = asyncio.Semaphore(_STORE_CONCURRENCY)
    days: set[str] = set()

    async def store_runs(plan: _JobWrite) -> None:
        async with limit:
            if not plan.new_runs:
                return
            await store.save_runs(plan.job, plan.new_runs)
            if plan.moved_runs:
                await store.delete_runs(plan.job, plan.moved_runs)
            job_days = {run["timeBegan"][:10] for run in plan.new_runs + plan.moved_runs}
            await store.refresh_job_days(plan.job, job_days)
            days.update(job_days)
            record.runs_stored += len(plan.new_runs)

    await asyncio.gather(*(store_runs(plan) for plan in plans))
    if days:
        await store.refresh_tenant_days(days)
    # Current state last: only now are this job's runs known to be stored.
    await store.save_jobs([plan.job for plan in plans])
    record.jobs_changed = len(plans)


async def run_poll(*, trigger: str, past_due: bool = False) -> dict[str, Any]:
    """The entry point of the timer and the CLI: settings are read (and checked) first."""
    settings = load_settings()
    return await poll_tenant(settings, trigger=trigger, past_due=past_due)
