"""The HTTP API's response shapes: the OpenAPI contract portals build on.

Graph's names are kept for Graph's data; everything else is camelCase.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HealthValue = Literal["quarantined", "failing", "stale", "unobserved", "warning", "paused", "notRun", "healthy"]


class _Model(BaseModel):
    # The contract says no other properties, and answers keep to it: a field a newer poll
    # stores that the contract does not list yet is dropped, not served (and never a 500).
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


class SyncError(_Model):
    code: str | None
    message: str | None
    tenantActionable: bool | None


class Execution(_Model):
    """A synchronizationTaskExecution (one run), plus its duration. In a job's three slots it can
    be partial: Graph sent no activityIdentifier or a sentinel timeBegan, but a real timeEnded
    (cloud sync reports its last success so). Stored runs always have both."""

    activityIdentifier: str | None = Field(description="the run's id; null in a partial record")
    countEntitled: int | None
    countEntitledForProvisioning: int | None
    countEscrowed: int | None
    countEscrowedRaw: int | None
    countExported: int | None
    countExports: int | None
    countImported: int | None
    countImportedDeltas: int | None
    countImportedReferenceDeltas: int | None
    error: SyncError | None
    state: str | None = Field(description="Succeeded, Failed, EntryLevelErrors, or a newer value Graph sends")
    timeBegan: str | None = Field(description="ISO 8601 UTC, up to 7 fractional digits; null in a partial record")
    timeEnded: str | None
    durationSeconds: float | None = Field(description="null when a time is missing or the span is implausible")
    exportSuccessRatio: float | None = Field(description="countExported / countExports; null when nothing was due")
    escrowDelta: int | None = Field(
        None, description="change in countEscrowed since the job's previous stored run (history endpoints only)"
    )


class Quarantine(_Model):
    reason: str | None
    currentBegan: str | None
    nextAttempt: str | None
    seriesBegan: str | None
    seriesCount: int | None
    error: SyncError | None


class Progress(_Model):
    completedUnits: int | None
    totalUnits: int | None
    units: str | None
    progressObservationDateTime: str | None


class Job(_Model):
    """A provisioning job's current state as last observed."""

    tenantId: str
    servicePrincipalId: str
    servicePrincipalName: str | None
    appId: str | None
    jobId: str
    templateId: str | None
    statusCode: str | None
    health: str = Field(
        description="healthy, warning, failing, quarantined, paused, notRun, stale or unobserved (the monitor "
        "could not read it; docs/health.md)"
    )
    healthReasons: list[str]
    scheduleState: str | None
    scheduleInterval: str | None = Field(description="Graph's ISO 8601 duration, as sent")
    scheduleIntervalSeconds: float | None = Field(description="null when Graph reports no schedule")
    scheduleExpiration: str | None
    countSuccessiveCompleteFailures: int | None
    escrowsPruned: bool | None
    quarantine: Quarantine | None
    lastExecution: Execution | None
    lastSuccessfulExecution: Execution | None
    lastSuccessfulExecutionWithExports: Execution | None
    steadyStateFirstAchievedTime: str | None
    steadyStateLastAchievedTime: str | None
    synchronizedEntryCountByType: dict[str, int | None]
    progress: list[Progress]
    troubleshootingUrl: str | None
    settings: dict[str, str]
    anomalies: list[str] = Field(description="fields Graph sent that could not be read")
    observedAt: str = Field(description="when this state was first observed")
    firstObservedAt: str | None = Field(None, description="when the monitor first saw the job")
    notObservedSince: str | None = Field(
        None, description="set while the monitor cannot read the job: when it last could"
    )
    notObservedReason: str | None = Field(None, description="why the monitor cannot read the job")


class JobList(_Model):
    value: list[Job]
    count: int = Field(description="jobs matching the filters, on every page")
    nextLink: str | None = Field(None, description="URL of the next page; null on the last page")


class Event(_Model):
    """A state transition of a job."""

    servicePrincipalId: str
    jobId: str
    at: str = Field(description="when the poll that saw the change observed it")
    kind: str = Field(
        description="jobAppeared, statusCodeChanged, quarantineEntered, quarantineReasonChanged, "
        "quarantineLeft, healthChanged or jobRemoved"
    )
    previous: str | None
    current: str | None
    detail: str | None
    since: str = Field(
        description="when the state this event leaves was first observed; for jobAppeared, when the job "
        "was removed before (empty the first time)"
    )


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


class LastPoll(_Model):
    status: str
    startedAt: str
    endedAt: str | None
    errorCount: int
    errorsByKind: dict[str, int]


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


class Problem(BaseModel):
    """RFC 9457 problem details (served as application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = Field(None, description="what was wrong and what to do about it")
