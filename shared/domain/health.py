"""Health of a provisioning job: one value and the reasons a person can read.

The rule table (first match wins; docs/health.md gives each rule the Microsoft page it follows):

| health      | when                                                                            |
|-------------|---------------------------------------------------------------------------------|
| quarantined | status code `Quarantine`, or a quarantine record is present                     |
| unobserved  | the monitor has not read the job for 15 min (403, 429, deadline, Graph down):   |
|             | the monitor's own problem, never "stopped"                                      |
| failing     | Entra paused the job after pruning escrows (`escrowsPruned` and `Paused`)       |
| notRun      | never started (`Paused` with a `Disabled` schedule and no run: Graph's form)    |
| paused      | status code `Paused`, or a job that has run has its schedule Paused/Disabled    |
| warning     | started (`Active`, or `NotRun` with an active schedule), but its first cycle    |
|             | has not finished after FIRST_CYCLE_WARN_HOURS                                   |
| notRun      | status code `NotRun`/`NotConfigured`, or no run was ever reported               |
| failing     | the last run `Failed`, or `countSuccessiveCompleteFailures` > 0                 |
| stale       | `Active`, yet no run ended, no cycle began and no progress was observed within  |
|             | 3x the schedule interval (never less than STALE_MIN_MINUTES)                    |
| warning     | entry-level errors, escrowed entries, `escrowsPruned`, escrows near the         |
|             | quarantine thresholds, or a status code this app does not know                  |
| healthy     | none of the above                                                               |

Ages come from Graph's own times: a quarantine's age from `seriesBegan` (when the series
began; `currentBegan` is only its latest re-imposition), a job's activity from its runs'
ends, a running cycle's start and `progress[].progressObservationDateTime`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.model import EXECUTION_KINDS
from shared.domain.timestamps import parse_timestamp

KNOWN_STATUS_CODES = frozenset({"NotConfigured", "NotRun", "Active", "Paused", "Quarantine"})
# Entra starts evaluating escrows for quarantine at about this many failures (DOMAIN.md).
ESCROW_EVALUATION_START = 5_000
ESCROW_QUARANTINE_PROPORTION = 0.40
ESCROW_QUARANTINE_TOTAL = 40_000
# Escrows count as "near" Entra's thresholds at this fraction of them.
ESCROW_NEAR_FRACTION = 0.8


@dataclass(frozen=True)
class HealthRules:
    """The rules' knobs (from STALE_MIN_MINUTES and FIRST_CYCLE_WARN_HOURS)."""

    stale_after_intervals: float = 3.0
    # Cloud sync runs every 2 minutes and Graph's status lags behind its cycles: a floor keeps
    # a short interval from calling a job stale after minutes.
    stale_min_seconds: float = 30 * 60
    # Initial cycles take hours, on large directories days (DOMAIN.md).
    first_cycle_warn_seconds: float = 24 * 3600
    # One missed read (a poll's deadline, a throttled batch) is caught up by the next poll:
    # a job becomes "unobserved" only when it has not been read for longer than this.
    unobserved_after_seconds: float = 15 * 60

    def stale_after_seconds(self, interval: float) -> float:
        return max(self.stale_after_intervals * interval, self.stale_min_seconds)


DEFAULT_RULES = HealthRules()


def human_span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def error_text(error: Mapping[str, Any] | None) -> str:
    """A synchronizationError as one line: `code - message`."""
    if not error:
        return ""
    return " - ".join(str(error[k]) for k in ("code", "message") if error.get(k))


def quarantine_since(quarantine: Mapping[str, Any]) -> str | None:
    """When the quarantine series began: its real age. `currentBegan` is the latest re-imposition."""
    since = quarantine.get("seriesBegan") or quarantine.get("currentBegan")
    return str(since) if since else None


def _age(since: str | None, now: datetime) -> str:
    began = parse_timestamp(since)
    return f" ({human_span((now - began).total_seconds())})" if began is not None and now >= began else ""


def _quarantine_reasons(job: Mapping[str, Any], now: datetime) -> list[str]:
    quarantine = job.get("quarantine") or {}
    since = quarantine_since(quarantine)
    reason = quarantine.get("reason") or "reason not reported"
    text = f"quarantined since {since}: {reason}" if since else f"quarantined: {reason}"
    reasons = [text + _age(since, now)]
    current, count = quarantine.get("currentBegan"), quarantine.get("seriesCount")
    if current and current != since:
        again = f"kept after {count:,} re-evaluations; " if isinstance(count, int) and count > 0 else ""
        reasons.append(f"{again}this quarantine period since {current}")
    if error := error_text(quarantine.get("error")):
        reasons.append(error)
    if quarantine.get("nextAttempt"):
        reasons.append(f"next attempt {quarantine['nextAttempt']}")
    return reasons


def last_run(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The job's last reported run: lastExecution, or a success slot where Graph left it null."""
    for kind in EXECUTION_KINDS:
        if execution := job.get(kind):
            return execution
    return None


def last_activity(job: Mapping[str, Any]) -> datetime | None:
    """The latest sign of the job working: a run's end, a running cycle's start (lastExecution
    without an end) or an observation of its cycle's progress."""
    times: list[str | None] = []
    for kind in EXECUTION_KINDS:
        if execution := job.get(kind):
            times.append(execution.get("timeEnded"))
    running = job.get("lastExecution") or {}
    if running.get("timeBegan") and not running.get("timeEnded"):
        times.append(running["timeBegan"])
    times.extend(item.get("progressObservationDateTime") for item in job.get("progress") or [])
    known = [instant for text in times if (instant := parse_timestamp(text)) is not None]
    return max(known) if known else None


def _progress_text(job: Mapping[str, Any]) -> str:
    for item in job.get("progress") or []:
        done, total = item.get("completedUnits"), item.get("totalUnits")
        if isinstance(done, int) and isinstance(total, int) and total > 0:
            return f"{done:,} of {total:,} {item.get('units') or 'units'}"
    return ""


def first_cycle_since(job: Mapping[str, Any]) -> str | None:
    """When the job's first cycle began, as well as it is known: the running cycle's start,
    else when the monitor first saw the job (Graph reports no start for it)."""
    running = job.get("lastExecution") or {}
    return running.get("timeBegan") or job.get("firstObservedAt")


def first_cycle_started(job: Mapping[str, Any]) -> bool:
    """Started, yet no run ended: status `Active`, or `NotRun` with an active schedule (Graph's
    NotRun means "configured, and possibly started, but hasn't completed its first run")."""
    code, schedule_state = job.get("statusCode"), job.get("scheduleState")
    started = code == "Active" or (code == "NotRun" and schedule_state == "Active")
    # No run ended yet: nothing reported, or only the first cycle running (no timeEnded).
    return started and not any((job.get(kind) or {}).get("timeEnded") for kind in EXECUTION_KINDS)


def first_cycle_seconds(job: Mapping[str, Any], now: datetime) -> float | None:
    """How long a started job's first cycle has been running; None when a run has ended or it
    was not started, or when no start is known."""
    if not first_cycle_started(job):
        return None
    began = parse_timestamp(first_cycle_since(job))
    return max(0.0, (now - began).total_seconds()) if began is not None else None


def first_cycle_overdue(job: Mapping[str, Any], now: datetime, rules: HealthRules = DEFAULT_RULES) -> bool:
    seconds = first_cycle_seconds(job, now)
    return seconds is not None and seconds > rules.first_cycle_warn_seconds


def _first_cycle(job: Mapping[str, Any], now: datetime, rules: HealthRules) -> tuple[str, list[str]]:
    since = first_cycle_since(job)
    progress = _progress_text(job)
    detail = f"; {progress} done" if progress else ""
    seconds = first_cycle_seconds(job, now)
    if seconds is not None and seconds > rules.first_cycle_warn_seconds:
        return "warning", [f"first cycle has not finished after {human_span(seconds)} (running since {since}){detail}"]
    return "notRun", [f"first cycle running since {since}{detail}" if since else "first cycle running" + detail]


def _escrow_reasons(execution: Mapping[str, Any]) -> list[str]:
    escrowed = execution.get("countEscrowed") or 0
    if escrowed <= 0:
        return []
    entitled = execution.get("countEntitled") or 0
    text = f"{escrowed:,} escrowed entries"
    proportion = escrowed / entitled if entitled > 0 else None
    if proportion is not None:
        text += f", {proportion:.0%} of entitled"
    reasons = [text]
    if escrows_near_threshold(execution) is not None:
        reasons.append(
            "escrows near Entra's quarantine thresholds "
            f"(over {ESCROW_QUARANTINE_PROPORTION:.0%} of events or {ESCROW_QUARANTINE_TOTAL:,} failures)"
        )
    return reasons


def escrows_near_threshold(execution: Mapping[str, Any] | None) -> tuple[int, float | None] | None:
    """(escrowed, proportion of entitled) when near Entra's quarantine thresholds, else None."""
    if not execution:
        return None
    escrowed = execution.get("countEscrowed") or 0
    entitled = execution.get("countEntitled") or 0
    proportion = escrowed / entitled if entitled > 0 else None
    near_total = escrowed >= ESCROW_NEAR_FRACTION * ESCROW_QUARANTINE_TOTAL
    near_proportion = (
        escrowed >= ESCROW_EVALUATION_START
        and proportion is not None
        and proportion >= ESCROW_NEAR_FRACTION * ESCROW_QUARANTINE_PROPORTION
    )
    return (escrowed, proportion) if escrowed > 0 and (near_total or near_proportion) else None


def is_quarantined(job: Mapping[str, Any]) -> bool:
    return job.get("statusCode") == "Quarantine" or bool(job.get("quarantine"))


def is_escrow_pruned_pause(job: Mapping[str, Any]) -> bool:
    """Entra paused the job itself after clearing escrows at the end of its initial cycle."""
    return job.get("statusCode") == "Paused" and job.get("escrowsPruned") is True


ESCROW_PRUNED_PAUSE = (
    "Entra paused the job after pruning escrows at the end of its initial cycle (escrowsPruned): "
    "fix the errors of the escrowed entries, then restart the job"
)


def not_observed_reason(job: Mapping[str, Any], now: datetime) -> str | None:
    since = job.get("notObservedSince")
    if not since:
        return None
    why = job.get("notObservedReason") or "not read"
    return f"not observed since {since}{_age(since, now)}: {why}"


def _not_observed_since(job: Mapping[str, Any]) -> datetime | None:
    return parse_timestamp(job.get("notObservedSince"))


def classify_health(
    job: Mapping[str, Any], *, now: datetime, rules: HealthRules = DEFAULT_RULES
) -> tuple[str, list[str]]:
    """The job's health and why; `job` is a normalized Job (health fields not needed)."""
    code = job.get("statusCode")
    schedule_state = job.get("scheduleState")
    unread_since = _not_observed_since(job)
    blind = unread_since is not None and (now - unread_since).total_seconds() > rules.unobserved_after_seconds
    unobserved = not_observed_reason(job, now) if blind else None

    if is_quarantined(job):  # Graph said so; still the last word while the job cannot be read
        return "quarantined", _quarantine_reasons(job, now) + ([unobserved] if unobserved else [])
    if unobserved:
        # The monitor's blind spot, not the job's: never "stopped".
        return "unobserved", [unobserved]
    if unread_since is not None:
        now = min(now, unread_since)  # briefly unread: judged as of its last read
    last = last_run(job)
    if is_escrow_pruned_pause(job):
        return "failing", [ESCROW_PRUNED_PAUSE, *(_escrow_reasons(last) if last else [])]
    if last is None and code == "Paused" and schedule_state == "Disabled":
        return "notRun", ["not started"]  # how Graph shows a job no one has started yet
    if code == "Paused" or (
        schedule_state in ("Paused", "Disabled") and code not in ("NotRun", "NotConfigured") and last
    ):
        return "paused", [f"status {code or 'unknown'}, schedule {schedule_state or 'unknown'}"]
    if first_cycle_started(job):
        return _first_cycle(job, now, rules)
    if last is None:
        return "notRun", ["not configured" if code == "NotConfigured" else "never run"]
    if code in ("NotRun", "NotConfigured"):
        return "notRun", ["not configured" if code == "NotConfigured" else "never run"]

    failing: list[str] = []
    if last.get("state") == "Failed":
        when = last.get("timeEnded") or last.get("timeBegan") or "an unreported time"
        error = error_text(last.get("error"))
        failing.append(f"last run failed at {when}" + (f": {error}" if error else ""))
    failures = job.get("countSuccessiveCompleteFailures") or 0
    if failures > 0:
        failing.append(f"{failures:,} successive complete failures")
    if failing:
        return "failing", failing

    interval = job.get("scheduleIntervalSeconds")
    active = last_activity(job)
    if code == "Active" and interval and active is not None:
        waited = (now - active).total_seconds()
        window = rules.stale_after_seconds(interval)
        if waited > window:
            return "stale", [
                f"no run ended and no progress was observed for {human_span(waited)} "
                f"(allowed: {human_span(window)} for its {human_span(interval)} interval)"
            ]

    warnings: list[str] = []
    if code not in KNOWN_STATUS_CODES:
        warnings.append(f"unknown status code {code!r}")
    if last.get("state") == "EntryLevelErrors":
        warnings.append("last run had entry-level errors")
    elif last.get("state") not in ("Succeeded", "Failed", "EntryLevelErrors") and (
        last.get("state") is not None or last.get("timeEnded")  # a running cycle has no result yet
    ):
        warnings.append(f"last run state {last.get('state')!r}")
    warnings.extend(_escrow_reasons(last))
    if job.get("escrowsPruned"):
        warnings.append("escrows were pruned instead of quarantining the job (escrowsPruned)")
    if warnings:
        return "warning", warnings
    return "healthy", []


def with_current_health(job: Mapping[str, Any], *, now: datetime, rules: HealthRules = DEFAULT_RULES) -> dict[str, Any]:
    """The job with health and reasons as of `now` (ages in reasons move with time)."""
    health, reasons = classify_health(job, now=now, rules=rules)
    return {**job, "health": health, "healthReasons": reasons}
