"""A poll too large for one run, fanned out through the work queue, and completed by its items.

The timer's poll works out what to read (shared/discovery.py). When that is more than
`WORK_INLINE_MAX_PRINCIPALS` service principals and the storage account has a queue
service, `dispatch` cuts it into work items (shared/domain/work.py), stores the poll's
record as `dispatched` and enqueues the items; the queue trigger does each one
(shared/work.py) and stores its part of the record. The part that makes the set whole
completes the record (`complete_if_whole`), under the record's ETag so that two items
finishing at once complete it once, and then runs the alert step, as a poll in one run does.

A poll whose items are still out is not dispatched again by the next timer; one whose items
have not all come back within `IN_FLIGHT_SECONDS` is completed without them (counted lost).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceModifiedError

from shared.discovery import Scope
from shared.domain.changes import JobChanges
from shared.domain.poll_record import GraphCounts, PollRecord, PollSummary
from shared.domain.sweep import advance
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.domain.work import DISPATCHED, WorkItemPrincipal, WorkProgress, add_graph_counts, complete_record, cut_items
from shared.settings import Settings
from shared.storage.principals import KnownPrincipal
from shared.storage.store import Store
from shared.storage.work_items import FAILED_TRY
from shared.storage.work_queue import work_queue

log = logging.getLogger("entra_sync_monitor.fanout")

# Items retried up to maxDequeueCount times with the function timeout each come back well
# within this; past it, what is missing is taken as lost.
IN_FLIGHT_SECONDS = 3 * 3600


def fans_out(settings: Settings, scope: Scope) -> bool:
    return len(scope.principals) > settings.work_inline_max_principals and work_queue(settings) is not None


def _order(scope: Scope) -> list[WorkItemPrincipal]:
    """The whole poll, in reading order; a discovery's sweep wraps round to the ids before its
    cursor, since every principal is dispatched at once."""
    principals: list[WorkItemPrincipal] = []
    for sp in scope.principals:
        known = scope.known.get(sp["id"])
        principals.append({**sp, "jobCount": known["jobCount"] if known else None})
    if scope.discovery:
        taken = {sp["id"] for sp in scope.principals}
        listed = {sp_id: scope.known.get(sp_id) for sp_id in scope.listed if sp_id not in taken}
        principals.extend(
            {"id": sp_id, "appId": row["appId"], "displayName": row["displayName"], "jobCount": row["jobCount"]}
            for sp_id, row in listed.items()
            if row is not None
        )
    return principals


async def dispatch(
    settings: Settings, store: Store, scope: Scope, record: PollRecord, graph: GraphCounts
) -> PollSummary | None:
    """Enqueue the poll's items and store its record `dispatched` (returned); or the record of
    the same kind of poll whose items are still out. None: no queue could be reached, so
    the caller polls in this run."""
    queue = work_queue(settings)
    assert queue is not None
    try:
        await queue.ensure()
    except Exception as error:  # the queue service is down or absent: poll in this run
        # Not an error of the poll, which does all its work: a warning in the log.
        log.warning("work queue unavailable (%s); polling in this run", type(error).__name__)
        return None
    now = datetime.now(UTC)
    for poll in await store.dispatched_polls():
        if bool(poll.get("discovery")) != scope.discovery:
            continue
        started = parse_timestamp(poll.get("startedAt"))
        if started is not None and (now - started).total_seconds() < IN_FLIGHT_SECONDS:
            log.info("poll %s still has work items out; not dispatched again", poll["pollId"])
            return poll
        await complete(settings, store, poll["startedAt"], poll["pollId"], lost_ok=True)
    if scope.discovery:
        await _remember_listing(store, scope, record)
    items = cut_items(
        _order(scope),
        scope.must_read,
        settings.work_item_principals,
        base={
            "tenantId": settings.tenant_id,
            "pollId": record.poll_id,
            "pollStartedAt": isoformat_utc(record.started_at),
            "discovery": scope.discovery,
        },
    )
    summary: dict[str, Any] = dict(record.to_dict(status=DISPATCHED, ended_at=now, graph=graph))
    summary["servicePrincipalsScanned"] = sum(len(item["principals"]) for item in items)
    work: WorkProgress = {"queue": queue.name, "items": len(items), "itemsDone": 0, "itemsPoisoned": 0, "itemsLost": 0}
    summary["work"] = work
    # The record first: an item that finishes finds the record it completes.
    await store.save_poll(summary)
    try:
        await queue.send(items)
    except Exception as error:
        summary.update(status="failed", errorCount=summary["errorCount"] + 1)
        summary["errors"] = [*summary["errors"], {"kind": "workQueueSend", "message": type(error).__name__}]
        await store.save_poll(summary)
        raise
    log.info("poll %s dispatched as %d work items", record.poll_id, len(items))
    return summary  # type: ignore[return-value]


async def _remember_listing(store: Store, scope: Scope, record: PollRecord) -> None:
    """A discovery's listing, remembered before its items read anything: renamed principals,
    and principals gone forgotten, with their jobs removed. New principals are remembered by
    the item that reads them, with their job count (one write, not two); one whose item never
    comes back is new again to the next discovery, which reads it first."""
    changed: list[KnownPrincipal] = []
    listed = set(scope.listed)
    names = {sp["id"]: sp for sp in scope.principals}
    for sp_id in scope.listed:
        before = scope.known.get(sp_id)
        sp = names.get(sp_id)
        if (
            before is not None
            and sp is not None
            and (sp["appId"], sp["displayName"]) != (before["appId"], before["displayName"])
        ):
            changed.append({**sp, "jobCount": before["jobCount"]})
    gone = [sp_id for sp_id in scope.known if sp_id not in listed]
    await store.save_principals(changed, remove=gone)
    if gone:
        previous = await store.load_jobs_of(gone)
        removed = [stored.document for stored in previous[0].values()]
        await store.save_job_changes(JobChanges([], removed, removed_at=isoformat_utc(record.started_at)))
        record.jobs_removed += len(removed)


async def complete_if_whole(settings: Settings, store: Store, poll: tuple[str, str], items: int) -> None:
    """Complete the poll (startedAt, pollId) if every one of its `items` has its part."""
    if await store.item_count(poll) >= items:
        await complete(settings, store, *poll)


async def complete(
    settings: Settings, store: Store, started_at: str, poll_id: str, *, lost_ok: bool = False
) -> PollSummary | None:
    """The dispatched poll's record made from its items' parts, stored, and its alert step
    run; None when it is complete already (or another item completes it just now)."""
    found = await store.poll_with_etag(started_at, poll_id)
    if found is None or found[0].get("status") != DISPATCHED:
        return None
    dispatched, etag = found
    every = await store.item_parts((started_at, poll_id))
    stored = [part for part in every if part["outcome"] != FAILED_TRY]
    work: WorkProgress = dict(dispatched.get("work") or {})  # type: ignore[assignment]
    lost = max(0, int(work.get("items", 0)) - len(stored))
    if lost and not lost_ok:
        return None
    now = datetime.now(UTC)
    record: dict[str, Any] = dict(
        complete_record(dispatched, [part["part"] for part in stored], ended_at=isoformat_utc(now))
    )
    # Failed tries read Graph too: their requests count (`graph.failedTries` of them).
    tries = [part["part"].get("graph") for part in every if part["outcome"] == FAILED_TRY]
    if tries:
        record["graph"] = {**add_graph_counts([record["graph"], *tries]), "failedTries": len(tries)}
    record["durationSeconds"] = round((now - (parse_timestamp(started_at) or now)).total_seconds(), 3)
    poisoned = sum(1 for part in stored if part["outcome"] == "poisoned")
    record["work"] = {**work, "itemsDone": len(stored) - poisoned, "itemsPoisoned": poisoned, "itemsLost": lost}
    if lost:
        record["errorCount"] += 1
        record["errorsByKind"]["workItemLost"] = lost
        record["errors"].append({"kind": "workItemLost", "message": f"{lost} work items never came back"})
        record["status"] = "partial"
    if record.get("discovery"):
        unanswered = {sp_id for part in stored for sp_id in part["unanswered"]}
        record["sweep"] = await _advance_sweep(store, unanswered, lost=bool(lost), now=isoformat_utc(now))
    try:
        await store.save_poll(record, etag=etag)
    except ResourceModifiedError:
        return None  # another item completed it
    log.info("poll %s completed from %d work items: %s", poll_id, len(stored), record["status"])
    from shared.alerts.after_poll import alerts_after_poll

    completed: PollSummary = await alerts_after_poll(settings, record)  # type: ignore[assignment]
    return completed


async def _advance_sweep(store: Store, unanswered: set[str], *, lost: bool, now: str) -> dict[str, Any]:
    """The sweep after a dispatched discovery: every listed principal was sent out, so all
    but those without an answer are covered (with items lost, which is unknown: none)."""
    listed, sweep = await store.load_principal_ids()
    covered: set[str] = set() if lost else set(listed) - unanswered
    moved = advance(sweep, listed, covered, now) if covered else sweep
    if moved != sweep:
        await store.save_principals([], sweep=moved)
    return {
        "principalsListed": len(listed),
        "principalsRead": len(covered),
        # Every principal was sent out: what is left is what got no answer (all, items lost).
        "principalsLeft": 0 if moved.completed_at != sweep.completed_at else len(listed) - len(covered),
        "sweepStartedAt": moved.started_at,
        "lastFullSweepAt": moved.completed_at,
    }
