"""The HTTP API's response shapes: the OpenAPI contract portals build on.

Graph's names are kept for Graph's data; everything else is camelCase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import model, provisioning_logs
from shared.domain.contract import Actor as Actor  # the alert models use it too
from shared.domain.contract import ContractModel as _Model
from shared.domain.contract import derive as _derive
from shared.domain.model import HealthValue

if TYPE_CHECKING:  # what the type checker knows of the derived models

    class SyncError(_Model): ...

    class Execution(_Model): ...

    class Quarantine(_Model): ...

    class Progress(_Model): ...

    class Job(_Model): ...

    class Event(_Model): ...

    class ObjectSample(_Model): ...

    class ErrorGroup(_Model): ...

else:
    SyncError = _derive(model.SyncError)
    Execution = _derive(model.Execution)
    Quarantine = _derive(model.Quarantine)
    Progress = _derive(model.Progress)
    Job = _derive(model.Job)
    Event = _derive(model.Event)
    ObjectSample = _derive(provisioning_logs.ObjectSample)
    ErrorGroup = _derive(provisioning_logs.ErrorGroup)


class JobList(_Model):
    value: list[Job]
    count: int = Field(description="jobs matching the filters, on every page")
    nextLink: str | None = Field(None, description="URL of the next page; null on the last page")


class JobDetail(_Model):
    job: Job
    executions: list[Execution] = Field(description="the job's most recent runs, newest first")
    events: list[Event] = Field(description="the job's timeline of state transitions, newest first")


class ExecutionPage(_Model):
    value: list[Execution]
    nextLink: str | None = Field(description="URL of the next page; null on the last page")


class TimeWindow(_Model):
    start: str = Field(alias="from", description="ISO 8601 UTC, inclusive")
    end: str = Field(alias="to", description="ISO 8601 UTC, exclusive")

    model_config = ConfigDict(extra="ignore", populate_by_name=True, json_schema_extra={"additionalProperties": False})


class TenantExecution(Execution):
    """A run with the job it belongs to."""

    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str


class TenantExecutionPage(_Model):
    value: list[TenantExecution]
    nextLink: str | None = Field(description="URL of the next page; null on the last page")
    window: TimeWindow = Field(description="the time window these runs began in (both ends as applied)")


class JobCounts(_Model):
    total: int
    byStatusCode: dict[str, int]
    byHealth: dict[str, int]


class ExecutionCounts(_Model):
    total: int
    byState: dict[str, int]


class ExecutionTotals(_Model):
    """Of the same runs as `executions`."""

    countImported: int = Field(description="summed over the runs")
    countExported: int = Field(description="summed over the runs")
    countEscrowed: int = Field(description="summed over the runs (an entry escrowed in n runs counts n times)")
    successRate: float | None = Field(description="Succeeded runs / runs, 0-1, 4 decimals; null without runs")


class SummaryWindow(_Model):
    name: Literal["24h", "7d", "30d", "90d"]
    start: str = Field(alias="from", description="start (00:00Z) of the first UTC day counted")
    end: str = Field(alias="to", description="when the summary was made")
    days: int = Field(description="UTC days counted: the days that overlap the window")

    model_config = ConfigDict(extra="ignore", populate_by_name=True, json_schema_extra={"additionalProperties": False})


class JobRank(_Model):
    """A job's runs within the window."""

    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    health: HealthValue | None = Field(description="current health; null when the job is no longer present")
    runs: int
    failedRuns: int
    byState: dict[str, int]
    countEscrowed: int = Field(description="escrowed entries summed over the window's runs")


class QuarantinedJob(_Model):
    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    reason: str | None
    since: str | None = Field(description="seriesBegan, else currentBegan: when this stretch of quarantine began")
    currentBegan: str | None
    seriesBegan: str | None
    nextAttempt: str | None
    secondsInQuarantine: int | None = Field(description="whole minutes, in seconds; null when Graph gave no time")


class PollRecord(BaseModel):
    """A poll record as stored (docs/architecture.md); the fields below are always there."""

    model_config = ConfigDict(extra="allow")

    pollId: str
    status: str = Field(description="succeeded, partial or failed")
    startedAt: str
    endedAt: str | None = None
    trigger: str | None = None
    errorCount: int | None = None


class Summary(_Model):
    jobs: JobCounts
    executions: ExecutionCounts = Field(
        description="runs that began in the window's days; without `window`, every stored day"
    )
    executionTotals: ExecutionTotals
    window: SummaryWindow | None = Field(None, description="null without `window`: all stored history")
    topFailingJobs: list[JobRank] | None = Field(
        None, description="the 10 jobs with the most Failed runs in the window; null without `window`"
    )
    topEscrowedJobs: list[JobRank] | None = Field(
        None, description="the 10 jobs with the most escrowed entries in the window; null without `window`"
    )
    quarantinedJobs: list[QuarantinedJob] = Field(
        default_factory=list, description="every job quarantined now, longest in quarantine first"
    )
    lastPoll: PollRecord | None


class ErrorsWindow(_Model):
    name: Literal["24h", "7d", "30d", "90d"]
    start: str = Field(alias="from", description="start (00:00Z) of the first UTC day counted")
    end: str = Field(alias="to", description="when the answer was made")

    model_config = ConfigDict(extra="ignore", populate_by_name=True, json_schema_extra={"additionalProperties": False})


class ErrorsCollection(_Model):
    mode: str = Field(description="PROVISIONING_LOGS: off, counts or samples")
    status: str | None = Field(
        description="the last poll's collection: ok, notPermitted (grant AuditLog.Read.All and Directory.Read.All) "
        "or error; null when off or not polled yet"
    )
    cursor: str | None = Field(description="every hour before this is counted")


class ErrorGroupPage(_Model):
    value: list[ErrorGroup]
    nextLink: str | None
    window: ErrorsWindow
    collection: ErrorsCollection


class LastPoll(_Model):
    status: str
    startedAt: str
    endedAt: str | None
    errorCount: int
    errorsByKind: dict[str, int]
    workItemsPoisoned: int = Field(
        0, description="of a poll fanned out through the work queue: its items that failed on every try"
    )
    provisioningLogs: str | None = Field(
        None,
        description="with PROVISIONING_LOGS on: ok, notPermitted (Graph answered 403: grant AuditLog.Read.All "
        "and Directory.Read.All) or error; null when off",
    )


class MonitorHealth(_Model):
    """The monitor's own freshness; nothing about the tenant."""

    status: Literal["healthy", "degraded", "stale", "blind", "neverPolled", "misconfigured", "storageUnavailable"] = (
        Field(description="healthy or degraded (the last poll had errors) answer 200; the others 503")
    )
    reason: str | None = Field(
        None, description="for blind: which Graph read was refused and the permission to grant; otherwise absent"
    )
    checkedAt: str
    maxAgeSeconds: float | None = Field(description="a successful poll must have ended within this many seconds")
    lastSuccessfulPollAt: str | None = Field(description="when the last successful or partial poll ended")
    lastSuccessfulPollAgeSeconds: float | None
    lastPoll: LastPoll | None
    version: str


CloudName = Literal["global", "usgov", "usgovdod", "china"]
TenantStateValue = Literal[
    "healthy", "degraded", "consentMissing", "signInFailed", "throttled", "failing", "stale", "notPolled", "disabled"
]


class TenantJobCounts(_Model):
    total: int
    byHealth: dict[str, int]
    byStatusCode: dict[str, int]
    quarantined: int


class TenantLastPoll(_Model):
    pollId: str
    status: str
    startedAt: str
    endedAt: str | None
    errorCount: int
    errorsByKind: dict[str, int]
    firstError: str | None = Field(None, description="the first error's message, to say why at a glance")


class Tenant(_Model):
    tenantId: str
    displayName: str
    enabled: bool
    cloud: CloudName | None = Field(description="its national cloud; null: the deployment's own GRAPH_BASE_URL")
    graphHost: str = Field(description="the Graph host its polls read")
    servicePrincipalIds: list[str] = Field(description="pinned service principals; empty: every one is discovered")
    alertSettingsSuffix: str | None = Field(description="its alerts go to the targets of the settings with this suffix")
    source: Literal["home", "setting", "api"] = Field(
        description="home: AZURE_TENANT_ID, watched without a row; setting: seeded from TENANTS; api: added here"
    )
    updatedAt: str | None
    updatedBy: str | None
    state: TenantStateValue = Field(
        description="from its last poll: consentMissing (Graph or Entra refused the app: consent never given or "
        "revoked), signInFailed, throttled, failing, stale (no poll lately), degraded (errors), healthy"
    )
    lastPoll: TenantLastPoll | None
    jobs: TenantJobCounts


class TenantList(_Model):
    value: list[Tenant]
    count: int


class TenantQuarantinedJob(QuarantinedJob):
    tenantId: str


class TenantRollup(_Model):
    count: int
    byState: dict[str, int]


class TenantsSummary(_Model):
    """Every tenant the caller may see, at once."""

    tenants: TenantRollup
    jobs: TenantJobCounts
    attention: list[Tenant] = Field(description="the tenants whose state is not healthy (disabled ones left out)")
    quarantinedJobs: list[TenantQuarantinedJob] = Field(description="up to 50, longest in quarantine first")


class TenantBody(_Model):
    """A tenant as the API sets it. Its Graph root and authority come from `cloud`; other hosts
    can be set only in the TENANTS setting."""

    model_config = ConfigDict(extra="forbid")

    displayName: str = Field("", max_length=256)
    enabled: bool = True
    cloud: CloudName | None = None
    servicePrincipalIds: list[str] = Field(default_factory=list, max_length=1000)
    alertSettingsSuffix: str | None = Field(None, pattern=r"^[A-Z0-9_]{1,40}$")
    reason: str | None = Field(None, max_length=500, description="why, for the audit log")


class TenantPatch(_Model):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    displayName: str | None = Field(None, max_length=256)
    enabled: bool | None = None
    cloud: CloudName | None = None
    servicePrincipalIds: list[str] | None = Field(None, max_length=1000)
    alertSettingsSuffix: str | None = Field(None, pattern=r"^[A-Z0-9_]{1,40}$")
    reason: str | None = Field(None, max_length=500, description="why, for the audit log")


class Problem(BaseModel):
    """RFC 9457 problem details (served as application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = Field(None, description="what was wrong and what to do about it")
