"""Health of a provisioning job: one value and the reasons a person can read.

The rule table (first match wins; docs/architecture.md repeats it):

| health      | when                                                                          |
|-------------|-------------------------------------------------------------------------------|
| quarantined | status code `Quarantine`, or a quarantine record is present                   |
| paused      | status code `Paused`, or a job that has run has its schedule Paused/Disabled  |
| notRun      | status code `NotRun`/`NotConfigured`, or no run was ever recorded             |
| failing     | the last run `Failed`, or `countSuccessiveCompleteFailures` > 0               |
| stale       | `Active` but no run finished within 3x the schedule interval                  |
| warning     | entry-level errors, escrowed entries, `escrowsPruned`, escrows near the       |
|             | quarantine thresholds, or a status code this app does not know                |
| healthy     | none of the above                                                             |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.timestamps import parse_timestamp

HEALTH_VALUES: tuple[str, ...] = (
    "quarantined",
    "failing",
    "stale",
    "warning",
    "paused",
    "notRun",
    "healthy",
)
KNOWN_STATUS_CODES = frozenset({"NotConfigured", "NotRun", "Active", "Paused", "Quarantine"})
STALE_AFTER_INTERVALS = 3
# Entra starts evaluating escrows for quarantine at about this many failures (DOMAIN.md).
ESCROW_EVALUATION_START = 5_000
ESCROW_QUARANTINE_PROPORTION = 0.40
ESCROW_QUARANTINE_TOTAL = 40_000


def _human_span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def _error_text(error: Mapping[str, Any] | None) -> str:
    if not error:
        return ""
    parts = [str(error[k]) for k in ("code", "message") if error.get(k)]
    return " - ".join(parts)


def _quarantine_reasons(job: Mapping[str, Any], now: datetime) -> list[str]:
    quarantine = job.get("quarantine") or {}
    since = quarantine.get("currentBegan") or quarantine.get("seriesBegan")
    reason = quarantine.get("reason") or "reason not reported"
    text = f"quarantined since {since}: {reason}" if since else f"quarantined: {reason}"
    began = parse_timestamp(since)
    if began is not None and now >= began:
        text += f" ({_human_span((now - began).total_seconds())})"
    reasons = [text]
    if error := _error_text(quarantine.get("error")):
        reasons.append(error)
    if quarantine.get("nextAttempt"):
        reasons.append(f"next attempt {quarantine['nextAttempt']}")
    return reasons


def _last_finished(job: Mapping[str, Any]) -> datetime | None:
    ends = [
        parse_timestamp(execution.get("timeEnded"))
        for kind in ("lastExecution", "lastSuccessfulExecution", "lastSuccessfulExecutionWithExports")
        if (execution := job.get(kind))
    ]
    known = [end for end in ends if end is not None]
    return max(known) if known else None


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
    near_total = escrowed >= 0.8 * ESCROW_QUARANTINE_TOTAL
    near_proportion = (
        escrowed >= ESCROW_EVALUATION_START
        and proportion is not None
        and proportion >= 0.8 * ESCROW_QUARANTINE_PROPORTION
    )
    if near_total or near_proportion:
        reasons.append(
            "escrows near Entra's quarantine thresholds "
            f"(over {ESCROW_QUARANTINE_PROPORTION:.0%} of events or {ESCROW_QUARANTINE_TOTAL:,} failures)"
        )
    return reasons


def classify_health(job: Mapping[str, Any], *, now: datetime) -> tuple[str, list[str]]:
    """The job's health and why; `job` is a normalized Job (health fields not needed)."""
    code = job.get("statusCode")
    schedule_state = job.get("scheduleState")
    last = job.get("lastExecution")

    if code == "Quarantine" or job.get("quarantine"):
        return "quarantined", _quarantine_reasons(job, now)
    if code == "Paused" or (
        schedule_state in ("Paused", "Disabled") and code not in ("NotRun", "NotConfigured") and last
    ):
        return "paused", [f"status {code or 'unknown'}, schedule {schedule_state or 'unknown'}"]
    if code in ("NotRun", "NotConfigured") or last is None:
        return "notRun", ["not configured" if code == "NotConfigured" else "never run"]

    failing: list[str] = []
    if last.get("state") == "Failed":
        when = last.get("timeEnded") or last.get("timeBegan")
        error = _error_text(last.get("error"))
        failing.append(f"last run failed at {when}" + (f": {error}" if error else ""))
    failures = job.get("countSuccessiveCompleteFailures") or 0
    if failures > 0:
        failing.append(f"{failures:,} successive complete failures")
    if failing:
        return "failing", failing

    interval = job.get("scheduleIntervalSeconds")
    finished = _last_finished(job)
    if code == "Active" and interval and finished is not None:
        waited = (now - finished).total_seconds()
        if waited > STALE_AFTER_INTERVALS * interval:
            return "stale", [
                f"no run finished for {_human_span(waited)}, "
                f"{waited / interval:.1f}x its {_human_span(interval)} interval"
            ]

    warnings: list[str] = []
    if code not in KNOWN_STATUS_CODES:
        warnings.append(f"unknown status code {code!r}")
    if last.get("state") == "EntryLevelErrors":
        warnings.append("last run had entry-level errors")
    elif last.get("state") not in ("Succeeded", "Failed", "EntryLevelErrors"):
        warnings.append(f"last run state {last.get('state')!r}")
    warnings.extend(_escrow_reasons(last))
    if job.get("escrowsPruned"):
        warnings.append("escrows were pruned instead of quarantining the job (escrowsPruned)")
    if warnings:
        return "warning", warnings
    return "healthy", []


def with_current_health(job: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """The job with health and reasons as of `now` (ages in reasons move with time)."""
    health, reasons = classify_health(job, now=now)
    return {**job, "health": health, "healthReasons": reasons}
