"""The HTTP API's response shapes: the OpenAPI contract portals build on.

Graph's names are kept for Graph's data; everything else is camelCase.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyncError(_Model):
    code: str | None
    message: str | None
    tenantActionable: bool | None


class Execution(_Model):
    """A synchronizationTaskExecution (one run), plus its duration."""

    activityIdentifier: str
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
    timeBegan: str = Field(description="ISO 8601 UTC, up to 7 fractional digits")
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
    health: str = Field(description="healthy, warning, failing, quarantined, paused, notRun or stale")
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


class JobList(_Model):
    value: list[Job]


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
    since: str = Field(description="when the state this event leaves was first observed")


class JobDetail(_Model):
    job: Job
    executions: list[Execution] = Field(description="the job's most recent runs, newest first")
    events: list[Event] = Field(description="the job's timeline of state transitions, newest first")


class ExecutionPage(_Model):
    value: list[Execution]
    nextLink: str | None = Field(description="URL of the next page; null on the last page")


class JobCounts(_Model):
    total: int
    byStatusCode: dict[str, int]
    byHealth: dict[str, int]


class ExecutionCounts(_Model):
    total: int
    byState: dict[str, int]


class Summary(_Model):
    jobs: JobCounts
    executions: ExecutionCounts
    lastPoll: dict[str, Any] | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
