"""The run model of living tenants: a job profile plus a clock reading gives Graph's job JSON.

A profile is a timeline of phases. Each phase schedules runs:
- `initial`: one long first cycle (hours), the start of steady state;
- `periodic`: a run every `interval` seconds from the phase start;
- `quarantine`: retries after 6 h, 12 h more, 24 h more, then daily; none after 28 days
  (the job is disabled), as DOMAIN.md describes;
- `paused`: no runs.
An `initial` phase after others is a restart: a new full cycle (hours) while the job stays Active.
Every run is a pure function of (profile, phase, index), so any "now" is materialised in
O(phases) without storing history: the newest finished run is `lastExecution`, and the
success and with-exports runs are found by walking back a few runs.

One file, over 400 lines, on purpose: the phases, the run schedule and the job JSON they
produce are one state machine; split, each part would need the others to be read.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .clock import MAX_TIMESPAN, SENTINEL_TIME, TICKS_PER_SECOND, format_time, iso_duration

HOUR = 3600
DAY = 86_400
QUARANTINE_RETRIES = (6 * HOUR, 18 * HOUR, 42 * HOUR)  # then every 24 h
QUARANTINE_DISABLED_AFTER = 28 * DAY
MAX_SCAN = 2000  # runs walked back looking for the last success; beyond that it is "none"

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
COUNT_NAMES = (
    "countEntitled",
    "countEntitledForProvisioning",
    "countEscrowed",
    "countEscrowedRaw",
    "countExported",
    "countExports",
    "countImported",
    "countImportedDeltas",
    "countImportedReferenceDeltas",
)
DEFAULT_SETTINGS: tuple[tuple[str, str], ...] = (
    ("AzureIngestionAttributeOptimization", "False"),
    ("LookaheadQueryEnabled", "False"),
    ("QuarantineTooManyDeletesThreshold", "500"),
)
_ACTIVITY_NAMESPACE = uuid.UUID("6f1c3c62-2f4e-4c55-9a57-3a1f0c1e5b7d")

PhaseKind = Literal["initial", "periodic", "quarantine", "paused"]


@dataclass(frozen=True)
class Phase:
    """A stretch of a job's life; runs scheduled in it share `state` and `error`."""

    kind: PhaseKind
    start: int  # epoch seconds
    state: str = "Succeeded"  # Succeeded | EntryLevelErrors | Failed | any future value
    error: Mapping[str, Any] | None = None  # synchronizationError on each run
    escrow_rate: float = 0.0  # chance a Succeeded run has a few escrows (EntryLevelErrors)
    escrow_base: int = 0  # escrows on the phase's first run when state is not Succeeded
    escrow_growth: int = 0  # escrows added per run: escrow that keeps growing
    reason: str | None = None  # quarantine reason
    quarantine_error: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JobProfile:
    """Everything needed to compute one synchronizationJob at any instant."""

    job_id: str
    template_id: str
    profile: str  # a label for people: healthy, quarantine-credentials, ...
    interval: int  # seconds between periodic runs
    phases: tuple[Phase, ...]  # empty: never run (NotConfigured / NotRun)
    population: int = 1000  # users in scope
    groups: int = 0
    initial_duration: int = HOUR
    run_seconds: tuple[int, int] = (20, 300)
    export_rate: float = 0.35  # chance an incremental run exports something
    frac_digits: int = 7
    escrows_pruned: bool = False
    never_run_code: str = "NotRun"
    sentinel_last_success: bool = False  # never-succeeded: Graph's sentinel instead of null
    # Never run, but started: lastExecution is Graph's all-sentinel record (state Failed, error
    # code "None") and the schedule is Active at `interval`, as the cross-tenant sync article shows.
    sentinel_last_execution: bool = False
    # lastSuccessfulExecution as the cloud sync schema article shows it: a partial record with
    # activityIdentifier null and timeBegan at the sentinel, yet the run's real timeEnded and
    # counts; lastSuccessfulExecutionWithExports null.
    partial_last_success: bool = False
    settings: tuple[tuple[str, str], ...] = DEFAULT_SETTINGS
    entry_types: tuple[str, str] = (SCIM_USER, SCIM_GROUP)
    big_count_offset: int = 0  # added to countImported: an Int64 beyond 2**31
    seed: int = 1
    key: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Stable across processes, unlike hash(str).
        digest = hashlib.blake2b(f"{self.seed}:{self.job_id}".encode(), digest_size=8).digest()
        object.__setattr__(self, "key", int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class Run:
    index: int  # k: runs since the job was created
    phase: int
    j: int  # index within the phase
    begin: int
    end: int
    begin_ticks: int
    end_ticks: int
    state: str
    error: Mapping[str, Any] | None
    counts: dict[str, int]

    @property
    def succeeded(self) -> bool:
        return self.state == "Succeeded" and self.error is None


def _phase_end(profile: JobProfile, p: int) -> float:
    return profile.phases[p + 1].start if p + 1 < len(profile.phases) else float("inf")


def _offset(profile: JobProfile, phase: Phase, j: int) -> int | None:
    """Seconds from the phase start to the start of its run j, or None if there is none."""
    if phase.kind == "initial":
        return 0 if j == 0 else None
    if phase.kind == "periodic":
        return j * profile.interval
    if phase.kind == "quarantine":
        off = QUARANTINE_RETRIES[j] if j < 3 else QUARANTINE_RETRIES[-1] + (j - 2) * DAY
        return off if off < QUARANTINE_DISABLED_AFTER else None
    return None


def _quarantine_attempts(elapsed: int) -> int:
    elapsed = min(elapsed, QUARANTINE_DISABLED_AFTER - 1)
    if elapsed < QUARANTINE_RETRIES[0]:
        return 0
    if elapsed < QUARANTINE_RETRIES[1]:
        return 1
    if elapsed < QUARANTINE_RETRIES[2]:
        return 2
    return 3 + (elapsed - QUARANTINE_RETRIES[2]) // DAY


def _started(profile: JobProfile, p: int, t: float) -> int:
    """How many runs of phase p began at or before t."""
    phase = profile.phases[p]
    limit = min(t, _phase_end(profile, p) - 1)
    if limit < phase.start:
        return 0
    elapsed = int(limit) - phase.start
    if phase.kind == "initial":
        return 1
    if phase.kind == "periodic":
        return elapsed // profile.interval + 1
    if phase.kind == "quarantine":
        return _quarantine_attempts(elapsed)
    return 0


def _runs_before(profile: JobProfile, p: int) -> int:
    return sum(_started(profile, q, _phase_end(profile, q) - 1) for q in range(p))


def _run(profile: JobProfile, p: int, j: int, k: int | None = None) -> Run:
    phase = profile.phases[p]
    off = _offset(profile, phase, j)
    assert off is not None
    rng = random.Random(profile.key ^ (p * 1_000_003 + j * 7_919 + 1))
    begin = phase.start + off
    if phase.kind == "initial":
        duration = profile.initial_duration
    elif phase.kind == "quarantine":
        duration = rng.randint(15, 240)
    else:
        low, high = profile.run_seconds
        high = max(low, min(high, profile.interval - 15))
        duration = rng.randint(low, high)
    if k is None:
        k = _runs_before(profile, p) + j
    state, error = phase.state, phase.error
    counts = _counts(profile, phase, j, k, rng)
    if state == "Succeeded" and rng.random() < phase.escrow_rate:
        state = "EntryLevelErrors"
        counts["countEscrowed"] = rng.randint(1, 4)
    elif state not in ("Succeeded", "Failed"):
        counts["countEscrowed"] = phase.escrow_base + phase.escrow_growth * j + rng.randint(0, 9)
    escrowed = counts["countEscrowed"]
    counts["countEscrowedRaw"] = escrowed + (rng.randint(0, escrowed // 10 + 2) if escrowed else 0)
    counts["countExports"] = counts["countExported"] + escrowed
    return Run(
        index=k,
        phase=p,
        j=j,
        begin=begin,
        end=begin + duration,
        begin_ticks=rng.randrange(TICKS_PER_SECOND),
        end_ticks=rng.randrange(TICKS_PER_SECOND),
        state=state,
        error=error,
        counts=counts,
    )


def _counts(profile: JobProfile, phase: Phase, j: int, k: int, rng: random.Random) -> dict[str, int]:
    users = profile.population + k // 40  # the directory grows slowly
    counts = dict.fromkeys(COUNT_NAMES, 0)
    if phase.state == "Failed":
        return counts
    if phase.kind == "initial":
        entitled = int(users * 0.85) + profile.groups
        counts.update(
            countImported=users + profile.groups,
            countImportedDeltas=users + profile.groups,
            countImportedReferenceDeltas=profile.groups * 3,
            countEntitled=entitled,
            countEntitledForProvisioning=entitled,
            countExported=entitled,
        )
    else:
        deltas = rng.randint(0, max(3, users // 150))
        exported = rng.randint(1, max(1, deltas)) if rng.random() < profile.export_rate else 0
        entitled = max(exported, int(deltas * 0.8))
        counts.update(
            countImported=deltas,
            countImportedDeltas=deltas,
            countImportedReferenceDeltas=rng.randint(0, deltas // 2 + 1),
            countEntitled=entitled,
            countEntitledForProvisioning=entitled,
            countExported=exported,
        )
    counts["countImported"] += profile.big_count_offset
    return counts


def _execution(profile: JobProfile, run: Run) -> dict[str, Any]:
    digits = profile.frac_digits
    # Keyed by the run's start, not its index: a demo rebuilt a minute later shifts its runs,
    # and a run id must never come back with another timeBegan (real Graph never does that).
    began = format_time(run.begin, run.begin_ticks, 7)
    body: dict[str, Any] = {"activityIdentifier": str(uuid.uuid5(_ACTIVITY_NAMESPACE, f"{profile.job_id}:{began}"))}
    body.update(run.counts)
    body.update(
        error=dict(run.error) if run.error is not None else None,
        state=run.state,
        timeBegan=format_time(run.begin, run.begin_ticks, digits),
        timeEnded=format_time(run.end, run.end_ticks, digits),
    )
    return body


def sentinel_execution() -> dict[str, Any]:
    """What Graph reports as the last success of a job that never ran."""
    body: dict[str, Any] = {"activityIdentifier": None}
    body.update(dict.fromkeys(COUNT_NAMES, 0))
    body.update(error=None, state="Succeeded", timeBegan=SENTINEL_TIME, timeEnded=SENTINEL_TIME)
    return body


def sentinel_failed_execution() -> dict[str, Any]:
    """What Graph reports as lastExecution of a job started but not yet run (cross-tenant sync
    article): no id, zero counts, state Failed, both times at the sentinel, error code "None"."""
    body: dict[str, Any] = {"activityIdentifier": None}
    body.update(dict.fromkeys(COUNT_NAMES, 0))
    body.update(
        state="Failed",
        timeBegan=SENTINEL_TIME,
        timeEnded=SENTINEL_TIME,
        error={"code": "None", "message": "", "tenantActionable": False},
    )
    return body


def partial_execution(profile: JobProfile, run: Run) -> dict[str, Any]:
    """`run` as a partial record: no activityIdentifier, timeBegan at the sentinel, the rest real."""
    body = _execution(profile, run)
    body.update(activityIdentifier=None, timeBegan=SENTINEL_TIME)
    return body


def _latest(profile: JobProfile, now: int) -> tuple[Run | None, Run | None]:
    """(newest finished run, run in progress) at `now`."""
    running: Run | None = None
    for p in range(len(profile.phases) - 1, -1, -1):
        n = _started(profile, p, now)
        if n == 0:
            continue
        base = _runs_before(profile, p)
        run = _run(profile, p, n - 1, base + n - 1)
        if run.end < now:
            return run, running
        running = running or run
        if n >= 2:
            return _run(profile, p, n - 2, base + n - 2), running
    return None, running


def _walk_back(profile: JobProfile, start: Run, wanted: Callable[[Run], bool]) -> Run | None:
    for p in range(start.phase, -1, -1):
        phase = profile.phases[p]
        if phase.state != "Succeeded" or phase.kind in ("quarantine", "paused"):
            continue  # no run of this phase can be a success
        last = start.j if p == start.phase else _started(profile, p, _phase_end(profile, p) - 1) - 1
        base = _runs_before(profile, p)
        for j in range(last, max(-1, last - MAX_SCAN), -1):
            run = _run(profile, p, j, base + j)
            if wanted(run):
                return run
    return None


def _complete_failures(profile: JobProfile, last: Run) -> int:
    """Failed runs in a row ending with `last`; phases hold one state, so count whole phases."""
    if last.state != "Failed":
        return 0
    total = last.j + 1
    for p in range(last.phase - 1, -1, -1):
        if profile.phases[p].state != "Failed":
            break
        total += _started(profile, p, _phase_end(profile, p) - 1)
    return total


def _current_phase(profile: JobProfile, now: int) -> int:
    current = -1
    for p, phase in enumerate(profile.phases):
        if phase.start <= now:
            current = p
    return current


def _quarantine(profile: JobProfile, p: int, now: int) -> dict[str, Any]:
    phase = profile.phases[p]
    attempts = _started(profile, p, now)
    current = phase.start
    if attempts:
        off = _offset(profile, phase, attempts - 1)
        current = phase.start + (off or 0)
    next_off = _offset(profile, phase, attempts)
    next_attempt = phase.start + next_off if next_off is not None else current + DAY
    ticks = profile.key % TICKS_PER_SECOND
    digits = profile.frac_digits
    return {
        "currentBegan": format_time(current, ticks, digits),
        "error": dict(phase.quarantine_error or phase.error or {}) or None,
        "nextAttempt": format_time(next_attempt, ticks, digits),
        "reason": phase.reason or "Unknown",
        "seriesBegan": format_time(phase.start, ticks, digits),
        "seriesCount": attempts + 1,
    }


def _settings(profile: JobProfile) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in profile.settings]


def materialise_job(profile: JobProfile, now: float) -> dict[str, Any]:
    """Graph's synchronizationJob JSON for `profile` as it stands at `now`."""
    at = int(now)
    p = _current_phase(profile, at)
    if p < 0:
        return _never_run(profile)
    phase = profile.phases[p]
    last, running = _latest(profile, at)
    success = _walk_back(profile, last, lambda r: r.succeeded) if last else None
    with_exports = _walk_back(profile, last, lambda r: r.succeeded and r.counts["countExported"] > 0) if last else None
    fallback = sentinel_execution() if profile.sentinel_last_success else None
    last_success = _execution(profile, success) if success else fallback
    last_with_exports = _execution(profile, with_exports) if with_exports else fallback
    if profile.partial_last_success:
        last_success = partial_execution(profile, success) if success else None
        last_with_exports = None
    digits = profile.frac_digits
    code, schedule_state, quarantine = "Active", "Active", None
    if phase.kind == "quarantine":
        code, quarantine = "Quarantine", _quarantine(profile, p, at)
        if at - phase.start >= QUARANTINE_DISABLED_AFTER:
            schedule_state = "Disabled"
    elif phase.kind == "paused":
        code = schedule_state = "Paused"
    elif last is None:
        code = "NotRun"  # "configured, and possibly started, but hasn't completed its first run"
    initial_done = profile.phases[0].kind != "initial" or (last is not None)
    first_steady = SENTINEL_TIME
    if initial_done:
        first = _run(profile, 0, 0, 0)
        first_steady = format_time(first.end, first.end_ticks, digits)
    return {
        "id": profile.job_id,
        "templateId": profile.template_id,
        "schedule": {
            "expiration": None,
            "interval": iso_duration(profile.interval),
            "state": schedule_state,
        },
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": _complete_failures(profile, last) if last else 0,
            "escrowsPruned": profile.escrows_pruned,
            "lastExecution": _execution(profile, last) if last else None,
            "lastSuccessfulExecution": last_success,
            "lastSuccessfulExecutionWithExports": last_with_exports,
            "progress": _progress(profile, running, now),
            "quarantine": quarantine,
            "steadyStateFirstAchievedTime": first_steady,
            "steadyStateLastAchievedTime": (
                format_time(success.end, success.end_ticks, digits) if success else SENTINEL_TIME
            ),
            "synchronizedEntryCountByType": _entry_counts(profile, last) if initial_done else [],
            # Microsoft's examples of jobs that have run show "" (null only before the first start)
            "troubleshootingUrl": "",
        },
        "synchronizationJobSettings": _settings(profile),
    }


PROGRESS_EVERY = 30  # seconds between the service's progress observations of a running cycle


def _progress(profile: JobProfile, running: Run | None, now: float) -> list[dict[str, Any]]:
    """One observation while a cycle runs, [] between cycles (as Microsoft's examples show)."""
    if running is None:
        return []
    total = max(1, running.counts["countImported"] - profile.big_count_offset)
    elapsed = max(0, int(now) - running.begin)
    observed = running.begin + elapsed // PROGRESS_EVERY * PROGRESS_EVERY
    share = (observed - running.begin) / max(1, running.end - running.begin)
    return [
        {
            "completedUnits": min(total, int(total * share)),
            "progressObservationDateTime": format_time(observed, running.begin_ticks, profile.frac_digits),
            "totalUnits": total,
            "units": "Users",
        }
    ]


def _entry_counts(profile: JobProfile, last: Run | None) -> list[dict[str, Any]]:
    k = last.index if last else 0
    users = int((profile.population + k // 40) * 0.85)
    counts = [{"key": profile.entry_types[0], "value": users}]
    if profile.groups:
        counts.append({"key": profile.entry_types[1], "value": profile.groups})
    return counts


def _never_run(profile: JobProfile) -> dict[str, Any]:
    sentinel = sentinel_execution() if profile.sentinel_last_success else None
    schedule: dict[str, Any] = {"expiration": None, "interval": MAX_TIMESPAN, "state": "Disabled"}
    if profile.sentinel_last_execution:
        schedule = {"expiration": None, "interval": iso_duration(profile.interval), "state": "Active"}
    return {
        "id": profile.job_id,
        "templateId": profile.template_id,
        "schedule": schedule,
        "status": {
            "code": profile.never_run_code,
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "lastExecution": sentinel_failed_execution() if profile.sentinel_last_execution else None,
            "lastSuccessfulExecution": sentinel,
            "lastSuccessfulExecutionWithExports": dict(sentinel) if sentinel else None,
            "progress": [],
            "quarantine": None,
            "steadyStateFirstAchievedTime": SENTINEL_TIME,
            "steadyStateLastAchievedTime": SENTINEL_TIME,
            "synchronizedEntryCountByType": [],
            "troubleshootingUrl": "" if profile.sentinel_last_execution else None,
        },
        "synchronizationJobSettings": _settings(profile),
    }
