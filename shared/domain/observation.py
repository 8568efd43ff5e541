"""Which stored jobs a poll did not observe, and what that means for them (pure).

A job the poll could not read is marked once with `notObservedSince`/`notObservedReason`
(not on every poll that cannot read it); a later read clears the mark. A job whose service
principal answered without it is gone. Jobs are matched by their ids; `previous` maps any
key to the stored state (storage keys it by job key)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.changes import StoredJob
from shared.domain.health import HealthRules, classify_health
from shared.domain.model import Job
from shared.domain.poll_record import PollSummary
from shared.domain.timestamps import isoformat_utc, parse_timestamp

_MARK_FIELDS = ("notObservedSince", "notObservedReason")


def _ids(job: Job) -> tuple[str, str]:
    return job["servicePrincipalId"], job["jobId"]


def first_observed(stored: StoredJob | None) -> str | None:
    """When the monitor first saw the job. Records of older versions lack it: the state they
    hold is the earliest seen."""
    return None if stored is None else stored.document.get("firstObservedAt") or stored.document["observedAt"]


def last_seen(job: Job, last: PollSummary | None) -> str:
    """When a job that this poll could not read was last read: the previous poll, if that poll
    read it; otherwise when its stored state was observed (the latest time known for sure)."""
    if last is None or last.get("status") not in ("succeeded", "partial"):
        return job["observedAt"]
    not_read, started = last.get("servicePrincipalsNotRead"), parse_timestamp(last.get("startedAt"))
    observed = parse_timestamp(job["observedAt"])
    if isinstance(not_read, list) and job["servicePrincipalId"] not in not_read and started and observed:
        return isoformat_utc(max(started, observed))
    return job["observedAt"]


def _unmarked(job: Job) -> dict[str, Any]:
    """The job without its mark and what moves with the clock: what a person sees change."""
    return {k: v for k, v in job.items() if k not in (*_MARK_FIELDS, "observedAt", "healthReasons")}


def mark(stored: Job, since: str, reason: str, observed_at: datetime, rules: HealthRules) -> Job | None:
    """The stored job marked "not observed", or None when it is marked already (the first
    reason stays: a mark is written once, not on every poll that cannot read the job)."""
    if stored.get("notObservedSince"):
        return None
    marked: Job = {**stored, "notObservedSince": since, "notObservedReason": reason}
    health, reasons = classify_health(marked, now=observed_at, rules=rules)
    # Its state moves on only when its health does (past the grace period): a missed read is
    # not a change a person would see, and the timeline keys events by observedAt.
    moved = health != stored["health"]
    return {
        **marked,
        "health": health,
        "healthReasons": reasons,
        "observedAt": isoformat_utc(observed_at) if moved else stored["observedAt"],
    }


def unmark(job: Job, stored: StoredJob | None) -> Job:
    """A job read again after a mark keeps its observedAt when nothing else changed."""
    if stored is not None and stored.document.get("notObservedSince") and _unmarked(job) == _unmarked(stored.document):
        return {**job, "observedAt": stored.document["observedAt"]}
    return job


def not_observed(
    previous: Mapping[str, StoredJob],
    jobs: list[Job],
    removed: list[Job],
    not_read: Mapping[str, str],
    last: PollSummary | None,
    observed_at: datetime,
    rules: HealthRules,
) -> list[Job]:
    """Stored jobs this poll could not read, marked once (not on every poll) with when they were
    last read and why; a later read clears the mark. Health then says "unobserved", never
    stale: the monitor is blind, the job may be fine."""
    seen = {_ids(job) for job in jobs + removed}
    marked = []
    for stored in previous.values():
        reason = not_read.get(stored.document["servicePrincipalId"])
        if reason is None or _ids(stored.document) in seen:
            continue
        job = mark(stored.document, last_seen(stored.document, last), reason, observed_at, rules)
        if job is not None:
            marked.append(job)
    return marked


def removed_jobs(
    previous: Mapping[str, StoredJob], jobs: list[Job], read_ok: set[str], enumerated: set[str] | None
) -> list[Job]:
    """Stored jobs that are gone: their service principal answered without them, or (on a
    discovery) the service principal itself no longer exists. Jobs of a service principal
    whose read failed, or that answered with a payload it could not read, are kept."""
    seen = {_ids(job) for job in jobs}
    gone = []
    for stored in previous.values():
        sp_id = stored.document["servicePrincipalId"]
        if _ids(stored.document) in seen:
            continue
        if sp_id in read_ok or (enumerated is not None and sp_id not in enumerated):
            gone.append(stored.document)
    return gone
