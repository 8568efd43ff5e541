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

from shared.domain.health import classify_health
from shared.domain.normalize import (
    Execution,
    Job,
    PayloadError,
    ServicePrincipal,
    distinct_runs,
    normalize_job,
    normalize_service_principal,
    run_began,
    run_id,
)
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.domain.transitions import job_removed, job_transitions
from shared.settings import Settings, load_settings
from shared.storage.store import Store, StoredJob, job_content_hash, job_key, open_store

log = logging.getLogger("entra_sync_monitor.poll")

_STORE_CONCURRENCY = 8
_MAX_ERRORS_KEPT = 200
_NOT_READ_KEPT = 2_000  # beyond this a record stays small; marks then date from the job's own state
# Item error codes from shared.graph.reader that get their own kind in the record (else graphRead).
_READ_ERROR_KINDS = {
    "MalformedResponse": "malformedResponse",
    "BatchTransportError": "batchTransportError",
    "TransportError": "transportError",
}


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
    jobs_removed: int = 0
    runs_stored: int = 0
    events: int = 0
    discovery: bool = False
    unfinished: list[str] = field(default_factory=list)
    # Service principals whose jobs this poll could not read, and why (their jobs are marked
    # "not observed"; the next poll dates the marks from this list).
    not_read: dict[str, str] = field(default_factory=dict)
    jobs_not_observed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    job_reads: int = 0  # service principals whose jobs read got an answer (any status)
    forbidden: dict[str, int] = field(default_factory=dict)  # error kind -> 403 answers, all counted

    def error(self, kind: str, message: str, **where: Any) -> None:
        self.error_count += 1
        if where.get("status") == 403:
            self.forbidden[kind] = self.forbidden.get(kind, 0) + 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append({"kind": kind, "message": message[:500], **where})

    def to_dict(self, *, status: str, ended_at: datetime, graph: dict[str, Any]) -> dict[str, Any]:
        errors_by_kind: dict[str, int] = {}
        errors_by_sp: dict[str, int] = {}
        for error in self.errors:
            errors_by_kind[error["kind"]] = errors_by_kind.get(error["kind"], 0) + 1
            if sp_id := error.get("servicePrincipalId"):
                errors_by_sp[sp_id] = errors_by_sp.get(sp_id, 0) + 1
        return {
            "pollId": self.poll_id,
            "tenantId": self.tenant_id,
            "trigger": self.trigger,
            "discovery": self.discovery,
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
            "jobsRemoved": self.jobs_removed,
            "runsStored": self.runs_stored,
            "events": self.events,
            "unfinishedServicePrincipals": self.unfinished,
            "servicePrincipalsNotRead": sorted(self.not_read) if len(self.not_read) <= _NOT_READ_KEPT else None,
            "servicePrincipalsNotReadCount": len(self.not_read),
            "jobsNotObserved": self.jobs_not_observed,
            # What the health check needs to tell a blind monitor (every read refused).
            "jobReads": self.job_reads,
            "forbiddenReads": {
                "jobs": self.forbidden.get("graphRead", 0),
                "servicePrincipals": self.forbidden.get("servicePrincipal", 0)
                + self.forbidden.get("servicePrincipalsForbidden", 0),
            },
            "graph": graph,
            "errorCount": self.error_count,
            "errorsByKind": errors_by_kind,
            "errorsByServicePrincipal": errors_by_sp,
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
        known = {run_id(run): run for run in distinct_runs(previous.document)}
    new_runs = [run for run in distinct_runs(job) if known.get(run_id(run)) != run]
    moved = [
        old for run in new_runs if (old := known.get(run_id(run))) is not None and run_began(old) != run_began(run)
    ]
    return _JobWrite(job, new_runs, moved)


@dataclass
class _Scope:
    """Which service principals a poll reads, and whether it is a discovery."""

    principals: list[ServicePrincipal]
    discovery: bool
    known: dict[str, dict[str, Any]]


async def _pinned_principals(
    settings: Settings, reader: Any, record: PollRecord, deadline: float
) -> list[ServicePrincipal]:
    found = await reader.get_service_principals(settings.service_principal_ids, deadline=deadline)
    principals: list[ServicePrincipal] = []
    for sp_id in settings.service_principal_ids:
        result = found.get(sp_id)
        sp = normalize_service_principal(result.body) if result is not None and result.ok else None
        if sp is None:
            status = result.status if result is not None else 0
            code = result.error_code if result is not None else "NotRead"
            record.error("servicePrincipal", f"HTTP {status} {code}", servicePrincipalId=sp_id, status=status)
            if status in (401, 403, 404):
                continue  # gone or hidden: its jobs cannot be read either
            sp = {"id": sp_id, "appId": None, "displayName": None}
        principals.append(sp)
    return principals


async def _scope(
    settings: Settings,
    reader: Any,
    store: Store,
    record: PollRecord,
    discover: bool,
    last: dict[str, Any] | None,
    deadline: float,
) -> _Scope:
    """The pinned list; or, on discovery (or before the first one), every service principal;
    otherwise only those discovery found with jobs, last poll's unfinished ones first."""
    if settings.service_principal_ids:
        return _Scope(await _pinned_principals(settings, reader, record, deadline), False, {})
    known, discovered_at = await store.load_principals()
    if discover or discovered_at is None:
        raw = await reader.list_service_principals()
        return _Scope([sp for item in raw if (sp := normalize_service_principal(item)) is not None], True, known)
    with_jobs = {sp_id: row for sp_id, row in known.items() if int(row.get("jobCount") or 0) > 0}
    first = [sp_id for sp_id in (last or {}).get("unfinishedServicePrincipals", []) if sp_id in with_jobs]
    order = list(dict.fromkeys(first + sorted(with_jobs)))
    principals: list[ServicePrincipal] = [
        {"id": sp_id, "appId": with_jobs[sp_id].get("appId"), "displayName": with_jobs[sp_id].get("displayName")}
        for sp_id in order
    ]
    return _Scope(principals, False, known)


async def poll_tenant(
    settings: Settings,
    *,
    trigger: str = "manual",
    past_due: bool = False,
    discover: bool = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Poll the jobs once and store what changed; returns the poll record.

    A discovery (`discover=True`, and every poll until the first discovery completes) reads
    every service principal's jobs and remembers which have any; a regular poll reads only
    those. Raises PollFailedError (after storing the record) when the poll could not work."""
    from shared.graph import reader as graph  # msgraph is heavy: imported only when a poll runs

    started = datetime.now(UTC)
    clock_start = time.monotonic()
    record = PollRecord(str(uuid.uuid4()), settings.tenant_id, started, trigger, past_due)
    counters = graph.start_counting()
    store = store or open_store(settings)
    reader = graph.graph_reader(settings)
    failure: str | None = None
    previous: dict[str, StoredJob] | None = None
    last: dict[str, Any] | None = None
    try:
        await store.ensure_tables()
        last = await store.last_poll()
        deadline = clock_start + settings.poll_deadline_seconds
        scope = await _scope(settings, reader, store, record, discover, last, deadline)
        record.discovery = scope.discovery
        record.service_principals_scanned = len(scope.principals)
        by_id = {sp["id"]: sp for sp in scope.principals}
        results = await reader.get_jobs(list(by_id), deadline=deadline)
        record.unfinished = [sp_id for sp_id in by_id if sp_id not in results]
        previous, removals = await store.load_jobs_and_removals()
        jobs, read_ok, with_skipped = _normalize_results(settings, by_id, results, started, record, previous)
        if results and not read_ok and not any(r.status in (403, 404) for r in results.values()):
            failure = f"Graph failed every job read ({len(results)} service principals)"
        record.not_read = _not_read(settings, by_id, results, with_skipped)
        removed = _removed_jobs(previous, jobs, read_ok - with_skipped, set(by_id) if scope.discovery else None)
        unseen = _not_observed(previous, jobs, removed, record.not_read, last, started, settings)
        record.jobs_not_observed = len(unseen)
        await _store_jobs(store, jobs + unseen, previous, removed, record, removals)
        # A discovery that could read no service principal's jobs (every read refused) has
        # learned nothing: it stays unfinished, so polls keep asking and the blind state shows.
        if scope.discovery and not record.unfinished and (read_ok or not by_id):
            await _remember_principals(store, scope, results, started)
    except graph.GraphUnavailableError as error:  # also no token, or the SP list refused
        failure = error.failure
        record.error(error.kind, str(error), **error.where)
        await _mark_all_not_observed(store, previous, last, record, settings, failure[:300])
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


def _normalize_results(
    settings: Settings,
    by_id: dict[str, ServicePrincipal],
    results: dict[str, Any],
    observed_at: datetime,
    record: PollRecord,
    previous: dict[str, StoredJob],
) -> tuple[list[Job], set[str], set[str]]:
    """The jobs read, the service principals whose jobs were read, and those of them that
    answered with a job payload that could not be read."""
    jobs: list[Job] = []
    read_ok: set[str] = set()
    with_skipped: set[str] = set()
    record.job_reads = len(results)
    for sp_id, result in results.items():
        if not result.ok:
            kind = _READ_ERROR_KINDS.get(result.error_code or "") or (
                "servicePrincipalNotFound" if result.status == 404 else "graphRead"
            )
            message = f"HTTP {result.status} {result.error_code}: {result.error_message}"
            record.error(kind, message, servicePrincipalId=sp_id, status=result.status)
            continue
        read_ok.add(sp_id)
        raw_jobs = result.body or []
        if raw_jobs:
            record.service_principals_with_jobs += 1
        for raw in raw_jobs:
            try:
                job_id = raw.get("id") if isinstance(raw, dict) else None
                stored = previous.get(job_key(sp_id, job_id)) if isinstance(job_id, str) else None
                job = normalize_job(
                    raw,
                    tenant_id=settings.tenant_id,
                    service_principal=by_id[sp_id],
                    observed_at=observed_at,
                    first_observed_at=_first_observed(stored),
                    rules=settings.health_rules,
                )
                jobs.append(_unmark(job, stored))
            except PayloadError as error:
                with_skipped.add(sp_id)
                record.jobs_skipped += 1
                job_id = raw.get("id") if isinstance(raw, dict) else None
                record.error("malformedJob", str(error), servicePrincipalId=sp_id, jobId=job_id)
    record.jobs_read = len(jobs)
    return jobs, read_ok, with_skipped


def _first_observed(stored: StoredJob | None) -> str | None:
    # Records of older versions lack it: the state they hold is the earliest seen.
    return None if stored is None else stored.document.get("firstObservedAt") or stored.document["observedAt"]


def _not_read(
    settings: Settings, by_id: dict[str, ServicePrincipal], results: dict[str, Any], with_skipped: set[str]
) -> dict[str, str]:
    """Service principals whose jobs this poll could not read (all or some), and why."""
    why: dict[str, str] = {}
    for sp_id in by_id:
        result = results.get(sp_id)
        if result is None:
            why[sp_id] = "not read before the poll's deadline"
        elif not result.ok:
            why[sp_id] = f"Graph answered HTTP {result.status} {result.error_code}".rstrip()
        elif sp_id in with_skipped:
            why[sp_id] = "Graph's answer for the job could not be read"
    for sp_id in settings.service_principal_ids:
        if sp_id not in by_id:
            why[sp_id] = "its service principal could not be read"
    return why


def _last_seen(job: Job, last: dict[str, Any] | None) -> str:
    """When a job that this poll could not read was last read: the previous poll, if that poll
    read it; otherwise when its stored state was observed (the latest time known for sure)."""
    if last is None or last.get("status") not in ("succeeded", "partial"):
        return job["observedAt"]
    not_read, started = last.get("servicePrincipalsNotRead"), parse_timestamp(last.get("startedAt"))
    observed = parse_timestamp(job["observedAt"])
    if isinstance(not_read, list) and job["servicePrincipalId"] not in not_read and started and observed:
        return isoformat_utc(max(started, observed))
    return job["observedAt"]


_MARK_FIELDS = ("notObservedSince", "notObservedReason")


def _unmarked(job: Job) -> dict[str, Any]:
    """The job without its mark and what moves with the clock: what a person sees change."""
    return {k: v for k, v in job.items() if k not in (*_MARK_FIELDS, "observedAt", "healthReasons")}


def _mark(stored: Job, since: str, reason: str, observed_at: datetime, settings: Settings) -> Job | None:
    """The stored job marked "not observed", or None when it is marked already (the first
    reason stays: a mark is written once, not on every poll that cannot read the job)."""
    if stored.get("notObservedSince"):
        return None
    marked: Job = {**stored, "notObservedSince": since, "notObservedReason": reason}
    health, reasons = classify_health(marked, now=observed_at, rules=settings.health_rules)
    # Its state moves on only when its health does (past the grace period): a missed read is
    # not a change a person would see, and the timeline keys events by observedAt.
    moved = health != stored["health"]
    return {
        **marked,
        "health": health,
        "healthReasons": reasons,
        "observedAt": isoformat_utc(observed_at) if moved else stored["observedAt"],
    }


def _unmark(job: Job, stored: StoredJob | None) -> Job:
    """A job read again after a mark keeps its observedAt when nothing else changed."""
    if stored is not None and stored.document.get("notObservedSince") and _unmarked(job) == _unmarked(stored.document):
        return {**job, "observedAt": stored.document["observedAt"]}
    return job


def _not_observed(
    previous: dict[str, StoredJob],
    jobs: list[Job],
    removed: list[Job],
    not_read: dict[str, str],
    last: dict[str, Any] | None,
    observed_at: datetime,
    settings: Settings,
) -> list[Job]:
    """Stored jobs this poll could not read, marked once (not on every poll) with when they were
    last read and why; a later read clears the mark. Health then says "unobserved", never
    stale: the monitor is blind, the job may be fine."""
    seen = {job_key(job["servicePrincipalId"], job["jobId"]) for job in jobs + removed}
    marked = []
    for key, stored in previous.items():
        reason = not_read.get(stored.document["servicePrincipalId"])
        if reason is None or key in seen:
            continue
        job = _mark(stored.document, _last_seen(stored.document, last), reason, observed_at, settings)
        if job is not None:
            marked.append(job)
    return marked


async def _mark_all_not_observed(
    store: Store,
    previous: dict[str, StoredJob] | None,
    last: dict[str, Any] | None,
    record: PollRecord,
    settings: Settings,
    reason: str,
) -> None:
    """A poll that could read nothing marks every job (best effort: storage may be down too)."""
    try:
        previous = previous if previous is not None else await store.load_jobs()
        every = {stored.document["servicePrincipalId"]: reason for stored in previous.values()}
        record.not_read = every
        unseen = _not_observed(previous, [], [], every, last, record.started_at, settings)
        record.jobs_not_observed = len(unseen)
        await _store_jobs(store, unseen, previous, [], record, {})
    except Exception as error:  # the poll's failure is already recorded; this must not hide it
        log.warning("could not mark jobs as not observed: %s", type(error).__name__)


def _removed_jobs(
    previous: dict[str, StoredJob], jobs: list[Job], read_ok: set[str], enumerated: set[str] | None
) -> list[Job]:
    """Stored jobs that are gone: their service principal answered without them, or (on a
    discovery) the service principal itself no longer exists. Jobs of a service principal
    whose read failed, or that answered with a payload it could not read, are kept."""
    seen = {job_key(job["servicePrincipalId"], job["jobId"]) for job in jobs}
    gone = []
    for key, stored in previous.items():
        sp_id = stored.document["servicePrincipalId"]
        if key in seen:
            continue
        if sp_id in read_ok or (enumerated is not None and sp_id not in enumerated):
            gone.append(stored.document)
    return gone


async def _remember_principals(store: Store, scope: _Scope, results: dict[str, Any], completed_at: datetime) -> None:
    """Discovery's memory: job counts per service principal, written only where changed."""
    changed = []
    for sp in scope.principals:
        result = results.get(sp["id"])
        if result is None or not result.ok:
            continue  # keep what was known; the next discovery tries again
        row = {**sp, "jobCount": len(result.body or [])}
        old = scope.known.get(sp["id"])
        if old is None or any(old.get(k) != row[k] for k in ("appId", "displayName", "jobCount")):
            changed.append(row)
    gone = [sp_id for sp_id in scope.known if sp_id not in {sp["id"] for sp in scope.principals}]
    await store.save_principals(changed, remove=gone, completed_at=isoformat_utc(completed_at))


def _log_line(record: dict[str, Any]) -> dict[str, Any]:
    """The record for the log: errors by kind only (the full list is in the table)."""
    return {k: v for k, v in record.items() if k != "errors"}


async def _store_jobs(
    store: Store,
    jobs: list[Job],
    previous: dict[str, StoredJob],
    removed: list[Job],
    record: PollRecord,
    removals: dict[str, str],
) -> None:
    plans = [
        plan
        for job in jobs
        if (plan := plan_job_write(job, previous.get(job_key(job["servicePrincipalId"], job["jobId"]))))
    ]
    limit = asyncio.Semaphore(_STORE_CONCURRENCY)
    days: set[str] = set()
    by_time: list[dict[str, Any]] = []
    job_days: list[dict[str, Any]] = []

    async def store_runs(plan: _JobWrite) -> None:
        async with limit:
            if not plan.new_runs:
                return
            stored = previous.get(job_key(plan.job["servicePrincipalId"], plan.job["jobId"]))
            known = distinct_runs(stored.document) if stored is not None else []
            by_time.extend(await store.save_runs(plan.job, plan.new_runs, known=known))
            if plan.moved_runs:
                await store.delete_runs(plan.job, plan.moved_runs)
            touched = {run_began(run)[:10] for run in plan.new_runs + plan.moved_runs}
            job_days.extend(await store.count_job_days(plan.job, touched))
            days.update(touched)
            record.runs_stored += len(plan.new_runs)

    await asyncio.gather(*(store_runs(plan) for plan in plans))
    # Rows that share a partition across jobs go in batches of 100, not one call per job.
    await store.save_runs_by_time(by_time)
    await store.save_job_days(job_days)
    if days:
        await store.refresh_tenant_days(days)
    events = [
        event
        for plan in plans
        for event in job_transitions(
            _previous_document(previous, plan.job),
            plan.job,
            removed_at=removals.get(job_key(plan.job["servicePrincipalId"], plan.job["jobId"])),
        )
    ]
    observed_at = isoformat_utc(record.started_at)
    events += [job_removed(job, observed_at) for job in removed]
    await store.save_events(events)
    # Current state last: only now are this job's runs and events known to be stored.
    await store.save_jobs([plan.job for plan in plans])
    for job in removed:
        await store.remove_job(job["servicePrincipalId"], job["jobId"], observed_at)
    record.jobs_changed = len(plans)
    record.jobs_removed = len(removed)
    record.events = len(events)


def _previous_document(previous: dict[str, StoredJob], job: Job) -> Job | None:
    stored = previous.get(job_key(job["servicePrincipalId"], job["jobId"]))
    return stored.document if stored is not None else None


async def run_poll(*, trigger: str, past_due: bool = False, discover: bool = False) -> dict[str, Any]:
    """The entry point of the timers and the CLI: settings are read (and checked) first."""
    settings = load_settings()
    record = await poll_tenant(settings, trigger=trigger, past_due=past_due, discover=discover)
    # Alerts after a poll that stored its jobs (a failed poll raised above). The step never
    # raises: its outcome is the record's `alerts` section (docs/alerts.md).
    from shared.alerts.after_poll import alerts_after_poll

    return await alerts_after_poll(settings, record)
