"""Writes through the API, audited: who made each one, when, what it did and why.

A write is told twice: as an event in the job's timeline (the Events table, shown by
`GET /api/v1/jobs/{sp}/{job}` and the dashboard), and as one structured log line
(`audit {...}`) for Application Insights. Both are built here, from the request's facts.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.model import Actor, Event, EventKind


def audit_event(
    service_principal_id: str,
    job_id: str,
    kind: EventKind,
    *,
    actor: Actor,
    at: str,
    reason: str | None,
    current: str | None = None,
    detail: str | None = None,
) -> Event:
    # `since` is the write's own time: it keys the timeline row, so each write is one row.
    return {
        "servicePrincipalId": service_principal_id,
        "jobId": job_id,
        "at": at,
        "kind": kind,
        "previous": None,
        "current": current,
        "detail": detail,
        "since": at,
        "actor": actor,
        "reason": reason,
    }


def audit_log_line(event: Event, **extra: Any) -> str:
    """The log line's JSON: the event's fields that say who, what and why."""
    fields = {
        "action": event["kind"],
        "at": event["at"],
        "servicePrincipalId": event["servicePrincipalId"],
        "jobId": event["jobId"],
        "actor": event.get("actor"),
        "reason": event.get("reason"),
        "current": event["current"],
        "detail": event["detail"],
        **extra,
    }
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
