"""Pure normalization of Graph's synchronization JSON into the records this app stores.

Input is the raw JSON Graph returned (parsed by `json`, not by the SDK's typed models, which
turn unknown enum members into None). Output keeps Graph's names and values: an enum member
this code does not know stays as its string. Odd values (null, missing, `0001-01-01`, 0-7
fractional digits, the .NET maximum time span) become explicit "never"/"none" values, and
whatever could not be read is listed in the job's `anomalies` instead of failing the poll.
Only a job that has no usable identity raises `PayloadError`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from shared.domain.health import DEFAULT_RULES, HealthRules, classify_health
from shared.domain.model import (
    EXECUTION_COUNTS,
    EXECUTION_KINDS,
    Execution,
    Job,
    Progress,
    Quarantine,
    ServicePrincipal,
    SyncError,
)
from shared.domain.timestamps import (
    Notes,
    format_timestamp,
    isoformat_utc,
    parse_duration_seconds,
    timestamp_ticks,
)

# Job settings worth keeping (synchronizationJobSettings is a long name/value list).
KEPT_JOB_SETTINGS: tuple[str, ...] = ("QuarantineTooManyDeletesThreshold", "Domain")

_INT64_MAX = 2**63 - 1
TEXT_LIMIT = 2_000  # any one string Graph sends; error messages get MESSAGE_LIMIT
MESSAGE_LIMIT = 4_000
LIST_LIMIT = 100  # progress entries and object types kept per job
ACTIVITY_ID_LIMIT = 256
# A run longer than this is not trusted as a duration (initial cycles can take days, not years).
MAX_PLAUSIBLE_RUN_SECONDS = 90 * 86_400


class PayloadError(ValueError):
    """A job payload this app cannot identify or store; recorded and skipped by the poll."""


# ---------------------------------------------------------------- scalars


def _int64(value: object, notes: Notes, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        notes.add(where, f"expected a number, got {value!r}")
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        number = int(value.strip())  # Int64 may arrive as a JSON string
    else:
        notes.add(where, f"expected a number, got {str(value)[:60]!r}")
        return None
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        notes.add(where, f"number out of Int64 range {number}")
        return None
    return number


def _text(value: object, notes: Notes, where: str, limit: int = TEXT_LIMIT) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > limit:  # keeps a stored record within Table Storage's entity size
            notes.add(where, f"text of {len(value):,} characters cut to {limit:,}")
            return value[:limit]
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    notes.add(where, f"expected text, got {type(value).__name__}")
    return None


def _bool(value: object, notes: Notes, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    notes.add(where, f"expected true/false, got {str(value)[:60]!r}")
    return None


def _object(value: object, notes: Notes, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    notes.add(where, f"expected an object, got {type(value).__name__}")
    return None


def _list(value: object, notes: Notes, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    notes.add(where, f"expected a list, got {type(value).__name__}")
    return []


# ---------------------------------------------------------------- records


def normalize_error(raw: object, notes: Notes, where: str) -> SyncError | None:
    error = _object(raw, notes, where)
    if not error:
        return None
    code = _text(error.get("code"), notes, f"{where}.code")
    message = _text(error.get("message"), notes, f"{where}.message", MESSAGE_LIMIT)
    actionable = _bool(error.get("tenantActionable"), notes, f"{where}.tenantActionable")
    if code is None and message is None and actionable is None:
        return None  # `{"@odata.type": ...}` alone carries no error
    return {"code": code, "message": message, "tenantActionable": actionable}


def normalize_execution(raw: object, notes: Notes | None = None, where: str = "execution") -> Execution | None:
    """One synchronizationTaskExecution, or None when it reports no run at all.

    Graph fills the execution slots of never-run jobs with sentinels: no activityIdentifier,
    `0001-01-01` times. Those are not runs. A record with a real timeEnded but no id or no
    timeBegan is partial (cloud sync reports its last success so): it is kept as reported,
    with an anomaly noted, and `is_identified` says it cannot be stored as a run.
    """
    notes = notes if notes is not None else Notes()
    execution = _object(raw, notes, where)
    if execution is None:
        return None
    activity = _text(execution.get("activityIdentifier"), notes, f"{where}.activityIdentifier")
    if activity is not None and not activity.strip():
        activity = None
    if activity is not None and len(activity) > ACTIVITY_ID_LIMIT:
        notes.add(where, f"activityIdentifier of {len(activity):,} characters not kept")
        activity = None
    began = format_timestamp(execution.get("timeBegan"), notes, f"{where}.timeBegan")
    ended = format_timestamp(execution.get("timeEnded"), notes, f"{where}.timeEnded")
    if activity is None or began is None:
        if ended is None:
            raw_began = execution.get("timeBegan")
            if activity is not None and raw_began not in (None, "") and not str(raw_began).startswith("0001"):
                notes.add(where, f"run {activity} skipped: no readable timeBegan")
            return None  # the never-run sentinel, or too little to tell a person anything
        missing = " and ".join(
            name for name, value in (("activityIdentifier", activity), ("timeBegan", began)) if value is None
        )
        notes.add(where, f"partial record without {missing}: kept as reported, not stored as a run")
    result: dict[str, Any] = {"activityIdentifier": activity}
    for name in EXECUTION_COUNTS:
        result[name] = _int64(execution.get(name), notes, f"{where}.{name}")
    result["error"] = normalize_error(execution.get("error"), notes, f"{where}.error")
    result["state"] = _text(execution.get("state"), notes, f"{where}.state")
    result["timeBegan"] = began
    result["timeEnded"] = ended
    result["durationSeconds"] = run_duration_seconds(began, ended, notes, where)
    exported, exports = result["countExported"], result["countExports"]
    result["exportSuccessRatio"] = round(exported / exports, 4) if exported is not None and exports else None
    return result  # type: ignore[return-value]  # built field by field above


def is_identified(execution: Execution) -> bool:
    """A run that can be stored: Graph gave its id and when it began (its key in Executions)."""
    return execution["activityIdentifier"] is not None and execution["timeBegan"] is not None


def run_id(run: Execution) -> str:
    """An identified run's activityIdentifier (stored runs always have one)."""
    if run["activityIdentifier"] is None:
        raise ValueError("a partial execution is not a stored run")
    return run["activityIdentifier"]


def run_began(run: Execution) -> str:
    """An identified run's timeBegan (stored runs always have one)."""
    if run["timeBegan"] is None:
        raise ValueError("a partial execution is not a stored run")
    return run["timeBegan"]


def run_duration_seconds(
    began: str | None, ended: str | None, notes: Notes | None = None, where: str = ""
) -> float | None:
    if began is None or ended is None:
        return None
    # From the 100 ns ticks, so the 7th fractional digit Graph sent is not lost.
    seconds = (timestamp_ticks(ended) - timestamp_ticks(began)) / 10_000_000
    if seconds < 0 or seconds > MAX_PLAUSIBLE_RUN_SECONDS:
        if notes is not None:
            notes.add(where, f"implausible run duration {seconds:.0f} s: not trusted")
        return None
    return seconds


def normalize_quarantine(raw: object, notes: Notes) -> Quarantine | None:
    quarantine = _object(raw, notes, "status.quarantine")
    if quarantine is None:
        return None
    where = "status.quarantine"
    return {
        "reason": _text(quarantine.get("reason"), notes, f"{where}.reason"),
        "currentBegan": format_timestamp(quarantine.get("currentBegan"), notes, f"{where}.currentBegan"),
        "nextAttempt": format_timestamp(quarantine.get("nextAttempt"), notes, f"{where}.nextAttempt"),
        "seriesBegan": format_timestamp(quarantine.get("seriesBegan"), notes, f"{where}.seriesBegan"),
        "seriesCount": _int64(quarantine.get("seriesCount"), notes, f"{where}.seriesCount"),
        "error": normalize_error(quarantine.get("error"), notes, f"{where}.error"),
    }


def _progress(raw: object, notes: Notes) -> list[Progress]:
    items: list[Progress] = []
    for index, entry in enumerate(_list(raw, notes, "status.progress")[:LIST_LIMIT]):
        where = f"status.progress[{index}]"
        item = _object(entry, notes, where)
        if item is None:
            continue
        items.append(
            {
                "completedUnits": _int64(item.get("completedUnits"), notes, f"{where}.completedUnits"),
                "totalUnits": _int64(item.get("totalUnits"), notes, f"{where}.totalUnits"),
                "units": _text(item.get("units"), notes, f"{where}.units"),
                "progressObservationDateTime": format_timestamp(
                    item.get("progressObservationDateTime"), notes, f"{where}.progressObservationDateTime"
                ),
            }
        )
    return items


def _key_values(raw: object, notes: Notes, where: str) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = []
    for index, entry in enumerate(_list(raw, notes, where)[:LIST_LIMIT]):
        item = _object(entry, notes, f"{where}[{index}]")
        if item is None:
            continue
        key = item.get("key", item.get("name"))
        if not isinstance(key, str) or len(key) > TEXT_LIMIT // 4:
            notes.add(f"{where}[{index}]", "entry without a usable key")
            continue
        pairs.append((key, item.get("value")))
    return pairs


def normalize_service_principal(raw: object) -> ServicePrincipal | None:
    """A service principal's id and names; None when it has no usable id."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not 0 < len(raw["id"]) <= 200:
        return None
    app_id, name = raw.get("appId"), raw.get("displayName")
    return {
        "id": raw["id"],
        "appId": app_id[:200] if isinstance(app_id, str) else None,
        "displayName": name[:TEXT_LIMIT] if isinstance(name, str) else None,
    }


def normalize_job(
    raw: object,
    *,
    tenant_id: str,
    service_principal: ServicePrincipal,
    observed_at: datetime,
    first_observed_at: str | None = None,
    rules: HealthRules = DEFAULT_RULES,
) -> Job:
    """One synchronizationJob as the app's Job record. Raises PayloadError only when the job
    cannot be identified (not an object, no id); every other oddity lands in `anomalies`.
    `first_observed_at` is the stored job's (the poll carries it; None: first seen now)."""
    if not isinstance(raw, dict):
        raise PayloadError(f"job is {type(raw).__name__}, not an object")
    job_id = raw.get("id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise PayloadError("job has no id")
    if len(job_id) > 400:
        raise PayloadError(f"job id is {len(job_id)} characters long")
    notes = Notes()
    schedule = _object(raw.get("schedule"), notes, "schedule") or {}
    status = _object(raw.get("status"), notes, "status") or {}
    if not status:
        notes.add("status", "missing")
    executions = {kind: normalize_execution(status.get(kind), notes, f"status.{kind}") for kind in EXECUTION_KINDS}
    interval = _text(schedule.get("interval"), notes, "schedule.interval")
    settings = {
        key: str(value)
        for key, value in _key_values(raw.get("synchronizationJobSettings"), notes, "synchronizationJobSettings")
        if key in KEPT_JOB_SETTINGS and value is not None
    }
    job: dict[str, Any] = {
        "tenantId": tenant_id,
        "servicePrincipalId": service_principal["id"],
        "servicePrincipalName": service_principal["displayName"],
        "appId": service_principal["appId"],
        "jobId": job_id,
        "templateId": _text(raw.get("templateId"), notes, "templateId"),
        "statusCode": _text(status.get("code"), notes, "status.code"),
        "scheduleState": _text(schedule.get("state"), notes, "schedule.state"),
        "scheduleInterval": interval,
        "scheduleIntervalSeconds": parse_duration_seconds(interval, notes, "schedule.interval"),
        "scheduleExpiration": format_timestamp(schedule.get("expiration"), notes, "schedule.expiration"),
        "countSuccessiveCompleteFailures": _int64(
            status.get("countSuccessiveCompleteFailures"), notes, "status.countSuccessiveCompleteFailures"
        ),
        "escrowsPruned": _bool(status.get("escrowsPruned"), notes, "status.escrowsPruned"),
        "quarantine": normalize_quarantine(status.get("quarantine"), notes),
        **executions,
        "steadyStateFirstAchievedTime": format_timestamp(
            status.get("steadyStateFirstAchievedTime"), notes, "status.steadyStateFirstAchievedTime"
        ),
        "steadyStateLastAchievedTime": format_timestamp(
            status.get("steadyStateLastAchievedTime"), notes, "status.steadyStateLastAchievedTime"
        ),
        "synchronizedEntryCountByType": {
            key: _int64(value, notes, f"status.synchronizedEntryCountByType.{key}")
            for key, value in _key_values(
                status.get("synchronizedEntryCountByType"), notes, "status.synchronizedEntryCountByType"
            )
        },
        "progress": _progress(status.get("progress"), notes),
        "troubleshootingUrl": _text(status.get("troubleshootingUrl"), notes, "status.troubleshootingUrl"),
        "settings": settings,
        "observedAt": isoformat_utc(observed_at),
        "firstObservedAt": first_observed_at or isoformat_utc(observed_at),
    }
    health, reasons = classify_health(job, now=observed_at, rules=rules)
    job["health"] = health
    job["healthReasons"] = reasons
    job["anomalies"] = notes.items
    return job  # type: ignore[return-value]  # built field by field above


def distinct_runs(job: Job) -> list[Execution]:
    """The job's identified runs, each once (the three slots often hold the same run)."""
    runs: dict[str, Execution] = {}
    for kind in EXECUTION_KINDS:
        execution = job[kind]  # type: ignore[literal-required]
        if execution is not None and is_identified(execution):
            runs.setdefault(run_id(execution), execution)
    return list(runs.values())
