"""The alert endpoints' request and response shapes (their part of the OpenAPI contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.alerts.records import NOTIFICATION_KINDS, RULES, SEVERITIES, TARGET_KINDS, RuleName
from shared.domain.contract import Actor
from shared.domain.model import one_of

MAX_MUTE_HOURS = 24 * 365


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


class Alert(_Model):
    """One alert: a rule that fired for one job, open or resolved."""

    alertId: str = Field(description="stable id of (tenant, servicePrincipalId, jobId, rule)")
    rule: str = Field(description=one_of(RULES))
    severity: str = Field(description=one_of(SEVERITIES))
    status: Literal["open", "resolved"]
    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    title: str
    summary: str
    facts: dict[str, str]
    episode: int = Field(description="how many times this alert has opened")
    openedAt: str
    resolvedAt: str | None
    resolution: str | None = Field(description="why it resolved: condition cleared, job removed, rule turned off")
    lastNotifiedAt: str | None = Field(description="when the last open or reminder notification was queued")
    reminders: int = Field(description="reminders sent in this episode")
    announced: bool = Field(description="false while the alert opened during a mute and has not been sent")
    mutedUntil: str | None = Field(None, description="set while a mute covers this alert")


class AlertList(_Model):
    value: list[Alert]


class Mute(_Model):
    servicePrincipalId: str
    jobId: str
    rule: str | None = Field(description="the muted rule; null: every rule of the job")
    until: str
    reason: str | None
    createdAt: str
    createdBy: Actor | None = Field(None, description="who made the mute (null for mutes older than the audit)")


class MuteList(_Model):
    value: list[Mute]


class MuteRequest(BaseModel):
    """Mute a job's alerts (one rule, or all) until a time, or for some hours. A muted alert
    still opens and resolves; nothing is sent while the mute lasts."""

    model_config = ConfigDict(extra="forbid")

    servicePrincipalId: str = Field(min_length=1, max_length=100)
    jobId: str = Field(min_length=1, max_length=400)
    rule: RuleName | None = Field(None, description="omit to mute every rule of the job")
    until: datetime | None = Field(None, description="ISO 8601 with an offset; give this or hours")
    hours: float | None = Field(None, gt=0, le=MAX_MUTE_HOURS, description="give this or until")
    reason: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _one_end(self) -> MuteRequest:
        if (self.until is None) == (self.hours is None):
            raise ValueError("give exactly one of until and hours")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a time zone offset, e.g. 2026-12-01T08:00:00Z")
        return self


class UnmuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servicePrincipalId: str = Field(min_length=1, max_length=100)
    jobId: str = Field(min_length=1, max_length=400)
    rule: RuleName | None = Field(None, description="omit to remove every mute of the job")
    reason: str | None = Field(None, max_length=500)


class UnmuteResult(_Model):
    removed: int = Field(description="mutes removed")


class NotificationDelivery(_Model):
    """One notification to one target, from the outbox."""

    notificationId: str
    target: str = Field(description=one_of(TARGET_KINDS))
    kind: str = Field(description=one_of(NOTIFICATION_KINDS))
    alertId: str
    rule: str
    servicePrincipalId: str
    jobId: str
    status: str = Field(description="pending, retrying, delivered or failed (given up)")
    attempts: int
    createdAt: str
    deliveredAt: str | None
    nextAttemptAt: str | None
    lastStatusCode: int | None
    lastError: str | None = Field(description="a status or an error class; never the target's URL")


class NotificationList(_Model):
    value: list[NotificationDelivery]
