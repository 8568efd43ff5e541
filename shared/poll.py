"""One poll of the tenant: Graph -> normalize -> Table Storage, and a record of what happened.

The timer trigger and `python -m shared poll` both call `run_poll`. The order of writes makes
a poll safe to repeat, overlap or crash: runs first, then their daily rollups, then the job's
current state. A job's state is written only after its runs are stored, so a crash leaves
the job looking unchanged and the next poll writes the same runs again (the same keys).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared import telemetry
from shared.discovery import poll_scope, remember
from shared.domain.changes import JobChanges, JobWrite, StoredJob, plan_job_write
from shared.domain.model import Job, ServicePrincipal
from shared.domain.normalize import PayloadError, normalize_job
from shared.domain.observation import first_observed, not_observed, removed_jobs, unmark
from shared.domain.poll_record import PollRecord, PollSummary
from shared.domain.tenants import Tenant
from shared.domain.timestamps import isoformat_utc
from shared.domain.work import DISPATCHED
from shared.fanout import dispatch, fans_out
from shared.graph.errors import (
    BATCH_TRANSPORT_ERROR,
    MALFORMED_RESPONSE,
    TRANSPORT_ERROR,
    GraphTokenError,
    GraphUnavailableError,
)
from shared.graph.types import ItemResult, JobsReader
from shared.settings import Settings, load_settings
from shared.storage.keys import job_key
from shared.storage.store import Store, open_store

log = logging.getLogger("entra_sync_monitor.poll")

# Item error codes of answers that never came or could not be read get their own kind in the
# record (else graphRead).
_READ_ERROR_KINDS = {
    MALFORMED_RESPONSE: "malformedResponse",
    BATCH_TRANSPORT_ERROR: "batchTransportError",
    TRANSPORT_ERROR: "transportError",
}


class PollFailedError(RuntimeError):
    """The poll could not do its work (Graph or storage unreachable); its record says why."""

    def __init__(self, message: str, record: PollSummary) -> None:
        super().__init__(message)
        self.record = record


async def poll_tenant(
    settings: Settings,
    *,
    trigger: str = "manual",
    past_due: bool = False,
    discover: bool = False,
    store: Store | None = None,
    poll_id: str | None = None,
    started: datetime | None = None,
) -> PollSummary:
    """Poll the jobs once and store what changed; returns the poll record.

    A discovery (`discover=True`, and every poll until the first discovery completes) reads
    every service principal's jobs and remembers which have any; a regular poll reads only
    those. Raises PollFailedError (after storing the record) when the poll could not work.
    The poll is a trace: its span (shared/telemetry.py) carries the record's outcome."""
    with telemetry.poll_span(settings.tenant_id, trigger) as span:
        try:
            record = await _poll_tenant(
                settings,
                trigger=trigger,
                past_due=past_due,
                discover=discover,
                store=store,
                poll_id=poll_id,
                started=started,
            )
        except PollFailedError as error:
            telemetry.describe_poll(span, error.record)
            raise
        telemetry.describe_poll(span, record)
        return record


async def _poll_tenant(
    settings: Settings,
    *,
    trigger: str,
    past_due: bool,
    discover: bool,
    store: Store | None,
    poll_id: str | None,
    started: datetime | None,
) -> PollSummary:
    # msgraph is heavy: imported only when a poll runs
    from shared.graph.counting import start_counting
    from shared.graph.reader import graph_reader

    started = started or datetime.now(UTC)
    clock_start = time.monotonic()
    record = PollRecord(poll_id or str(uuid.uuid4()), settings.tenant_id, started, trigger, past_due)
    counters = start_counting(settings.tenant_id)
    store = store or open_store(settings)
    reader: JobsReader = graph_reader(settings)
    failure: str | None = None
    previous: dict[str, StoredJob] | None = None
    last: PollSummary | None = None
    try:
        if not settings.reaches(settings.tenant_id):
            raise GraphTokenError(
                f"GRAPH_AUTH={settings.graph_auth} gets tokens for AZURE_TENANT_ID only, not for tenant "
                f"{settings.tenant_id}: use GRAPH_AUTH=workload_identity with a multi-tenant app (docs/multitenant.md)"
            )
        await store.ensure_tables()
        last = await store.last_poll()
        deadline = clock_start + settings.poll_deadline_seconds
        scope = await poll_scope(settings, reader, store, record, discover, last, deadline)
        record.discovery = scope.discovery
        record.service_principals_scanned = len(scope.principals)
        if fans_out(settings, scope):
            # Too much for one run: the work queue's items do it (shared/work.py); their
            # parts complete this record, and the alert step runs after the last of them.
            # The provisioning log is one tenant-wide stream: the timer reads it.
            await _provisioning_logs(settings, reader, store, record, deadline)
            dispatched = await dispatch(settings, store, scope, record, counters.as_dict())
            if dispatched is not None:
                return dispatched
        by_id = {sp["id"]: sp for sp in scope.principals}
        previous, removals = await store.load_jobs_and_removals()
        results, failure = await read_and_store(
            settings,
            reader,
            store,
            record,
            by_id,
            scope.must_read,
            previous=previous,
            removals=removals,
            listed=set(scope.listed) if scope.discovery else None,
            last=last,
            deadline=deadline,
            unreadable={
                sp_id: "its service principal could not be read"
                for sp_id in settings.service_principal_ids
                if sp_id not in by_id
            },
        )
        # A discovery that could read no service principal's jobs (every read refused) has
        # learned nothing: its sweep stays where it was, so polls keep asking and the blind
        # state shows.
        if scope.discovery and (any(r.ok for r in results.values()) or not by_id):
            await remember(store, scope, results, record)
        await _provisioning_logs(settings, reader, store, record, deadline)
    except GraphUnavailableError as error:  # also no token, or the SP list refused
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
    telemetry.poll_ended(summary, time.monotonic() - clock_start)
    if failure:
        raise PollFailedError(failure, summary)
    return summary


async def read_and_store(
    settings: Settings,
    reader: JobsReader,
    store: Store,
    record: PollRecord,
    by_id: dict[str, ServicePrincipal],
    must_read: set[str],
    *,
    previous: dict[str, StoredJob],
    removals: dict[str, str],
    listed: set[str] | None,
    last: PollSummary | None,
    deadline: float,
    unreadable: Mapping[str, str] | None = None,
) -> tuple[dict[str, ItemResult], str | None]:
    """Read these service principals' jobs, store what changed, and mark what could not be
    read: a poll's work, or a work item's. `previous` holds at least their stored jobs;
    `listed` (a discovery's) every service principal that exists; `unreadable` principals
    not in `by_id` whose jobs are to be marked too, and why. Returns the answers and,
    when Graph failed every read, why."""
    results = await reader.get_jobs(list(by_id), deadline=deadline)
    # What a discovery's sweep did not reach is its cursor's business, not unfinished work.
    record.unfinished = [sp_id for sp_id in by_id if sp_id in must_read and sp_id not in results]
    jobs, read_ok, with_skipped = _normalize_results(settings, by_id, results, record.started_at, record, previous)
    failure = None
    if results and not read_ok and not any(r.status in (403, 404) for r in results.values()):
        failure = f"Graph failed every job read ({len(results)} service principals)"
    record.not_read = {**(unreadable or {}), **_not_read(by_id, must_read, results, with_skipped)}
    removed = removed_jobs(previous, jobs, read_ok - with_skipped, listed)
    unseen = not_observed(previous, jobs, removed, record.not_read, last, record.started_at, settings.health_rules)
    record.jobs_not_observed = len(unseen)
    await store_jobs(store, jobs + unseen, previous, removed, record, removals)
    return results, failure


def _normalize_results(
    settings: Settings,
    by_id: dict[str, ServicePrincipal],
    results: dict[str, ItemResult],
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
                    first_observed_at=first_observed(stored),
                    rules=settings.health_rules,
                )
                jobs.append(unmark(job, stored))
            except PayloadError as error:
                with_skipped.add(sp_id)
                record.jobs_skipped += 1
                job_id = raw.get("id") if isinstance(raw, dict) else None
                record.error("malformedJob", str(error), servicePrincipalId=sp_id, jobId=job_id)
    record.jobs_read = len(jobs)
    return jobs, read_ok, with_skipped


def _not_read(
    by_id: dict[str, ServicePrincipal],
    must_read: set[str],
    results: dict[str, ItemResult],
    with_skipped: set[str],
) -> dict[str, str]:
    """Service principals whose jobs this poll could not read (all or some), and why."""
    why: dict[str, str] = {}
    for sp_id in by_id:
        result = results.get(sp_id)
        if result is None:
            if sp_id in must_read:
                why[sp_id] = "not read before the poll's deadline"
        elif not result.ok:
            why[sp_id] = f"Graph answered HTTP {result.status} {result.error_code}".rstrip()
        elif sp_id in with_skipped:
            why[sp_id] = "Graph's answer for the job could not be read"
    return why


async def _mark_all_not_observed(
    store: Store,
    previous: dict[str, StoredJob] | None,
    last: PollSummary | None,
    record: PollRecord,
    settings: Settings,
    reason: str,
) -> None:
    """A poll that could read nothing marks every job (best effort: storage may be down too)."""
    try:
        previous = previous if previous is not None else await store.load_jobs()
        every = {stored.document["servicePrincipalId"]: reason for stored in previous.values()}
        record.not_read = every
        unseen = not_observed(previous, [], [], every, last, record.started_at, settings.health_rules)
        record.jobs_not_observed = len(unseen)
        await store_jobs(store, unseen, previous, [], record, {})
    except Exception as error:  # the poll's failure is already recorded; this must not hide it
        log.warning("could not mark jobs as not observed: %s", type(error).__name__)


async def _provisioning_logs(
    settings: Settings, reader: JobsReader, store: Store, record: PollRecord, deadline: float
) -> None:
    """The provisioning logs' errors, when turned on; whatever happens, the poll goes on."""
    if settings.provisioning_logs == "off" or record.provisioning_logs is not None:
        return
    from shared.provisioning_logs import collect_provisioning_logs

    try:
        section = await collect_provisioning_logs(settings, reader, store, now=datetime.now(UTC), deadline=deadline)
        record.provisioning_logs = dict(section)
    except Exception as error:  # a bug or storage: recorded, not the poll's failure
        log.exception("provisioning logs could not be collected")
        record.provisioning_logs = {
            "mode": settings.provisioning_logs,
            "status": "error",
            "error": type(error).__name__,
        }


def _log_line(record: PollSummary) -> dict[str, Any]:
    """The record for the log: errors by kind only (the full list is in the table)."""
    return {k: v for k, v in record.items() if k != "errors"}


async def store_jobs(
    store: Store,
    jobs: list[Job],
    previous: dict[str, StoredJob],
    removed: list[Job],
    record: PollRecord,
    removals: dict[str, str],
) -> None:
    """Write the jobs that changed since their stored state, and the removed ones (the order
    of writes that makes this safe is `Store.save_job_changes`')."""
    writes: list[JobWrite] = []
    for job in jobs:
        key = job_key(job["servicePrincipalId"], job["jobId"])
        if (write := plan_job_write(job, previous.get(key), removed_at=removals.get(key))) is not None:
            writes.append(write)
    changes = JobChanges(writes, removed, removed_at=isoformat_utc(record.started_at))

    def runs_stored(count: int) -> None:
        record.runs_stored += count
        telemetry.runs_stored(store.tenant_id, count)

    await store.save_job_changes(changes, on_runs_stored=runs_stored)
    record.jobs_changed = len(writes)
    record.jobs_removed = len(removed)
    record.events = len(changes.events)


async def run_poll(
    *, trigger: str, past_due: bool = False, discover: bool = False, tenants_inline: bool = False
) -> dict[str, Any]:
    """The entry point of the timers and the CLI: settings are read (and checked) first. A
    deployment that watches several tenants polls each on its own (shared/tenant_polls.py):
    through the work queue when there is one, unless `tenants_inline`."""
    from shared.tenant_polls import poll_every_tenant
    from shared.tenants import only_home, watched_tenants

    settings = load_settings()
    telemetry.configure_telemetry()
    tenants: list[Tenant] | None = None
    try:
        tenants = await watched_tenants(settings)
    except Exception as error:  # storage down: the home tenant's poll records that, as ever
        log.warning("the Tenants table could not be read (%s): polling AZURE_TENANT_ID only", type(error).__name__)
    if tenants is not None and not only_home(settings, tenants):
        return await poll_every_tenant(
            settings, tenants, trigger=trigger, past_due=past_due, discover=discover, inline=tenants_inline
        )
    return await poll_and_alert(settings, trigger=trigger, past_due=past_due, discover=discover)


async def poll_and_alert(
    settings: Settings,
    *,
    trigger: str,
    past_due: bool = False,
    discover: bool = False,
    poll_id: str | None = None,
    started: datetime | None = None,
) -> dict[str, Any]:
    """One tenant's poll, then its alert step, in one trace. Raises PollFailedError as
    `poll_tenant` does."""
    with telemetry.poll_span(settings.tenant_id, trigger) as span:
        record = await poll_tenant(
            settings, trigger=trigger, past_due=past_due, discover=discover, poll_id=poll_id, started=started
        )
        if record["status"] == DISPATCHED:
            return dict(record)  # its alert step runs when its last work item is done
        # Alerts after a poll that stored its jobs (a failed poll raised above). The step never
        # raises: its outcome is the record's `alerts` section (docs/alerts.md).
        from shared.alerts.after_poll import alerts_after_poll

        completed = await alerts_after_poll(settings, dict(record))
        telemetry.describe_alert_step(span, completed.get("alerts") or {})
        return completed
