"""The shapes of the app's data, declared once.

Normalize produces them, storage keeps them as JSON documents, alerts read them, and the HTTP
API derives its response models from them (`shared/api/models.py`): a new Graph field is one
edit here plus the code that fills it. Graph's names are kept for Graph's data.

`Described("...")` is the field's description in the API's OpenAPI document; it means nothing
to the type checker. A `NotRequired` field is absent from records older versions stored: the
API answers null for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, NotRequired, TypedDict, get_args


@dataclass(frozen=True)
class Described:
    """A field's description in the API's contract."""

    text: str


# Most severe first: the API sorts by this order and the dashboard colours by it.
HealthValue = Literal["quarantined", "failing", "stale", "unobserved", "warning", "paused", "notRun", "healthy"]
HEALTH_VALUES: tuple[str, ...] = get_args(HealthValue)

EventKind = Literal[
    "jobAppeared",
    "statusCodeChanged",
    "quarantineEntered",
    "quarantineReasonChanged",
    "quarantineLeft",
    "healthChanged",
    "jobRemoved",
    # Writes through the API, audited (who, when, what, why): not transitions Graph reported.
    "alertsMuted",
    "alertsUnmuted",
    "jobRestarted",
    "jobPaused",
    "jobStarted",
]
# In the order one poll's transitions of a job are told (the timeline sorts ties by it).
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


def one_of(values: tuple[str, ...]) -> str:
    """A vocabulary as a description says it: 'a, b or c'."""
    return ", ".join(values[:-1]) + " or " + values[-1]


class SyncError(TypedDict):
    code: str | None
    message: str | None
    tenantActionable: bool | None


class Execution(TypedDict):
    """A synchronizationTaskExecution (one run), plus its duration. In a job's three slots it can
    be partial: Graph sent no activityIdentifier or a sentinel timeBegan, but a real timeEnded
    (cloud sync reports its last success so). Stored runs always have both."""

    activityIdentifier: Annotated[str | None, Described("the run's id; null in a partial record")]
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
    state: Annotated[str | None, Described("Succeeded, Failed, EntryLevelErrors, or a newer value Graph sends")]
    timeBegan: Annotated[str | None, Described("ISO 8601 UTC, up to 7 fractional digits; null in a partial record")]
    timeEnded: str | None
    durationSeconds: Annotated[float | None, Described("null when a time is missing or the span is implausible")]
    exportSuccessRatio: Annotated[float | None, Described("countExported / countExports; null when nothing was due")]
    # Stored runs only.
    escrowDelta: NotRequired[
        Annotated[
            int | None,
            Described("change in countEscrowed since the job's previous stored run (history endpoints only)"),
        ]
    ]


# A job's three execution slots, in Graph's order.
EXECUTION_KINDS: tuple[str, ...] = ("lastExecution", "lastSuccessfulExecution", "lastSuccessfulExecutionWithExports")
# The counts of a run, in Graph's order (all Int64).
EXECUTION_COUNTS: tuple[str, ...] = tuple(name for name in Execution.__annotations__ if name.startswith("count"))


class Quarantine(TypedDict):
    reason: str | None
    currentBegan: str | None
    nextAttempt: str | None
    seriesBegan: str | None
    seriesCount: int | None
    error: SyncError | None


class Progress(TypedDict):
    completedUnits: int | None
    totalUnits: int | None
    units: str | None
    progressObservationDateTime: str | None


class Job(TypedDict):
    """A provisioning job's current state as last observed."""

    tenantId: str
    servicePrincipalId: str
    servicePrincipalName: str | None
    appId: str | None
    jobId: str
    templateId: str | None
    statusCode: str | None
    health: Annotated[
        str,
        Described(
            "healthy, warning, failing, quarantined, paused, notRun, stale or unobserved (the monitor "
            "could not read it; docs/health.md)"
        ),
    ]
    healthReasons: list[str]
    scheduleState: str | None
    scheduleInterval: Annotated[str | None, Described("Graph's ISO 8601 duration, as sent")]
    scheduleIntervalSeconds: Annotated[float | None, Described("null when Graph reports no schedule")]
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
    anomalies: Annotated[list[str], Described("fields Graph sent that could not be read")]
    # When this state was first observed: the job's last change.
    observedAt: Annotated[str, Described("when this state was first observed")]
    # Carried across polls; absent in records of older versions.
    firstObservedAt: NotRequired[Annotated[str | None, Described("when the monitor first saw the job")]]
    # Set by the poll while the job cannot be read (403, 429, deadline, Graph down): since the
    # last poll that read it, and why. A read clears them.
    notObservedSince: NotRequired[
        Annotated[str | None, Described("set while the monitor cannot read the job: when it last could")]
    ]
    notObservedReason: NotRequired[Annotated[str | None, Described("why the monitor cannot read the job")]]


class ServicePrincipal(TypedDict):
    id: str
    appId: str | None
    displayName: str | None


class Actor(TypedDict):
    """Who made a write through the API."""

    name: Annotated[str | None, Described("the signed-in principal's name, or 'function key'")]
    objectId: Annotated[str | None, Described("the signed-in principal's Entra object id; null with the function key")]
    via: Annotated[str, Described("signIn or functionKey")]


class Event(TypedDict):
    """A state transition of a job, or a write to it through the API (audited: actor, reason)."""

    servicePrincipalId: str
    jobId: str
    at: Annotated[str, Described("when the poll that saw the change observed it, or the write was made")]
    kind: Annotated[str, Described(one_of(EVENT_KINDS))]
    previous: str | None
    current: str | None
    detail: str | None
    since: Annotated[
        str,
        Described(
            "when the state this event leaves was first observed; for jobAppeared, when the job "
            "was removed before (empty the first time); for a write, when it was made"
        ),
    ]
    actor: NotRequired[Annotated[Actor | None, Described("who made the write (writes only)")]]
    reason: NotRequired[Annotated[str | None, Described("why, as the writer gave it (writes only)")]]
