"""What each rule finds in one job now: pure judging, no state.

`judge_job` gives every rule's `Condition` (or None) for a present job, the rules that are held
this time (a quarantined, paused or unread job says nothing new through them), and why an open
alert resolves when that is more than "condition cleared". Whether a finding opens, reminds or
resolves an alert is `shared.alerts.lifecycle`; the rules are told in docs/alerts.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.alerts.error_codes import (
    NEW_FOR_HOURS,
    RECENT_HOURS,
    CodeCount,
    KnownCode,
    describe_code,
    new_codes,
    top_errors,
)
from shared.alerts.records import RULES, AlertState, JobMemory, RuleName, Severity
from shared.domain.health import (
    DEFAULT_RULES,
    ESCROW_PRUNED_PAUSE,
    ESCROW_QUARANTINE_PROPORTION,
    ESCROW_QUARANTINE_TOTAL,
    HealthRules,
    classify_health,
    error_text,
    escrows_near_threshold,
    first_cycle_overdue,
    first_cycle_since,
    is_escrow_pruned_pause,
    is_quarantined,
    last_run,
    quarantine_since,
)
from shared.domain.health import human_span as span  # ages read the same as in healthReasons
from shared.domain.model import Job
from shared.domain.timestamps import parse_timestamp

# While a job is quarantined (or paused) these say nothing new: their alerts are held as they
# are (no reminder, no resolve) until the superseding condition clears.
HELD_BY_QUARANTINE: frozenset[RuleName] = frozenset(
    {"failing", "stale", "escrowsNearThreshold", "newErrorCode", "paused", "objectCountDrop", "firstCycleNotFinished"}
)
HELD_BY_PAUSE: frozenset[RuleName] = frozenset(
    {"failing", "stale", "escrowsNearThreshold", "newErrorCode", "objectCountDrop", "firstCycleNotFinished"}
)
# While the monitor cannot read a job, rules that judge its health against the clock say
# nothing (the job is not "stopped", the monitor is blind); those judging its last reported
# data go on, since that data has not changed.
HELD_BY_UNOBSERVED: frozenset[RuleName] = frozenset({"stale", "paused", "firstCycleNotFinished"})
# Entra disables a job after about four weeks in quarantine (shared/DOMAIN.md).
QUARANTINE_DISABLE_DAYS = 28


@dataclass(frozen=True)
class AlertConfig:
    """The rules' knobs (from AlertSettings; defaults are the settings' defaults)."""

    rules: frozenset[RuleName] = frozenset(RULES)
    reminder_hours: float = 24.0  # 0: no reminders on a cadence
    quarantine_reminder_days: float = 7.0  # a reminder each time quarantine passes N, 2N, ... days
    failing_after: int = 3
    object_drop_percent: float = 20.0
    object_drop_accept_hours: float = 72.0
    confirm_minutes: float = 15.0  # confirmed rules: how long a condition holds before it opens or clears
    health: HealthRules = DEFAULT_RULES


@dataclass(frozen=True)
class Condition:
    """A rule's finding for one job now. `facts` are stable (stored); `live` facts carry ages
    and are computed afresh for each notification only."""

    title: str
    summary: str
    facts: dict[str, str] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    milestone: int = 0
    condition: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # None: the rule's own (SEVERITY)


Findings = dict[RuleName, Condition | None]


@dataclass(frozen=True)
class JobErrors:
    """A job's provisioning-log failures as the alerts see them (PROVISIONING_LOGS on): its
    failure codes of the recent window, most first, and the codes it knows after this
    evaluation (`shared.alerts.error_codes.learn_codes`)."""

    codes: Sequence[CodeCount] = ()
    known: Mapping[str, KnownCode] = field(default_factory=dict)


TOP_ERRORS_FACT = f"top errors ({RECENT_HOURS} h)"


def object_count(job: Job) -> int | None:
    """Sum of synchronizedEntryCountByType; None when Graph reports no counts."""
    counts = [v for v in (job.get("synchronizedEntryCountByType") or {}).values() if isinstance(v, int)]
    return sum(counts) if counts else None


def successive_failures(job: Job) -> int:
    """Graph's countSuccessiveCompleteFailures; a last run that Failed counts as at least one."""
    failures = job.get("countSuccessiveCompleteFailures") or 0
    last: Mapping[str, Any] = job.get("lastExecution") or {}
    return max(failures, 1) if last.get("state") == "Failed" else failures


# ---------------------------------------------------------------- one rule each


def quarantine_condition(job: Job, now: datetime, config: AlertConfig) -> Condition | None:
    if not is_quarantined(job):
        return None
    quarantine: Mapping[str, Any] = job.get("quarantine") or {}
    reason = quarantine.get("reason") or "reason not reported"
    since_text = quarantine_since(quarantine)
    since = parse_timestamp(since_text)
    facts = {"reason": reason}
    if since_text:
        facts["quarantined since"] = since_text
    if quarantine.get("currentBegan") and quarantine["currentBegan"] != since_text:
        facts["this quarantine period since"] = quarantine["currentBegan"]
    if error := error_text(quarantine.get("error")):
        facts["error"] = error[:500]
    live: dict[str, str] = {}
    milestone = 0
    if since is not None and now >= since:
        age = now - since
        days_left = QUARANTINE_DISABLE_DAYS - age.total_seconds() / 86400
        live["in quarantine for"] = span(age.total_seconds())
        live["days left before Entra disables it"] = f"about {max(days_left, 0):.0f}"
        if config.quarantine_reminder_days > 0:
            milestone = int(age.total_seconds() // (config.quarantine_reminder_days * 86400))
    if quarantine.get("nextAttempt"):
        live["next attempt"] = quarantine["nextAttempt"]
    summary = (
        f"Entra quarantined provisioning job {job['jobId']} of {job.get('servicePrincipalName') or 'its app'}: "
        f"{reason}. Entra retries it less and less often and disables it after about "
        f"{QUARANTINE_DISABLE_DAYS} days in quarantine."
    )
    return Condition("Quarantined", summary, facts, live, key=reason, milestone=milestone)


def failing_condition(job: Job, config: AlertConfig) -> Condition | None:
    failures = successive_failures(job)
    if failures < config.failing_after:
        return None
    last: Mapping[str, Any] = job.get("lastExecution") or {}
    facts = {"successive complete failures": f"{failures:,}"}
    if last.get("state") == "Failed":
        facts["last run failed at"] = str(last.get("timeEnded") or last.get("timeBegan"))
        if error := error_text(last.get("error")):
            facts["error"] = error[:500]
    summary = f"The job's last {failures:,} runs failed completely."
    return Condition("Failing", summary, facts)


Judged = tuple[str, list[str]]  # the job's health and reasons now, classified once per evaluation


def health_condition(
    job: Job, judged: Judged, health: str, title: str, rules: HealthRules = DEFAULT_RULES
) -> Condition | None:
    current, reasons = judged
    if current != health:
        return None
    summary = "; ".join(reasons) or health
    facts = {"status": str(job.get("statusCode")), "schedule": str(job.get("scheduleState"))}
    if health == "stale":
        # The reason carries an age: keep it out of the stored (stable) text.
        summary = (
            "No run ended, no cycle began and no progress was observed within "
            f"{rules.stale_after_intervals:g} times the job's schedule interval "
            f"(at least {span(rules.stale_min_seconds)})."
        )
        return Condition(title, summary, facts, {"why": "; ".join(reasons)})
    return Condition(title, summary, facts)


def paused_condition(job: Job, judged: Judged, rules: HealthRules) -> Condition | None:
    """An admin's pause is news (info); Entra's own pause after pruning escrows needs the
    job's owner, so it is an error with what to do."""
    if is_escrow_pruned_pause(job):
        facts = {"status": str(job.get("statusCode")), "escrowsPruned": "true"}
        if (near := escrows_near_threshold(job.get("lastExecution"))) is not None:
            facts["escrowed entries"] = f"{near[0]:,}"
        title = "Paused by Entra after pruning escrows"
        # Its own key: an admin's pause that becomes this one is told as an update.
        return Condition(title, ESCROW_PRUNED_PAUSE + ".", facts, key="escrowsPruned", severity="error")
    return health_condition(job, judged, "paused", "Paused or disabled", rules)


def first_cycle_condition(job: Job, judged: Judged, now: datetime, rules: HealthRules) -> Condition | None:
    health, reasons = judged
    if health != "warning" or not first_cycle_overdue(job, now, rules):
        return None
    since = first_cycle_since(job)
    summary = (
        "The job is active but its first (initial) cycle has not finished after "
        f"{span(rules.first_cycle_warn_seconds)}: check its progress and the provisioning logs."
    )
    return Condition("First cycle not finished", summary, {"running since": str(since)}, {"why": reasons[0]})


def escrow_condition(job: Job) -> Condition | None:
    near = escrows_near_threshold(last_run(job))
    if near is None or is_escrow_pruned_pause(job):  # said by the paused alert
        return None
    escrowed, proportion = near
    facts = {"escrowed entries": f"{escrowed:,}"}
    if proportion is not None:
        facts["of entitled"] = f"{proportion:.0%}"
    summary = (
        f"The last run escrowed {escrowed:,} entries, near Entra's quarantine thresholds "
        f"(over {ESCROW_QUARANTINE_PROPORTION:.0%} of events or {ESCROW_QUARANTINE_TOTAL:,} failures)."
    )
    return Condition("Escrows near quarantine", summary, facts, key=None)


def drop_condition(before: int, after: int) -> Condition:
    percent = (before - after) / before * 100 if before else 0.0
    summary = f"Synchronized objects dropped from {before:,} to {after:,} ({percent:.0f}% fewer)."
    return Condition(
        "Objects dropped",
        summary,
        {"objects before": f"{before:,}", "objects now": f"{after:,}"},
        condition={"before": before, "after": after},
    )


def object_drop_condition(
    job: Job, memory: JobMemory | None, drop: AlertState | None, now: datetime, config: AlertConfig
) -> tuple[Condition | None, str | None]:
    """Objects: against the last observation, or while the drop alert is open, against the
    count before the drop. Returns the finding and, for an open alert it clears, why."""
    count = object_count(job)
    threshold = 1 - config.object_drop_percent / 100
    if drop is not None and drop["status"] == "open":
        before = int(drop["condition"].get("before") or 0)
        opened = parse_timestamp(drop["openedAt"])
        accepted = opened is not None and now - opened >= timedelta(hours=config.object_drop_accept_hours)
        if count is not None and count < before * threshold and not accepted:
            return drop_condition(before, count), None
        return None, (
            f"count stayed at {count:,} for {config.object_drop_accept_hours:g} h: accepted as the new level"
            if accepted and count is not None and count < before * threshold
            else "condition cleared"
        )
    if memory is not None and memory["objectCount"] and count is not None:
        if count < memory["objectCount"] * threshold:
            return drop_condition(memory["objectCount"], count), None
    return None, None


def new_error_condition(errors: JobErrors, now: datetime) -> Condition | None:
    fresh = new_codes(errors.known, now)
    if not fresh:
        return None
    counts = {code["errorCode"]: code for code in errors.codes}
    first = min(errors.known[name]["firstSeen"] for name in fresh)
    names = ", ".join(fresh)
    summary = (
        f"The job fails with {'an error code' if len(fresh) == 1 else 'error codes'} it has not shown before: "
        f"{names}. Its examples are in the job's error groups (dashboard, /api/v1/jobs/.../errors)."
    )
    live = {
        f"{name} ({RECENT_HOURS} h)": describe_code(counts[name], now, errors.known[name]["firstSeen"])
        for name in fresh
        if name in counts
    }
    # Keyed by the newest code: one more new code is an update, an older one ageing out is not.
    newest = max(fresh, key=lambda name: (errors.known[name]["firstSeen"], name))
    return Condition("New error code", summary, {"error codes": names, "first seen": first}, live, key=newest)


def with_top_errors(found: Condition | None, errors: JobErrors | None, now: datetime) -> Condition | None:
    """The finding, naming the job's top failure codes (a live fact: counts move every poll)."""
    if found is None or errors is None or not (line := top_errors(errors.codes, now, errors.known)):
        return found
    return replace(found, live={**found.live, TOP_ERRORS_FACT: line})


# ---------------------------------------------------------------- one job


def held_rules(job: Job, judged: Judged, now: datetime, health: HealthRules) -> set[RuleName]:
    """The rules a worse condition speaks for this time. Holds follow what Graph last reported,
    not the monitor's view: a paused job the monitor cannot read is still paused, and must not
    start alerting as failing."""
    reported = judged[0]
    if job.get("notObservedSince"):
        reported, _ = classify_health({**job, "notObservedSince": None}, now=now, rules=health)
    held: set[RuleName] = set()
    if is_quarantined(job):
        held |= HELD_BY_QUARANTINE
    elif reported == "paused" or is_escrow_pruned_pause(job):
        held |= HELD_BY_PAUSE
    if job.get("notObservedSince"):
        held |= HELD_BY_UNOBSERVED
    return held


def judge_job(
    job: Job,
    memory: JobMemory | None,
    states: Mapping[str, AlertState],
    now: datetime,
    config: AlertConfig,
    errors: JobErrors | None = None,
) -> tuple[Findings, set[RuleName], dict[RuleName, str]]:
    """Each rule's finding for a present job, the rules held this time, and resolutions.
    `errors` is None while the provisioning logs are not collected."""
    judged = classify_health(job, now=now, rules=config.health)
    drop, drop_resolution = object_drop_condition(job, memory, states.get("objectCountDrop"), now, config)
    found: Findings = {
        "quarantined": with_top_errors(quarantine_condition(job, now, config), errors, now),
        "failing": with_top_errors(failing_condition(job, config), errors, now),
        "stale": health_condition(job, judged, "stale", "Stale", config.health),
        "escrowsNearThreshold": with_top_errors(escrow_condition(job), errors, now),
        "newErrorCode": new_error_condition(errors, now) if errors is not None else None,
        "paused": paused_condition(job, judged, config.health),
        "firstCycleNotFinished": first_cycle_condition(job, judged, now, config.health),
        "removed": None,
        "objectCountDrop": drop,
    }
    resolutions: dict[RuleName, str] = {}
    if drop_resolution is not None:
        resolutions["objectCountDrop"] = drop_resolution
    if errors is not None:
        resolutions["newErrorCode"] = f"no longer new {NEW_FOR_HOURS} h after its first failure"
    return found, held_rules(job, judged, now, config.health), resolutions
