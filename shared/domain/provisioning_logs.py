"""Per-object errors from Graph's provisioning logs, as aggregates people can act on (pure).

Graph's `GET /auditLogs/provisioning` serves one `provisioningObjectSummary` per object and
change (https://learn.microsoft.com/graph/api/resources/provisioningobjectsummary). The app
keeps no copy of the log: it counts the events that are not a success (failure, skipped,
warning) per job, hour and **error group** (status, provisioningAction, errorCode), with the
first and last time seen and, in `samples` mode, a few example objects.

Counts are made per hour from every event of that hour, so reading an hour again gives the
same rows (stored by replacing, never by adding): events read twice are never counted twice.
The API sums hours into days and windows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict, get_args

from shared.domain.model import Described
from shared.domain.timestamps import isoformat_utc, parse_timestamp

ProvisioningLogsMode = Literal["off", "counts", "samples"]
PROVISIONING_LOGS_MODES: tuple[str, ...] = get_args(ProvisioningLogsMode)
# What is collected: every status but success (unknownFutureValue is kept as it comes).
COLLECTED_STATUSES = ("failure", "skipped", "warning")
_REASON_CHARS = 500
_TEXT_CHARS = 200


class LogEventError(ValueError):
    """A provisioning event this app cannot place (no id, time or job); recorded and skipped."""


class ObjectSample(TypedDict):
    """One example object of an error group (samples mode): whose provisioning failed, when."""

    eventId: str
    activityDateTime: str
    sourceId: str | None
    sourceDisplayName: str | None
    targetId: str | None
    targetDisplayName: str | None
    identityType: str | None
    # Which side is an object of this tenant's Entra ID depends on the job: the source for an
    # outbound app or cross-tenant sync (pushed from the source tenant), the target for HR inbound.
    sourceSystem: NotRequired[
        Annotated[
            str | None,
            Described(
                "the system the object was provisioned from (Graph's sourceSystem.displayName): "
                '"Azure Active Directory" or "Microsoft Entra ID" for an outbound app or cross-tenant '
                "sync, the HR or other app for an inbound job; null if Graph gave none or the example "
                "was stored before the field was kept"
            ),
        ]
    ]
    targetSystem: NotRequired[
        Annotated[
            str | None,
            Described(
                "the system the object was provisioned to (Graph's targetSystem.displayName): the app "
                "for an outbound job, Entra ID for an inbound job and (the target tenant's) for cross-tenant "
                "sync; null as sourceSystem"
            ),
        ]
    ]


@dataclass(frozen=True)
class LogEvent:
    """The part of a provisioningObjectSummary the aggregates keep."""

    event_id: str
    at: datetime
    job_id: str
    service_principal_id: str | None
    status: str
    action: str
    error_code: str
    reason: str | None
    error_category: str | None
    sample: ObjectSample


def _text(value: object, limit: int = _TEXT_CHARS) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def normalize_log_event(raw: object) -> LogEvent:
    """A provisioningObjectSummary as a LogEvent; LogEventError says what is missing."""
    if not isinstance(raw, dict):
        raise LogEventError("not an object")
    event_id, job_id = raw.get("id"), raw.get("jobId")
    at = parse_timestamp(raw.get("activityDateTime"))
    if not isinstance(event_id, str) or not event_id or not isinstance(job_id, str) or not job_id or at is None:
        raise LogEventError(f"event {event_id!r}: id, jobId and activityDateTime are required")
    info, sp = _object(raw.get("provisioningStatusInfo")), _object(raw.get("servicePrincipal"))
    error = _object(info.get("errorInformation"))
    source, target = _object(raw.get("sourceIdentity")), _object(raw.get("targetIdentity"))
    source_system, target_system = _object(raw.get("sourceSystem")), _object(raw.get("targetSystem"))
    # v1.0 names it provisioningAction; `action` is beta's older name.
    action = raw.get("provisioningAction") or raw.get("action")
    return LogEvent(
        event_id=event_id,
        at=at,
        job_id=job_id,
        service_principal_id=_text(sp.get("id")),
        status=_text(info.get("status")) or "unknown",
        action=_text(action) or "other",
        error_code=_text(error.get("errorCode")) or "",
        reason=_text(error.get("reason"), _REASON_CHARS),
        error_category=_text(error.get("errorCategory")),
        sample={
            "eventId": event_id,
            "activityDateTime": isoformat_utc(at),
            "sourceId": _text(source.get("id")),
            "sourceDisplayName": _text(source.get("displayName")),
            "targetId": _text(target.get("id")),
            "targetDisplayName": _text(target.get("displayName")),
            "identityType": _text(source.get("identityType")) or _text(target.get("identityType")),
            "sourceSystem": _text(source_system.get("displayName")),
            "targetSystem": _text(target_system.get("displayName")),
        },
    )


def hour_of(instant: datetime) -> str:
    """The hour bucket an event is counted in: `YYYY-MM-DDTHH` (UTC)."""
    return isoformat_utc(instant)[:13]


def group_id(status: str, action: str, error_code: str) -> str:
    """A short stable key for an error group (its parts may hold any character)."""
    return hashlib.sha256(f"{status}\x00{action}\x00{error_code}".encode()).hexdigest()[:16]


class ErrorGroupHour(TypedDict):
    """One error group of one job in one hour, counted from every event of that hour."""

    jobId: str
    servicePrincipalId: str | None
    hour: str
    status: str
    action: str
    errorCode: str
    reason: str | None  # the latest event's reason
    errorCategory: str | None
    count: int
    firstSeen: str
    lastSeen: str
    samples: list[ObjectSample]


def count_hours(events: Iterable[LogEvent], samples: int) -> list[ErrorGroupHour]:
    """The events as error groups per job and hour, each with up to `samples` example objects
    (the earliest; 0 in counts mode). Events repeated in the input are counted once."""
    groups: dict[tuple[str, str, str], ErrorGroupHour] = {}
    seen: set[str] = set()
    for event in sorted(events, key=lambda e: (e.at, e.event_id)):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        key = (event.job_id, hour_of(event.at), group_id(event.status, event.action, event.error_code))
        at = isoformat_utc(event.at)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "jobId": event.job_id,
                "servicePrincipalId": event.service_principal_id,
                "hour": key[1],
                "status": event.status,
                "action": event.action,
                "errorCode": event.error_code,
                "reason": event.reason,
                "errorCategory": event.error_category,
                "count": 0,
                "firstSeen": at,
                "lastSeen": at,
                "samples": [],
            }
        group["count"] += 1
        group["lastSeen"] = at
        group["reason"] = event.reason or group["reason"]
        group["servicePrincipalId"] = group["servicePrincipalId"] or event.service_principal_id
        if len(group["samples"]) < samples:
            group["samples"].append(event.sample)
    return list(groups.values())


class ErrorGroup(TypedDict):
    """An error group of a job over a window: its count, trend per day, and examples."""

    jobId: str
    servicePrincipalId: str | None
    status: str
    action: str
    errorCode: str
    reason: str | None
    errorCategory: str | None
    count: int
    firstSeen: str
    lastSeen: str
    days: dict[str, int]  # UTC day -> count, every day of the window with events
    samples: list[ObjectSample]


def merge_hours(hours: Sequence[Mapping[str, Any]], samples: int) -> list[ErrorGroup]:
    """Hour rows as error groups (per job), most events first."""
    groups: dict[tuple[str, str], ErrorGroup] = {}
    for row in sorted(hours, key=lambda r: (r["hour"], r["firstSeen"])):
        key = (row["jobId"], group_id(row["status"], row["action"], row["errorCode"]))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "jobId": row["jobId"],
                "servicePrincipalId": row.get("servicePrincipalId"),
                "status": row["status"],
                "action": row["action"],
                "errorCode": row["errorCode"],
                "reason": row.get("reason"),
                "errorCategory": row.get("errorCategory"),
                "count": 0,
                "firstSeen": row["firstSeen"],
                "lastSeen": row["lastSeen"],
                "days": {},
                "samples": [],
            }
        group["count"] += int(row["count"])
        group["lastSeen"] = max(group["lastSeen"], row["lastSeen"])
        group["reason"] = row.get("reason") or group["reason"]
        day = row["hour"][:10]
        group["days"][day] = group["days"].get(day, 0) + int(row["count"])
        room = samples - len(group["samples"])
        if room > 0:
            group["samples"].extend(list(row.get("samples") or [])[:room])
    return sorted(groups.values(), key=lambda g: (g["count"], g["lastSeen"]), reverse=True)
