"""Alerting's vocabulary and the shapes it stores and sends, declared once.

`RuleName` is the one list of rule names: the settings (`ALERT_RULES`), the API's request
models and the rules all derive theirs from it. `AlertState` is an alert as stored (a row of
`<prefix>Alerts`); `Notification` is what one transition of it sends (an outbox document).
Both carry `AlertBody`, what the alert says about which job.

Ids are derived from an alert's identity (tenant, servicePrincipalId, jobId, rule), never
from the clock, so repeating an evaluation from the same stored state produces the same ids.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, get_args

from shared.alerts.error_codes import KnownCode
from shared.domain.model import Actor
from shared.domain.timestamps import parse_timestamp

# Rule names, in the order a person reads them; also the order of notifications of one job.
RuleName = Literal[
    "quarantined",
    "failing",
    "stale",
    "firstCycleNotFinished",
    "escrowsNearThreshold",
    "newErrorCode",
    "paused",
    "objectCountDrop",
    "removed",
]
RULES: tuple[RuleName, ...] = get_args(RuleName)

Severity = Literal["critical", "error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SEVERITY: dict[RuleName, Severity] = {
    "quarantined": "critical",
    "failing": "error",
    "stale": "error",
    "removed": "warning",
    "escrowsNearThreshold": "warning",
    "objectCountDrop": "warning",
    "firstCycleNotFinished": "warning",
    "newErrorCode": "warning",
    "paused": "info",
}

NotificationKind = Literal["open", "update", "remind", "resolve"]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = get_args(NotificationKind)
AlertStatus = Literal["open", "resolved"]
TargetKind = Literal["teams", "slack", "webhook"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)


class JobRef(TypedDict):
    """Which job an alert is about, as far as alerting names it."""

    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None


class AlertBody(TypedDict):
    """What an alert says, in its stored state and in each notification it sends."""

    alertId: str
    tenantId: str
    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    rule: RuleName
    severity: Severity
    status: AlertStatus
    title: str
    summary: str
    facts: dict[str, str]
    episode: int  # how many times this alert has opened
    openedAt: str
    resolvedAt: str | None
    troubleshootingUrl: str | None


class AlertState(AlertBody):
    """One alert's stored state (a row of `<prefix>Alerts`)."""

    key: str | None  # what an "update" notification follows (the quarantine reason)
    condition: dict[str, Any]  # what the rule remembers (object counts before and after a drop)
    resolution: str | None
    announced: bool  # this episode's open notification was queued (not muted)
    lastNotifiedAt: str | None
    reminders: int
    updates: int
    milestone: int  # quarantine reminders: how many N-day marks are covered
    notifications: int  # notifications queued for this alert, all episodes


class Notification(AlertBody):
    """What is sent: one outbox entry per target, rendered per target by shared.alerts.payloads."""

    notificationId: str
    kind: NotificationKind
    at: str
    headline: str
    reminder: int


class JobMemory(JobRef):
    """What alerting remembers of each job it has seen (a row of `<prefix>Alerts`)."""

    objectCount: int | None
    objectCountAt: str | None
    # Confirmed rules (shared.alerts.memory): since when a rule's condition has held while its
    # alert is not open (pending), and since when it has been clear while it is open (clearing).
    pending: NotRequired[dict[str, str]]
    clearing: NotRequired[dict[str, str]]
    # newErrorCode (shared.alerts.error_codes), with PROVISIONING_LOGS on: the error codes the
    # job has shown, and since when they are kept.
    errorCodes: NotRequired[dict[str, KnownCode]]
    errorCodesSince: NotRequired[str]


class MuteRow(TypedDict):
    """A mute as stored (a row of `<prefix>AlertMutes`)."""

    servicePrincipalId: str
    jobId: str
    rule: RuleName | None  # None: every rule of the job
    until: str
    reason: str | None
    createdAt: str
    createdBy: NotRequired[Actor]  # absent from mutes made before writes were audited


def alert_id(tenant_id: str, service_principal_id: str, job_id: str, rule: str) -> str:
    identity = "\x1f".join((tenant_id.lower(), service_principal_id, job_id, rule))
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def notification_id(alert: str, episode: int, kind: str, number: int = 0) -> str:
    """Deterministic: the same transition from the same stored state has the same id."""
    return hashlib.sha256(f"{alert}|{episode}|{kind}|{number}".encode()).hexdigest()[:32]


class AlertedJob(JobRef):
    """A job as an alert's state takes it: present (a `Job`), or remembered after removal."""

    troubleshootingUrl: str | None


def job_label(job: JobRef | AlertBody) -> str:
    return f"{job.get('servicePrincipalName') or job['servicePrincipalId']} / {job['jobId']}"


def mute_covers(mute: MuteRow, service_principal_id: str, job_id: str, rule: str) -> bool:
    """The mute is of this job, and of this rule or every rule."""
    return (mute["servicePrincipalId"], mute["jobId"]) == (service_principal_id, job_id) and mute["rule"] in (
        None,
        rule,
    )


def mute_in_force(mute: MuteRow, now: datetime) -> bool:
    until = parse_timestamp(mute["until"])
    return until is not None and until > now
