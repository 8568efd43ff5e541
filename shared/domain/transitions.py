"""Job state transitions, derived purely from the stored and the newly observed job.

Each event is keyed by the time the previous state was first observed, so two polls that
overlap (and so see the same previous state) write the same event, not two.
"""

from __future__ import annotations

from typing import Any

from shared.domain.health import quarantine_since
from shared.domain.model import EVENT_KINDS, Event, Job


def _event(job: Job, at: str, kind: str, since: str, previous: Any, current: Any, detail: str | None = None) -> Event:
    return {
        "servicePrincipalId": job["servicePrincipalId"],
        "jobId": job["jobId"],
        "at": at,
        "kind": kind,
        "previous": None if previous is None else str(previous),
        "current": None if current is None else str(current),
        "detail": detail,
        "since": since,
    }


def job_transitions(previous: Job | None, current: Job, *, removed_at: str | None = None) -> list[Event]:
    """What changed between two observations of one job, in the order a person reads it.
    A job that appears again after `removed_at` (its last jobRemoved event) leaves that
    absence: the appearance is keyed by it, so each appearance is kept and polls that
    overlap still write it once."""
    at = current["observedAt"]
    if previous is None:
        since = removed_at or ""
        return [_event(current, at, "jobAppeared", since, None, current["statusCode"], current["templateId"])]
    since = previous["observedAt"]
    events: list[Event] = []
    if previous["statusCode"] != current["statusCode"]:
        events.append(_event(current, at, "statusCodeChanged", since, previous["statusCode"], current["statusCode"]))
    before, after = previous["quarantine"], current["quarantine"]
    if before is None and after is not None:
        events.append(_event(current, at, "quarantineEntered", since, None, after["reason"], quarantine_since(after)))
    elif before is not None and after is None:
        events.append(_event(current, at, "quarantineLeft", since, before["reason"], None))
    elif before is not None and after is not None and before["reason"] != after["reason"]:
        events.append(_event(current, at, "quarantineReasonChanged", since, before["reason"], after["reason"]))
    if previous["health"] != current["health"]:
        reasons = "; ".join(current["healthReasons"]) or None
        events.append(_event(current, at, "healthChanged", since, previous["health"], current["health"], reasons))
    return events


def job_removed(previous: Job, at: str) -> Event:
    return _event(previous, at, "jobRemoved", previous["observedAt"], previous["statusCode"], None)


_EVENT_ORDER = {kind: index for index, kind in enumerate(EVENT_KINDS)}


def newest_first(events: list[Event]) -> list[Event]:
    """A timeline, newest first. Events of one poll share their time: within it, the order
    job_transitions gives (reversed with the rest)."""
    return sorted(events, key=lambda e: (e["at"], _EVENT_ORDER.get(e["kind"], 99)), reverse=True)
