"""Alert rules: which job conditions people are told about, once, and when they clear.

Pure: `evaluate(jobs, states, memories, mutes, now=..., config=...)` compares the jobs as the
last poll stored them with each alert's previous state and returns the states to write and
the notifications to send (open, update, remind, resolve). Storage and delivery live in
`shared.alerts.store` and `shared.alerts.delivery`; docs/alerts.md explains the rules.

An alert is identified by (tenant, servicePrincipalId, jobId, rule). It opens once per
episode; every notification id is derived from that identity, the episode number, the kind
and the reminder/update number, never from the clock, so repeating an evaluation from the
same stored state produces the same ids (the outbox then holds each notification once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict

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
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.settings import ALERT_RULE_NAMES

# Rule names, in the order a person reads them; also the order of notifications of one job.
RULES: tuple[str, ...] = ALERT_RULE_NAMES
# While a job is quarantined (or paused) these say nothing new: their alerts are held as they
# are (no reminder, no resolve) until the superseding condition clears.
_HELD_BY_QUARANTINE = frozenset(
    {"failing", "stale", "escrowsNearThreshold", "paused", "objectCountDrop", "firstCycleNotFinished"}
)
_HELD_BY_PAUSE = frozenset({"failing", "stale", "escrowsNearThreshold", "objectCountDrop", "firstCycleNotFinished"})
# While the monitor cannot read a job, rules that judge its health against the clock say
# nothing (the job is not "stopped", the monitor is blind); those judging its last reported
# data go on, since that data has not changed.
_HELD_BY_UNOBSERVED = frozenset({"stale", "paused", "firstCycleNotFinished"})
# Rules that open only after their condition held for ALERT_CONFIRM_MINUTES across polls, and
# resolve only after it stayed clear as long: a job at the edge of a rule must not flap.
CONFIRMED_RULES = frozenset({"stale", "failing"})
SEVERITY = {
    "quarantined": "critical",
    "failing": "error",
    "stale": "error",
    "removed": "warning",
    "escrowsNearThreshold": "warning",
    "objectCountDrop": "warning",
    "firstCycleNotFinished": "warning",
    "paused": "info",
}
NOTIFICATION_KINDS: tuple[str, ...] = ("open", "update", "remind", "resolve")
NotificationKind = Literal["open", "update", "remind", "resolve"]
# Entra disables a job after about four weeks in quarantine (shared/DOMAIN.md).
QUARANTINE_DISABLE_DAYS = 28


@dataclass(frozen=True)
class AlertConfig:
    """The rules' knobs (from AlertSettings; defaults are the settings' defaults)."""

    rules: frozenset[str] = frozenset(RULES)
    reminder_hours: float = 24.0  # 0: no reminders on a cadence
    quarantine_reminder_days: float = 7.0  # a reminder each time quarantine passes N, 2N, ... days
    failing_after: int = 3
    object_drop_percent: float = 20.0
    object_drop_accept_hours: float = 72.0
    confirm_minutes: float = 15.0  # CONFIRMED_RULES: how long a condition holds before it opens or clears
    health: HealthRules = DEFAULT_RULES


class AlertState(TypedDict):
    """One alert's stored state (a row of `<prefix>Alerts`)."""

    alertId: str
    tenantId: str
    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    rule: str
    severity: str
    status: Literal["open", "resolved"]
    title: str
    summary: str
    facts: dict[str, str]
    key: str | None  # what an "update" notification follows (the quarantine reason)
    condition: dict[str, Any]  # what the rule remembers (object counts before and after a drop)
    troubleshootingUrl: str | None
    episode: int
    openedAt: str
    resolvedAt: str | None
    resolution: str | None
    announced: bool  # this episode's open notification was queued (not muted)
    lastNotifiedAt: str | None
    reminders: int
    updates: int
    milestone: int  # quarantine reminders: how many N-day marks are covered
    notifications: int  # notifications queued for this alert, all episodes


class JobMemory(TypedDict):
    """What alerting remembers of each job it has seen (a row of `<prefix>Alerts`)."""

    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    objectCount: int | None
    objectCountAt: str | None
    # CONFIRMED_RULES: since when a rule's condition has held while its alert is not open
    # (pending), and since when it has been clear while its alert is open (clearing).
    pending: NotRequired[dict[str, str]]
    clearing: NotRequired[dict[str, str]]


class Mute(TypedDict):
    servicePrincipalId: str
    jobId: str
    rule: str | None  # None: every rule of the job
    until: str
    reason: str | None
    createdAt: str


class Notification(TypedDict):
    """What is sent: one outbox entry per target, rendered per target by shared.alerts.delivery."""

    notificationId: str
    kind: str
    at: str
    alertId: str
    tenantId: str
    servicePrincipalId: str
    servicePrincipalName: str | None
    jobId: str
    templateId: str | None
    rule: str
    severity: str
    status: str  # the alert's status after this notification: open or resolved
    title: str
    headline: str
    summary: str
    facts: dict[str, str]
    episode: int
    reminder: int
    openedAt: str
    resolvedAt: str | None
    troubleshootingUrl: str | None


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
    severity: str | None = None  # None: the rule's own (SEVERITY)


@dataclass
class Evaluation:
    """What one evaluation decided: rows to write and notifications to queue."""

    states: list[AlertState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    memories: list[JobMemory] = field(default_factory=list)
    forgotten: list[tuple[str, str]] = field(default_factory=list)  # job memories to delete

    def counts(self) -> dict[str, int]:
        """Notifications queued by kind, and alert states written."""
        by_kind = {kind: 0 for kind in NOTIFICATION_KINDS}
        for notification in self.notifications:
            by_kind[notification["kind"]] += 1
        return {**by_kind, "statesWritten": len(self.states)}


def alert_id(tenant_id: str, service_principal_id: str, job_id: str, rule: str) -> str:
    identity = "\x1f".join((tenant_id.lower(), service_principal_id, job_id, rule))
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def notification_id(alert: str, episode: int, kind: str, number: int = 0) -> str:
    """Deterministic: the same transition from the same stored state has the same id."""
    return hashlib.sha256(f"{alert}|{episode}|{kind}|{number}".encode()).hexdigest()[:32]


# ---------------------------------------------------------------- helpers


def job_label(job: Mapping[str, Any]) -> str:
    return f"{job.get('servicePrincipalName') or job['servicePrincipalId']} / {job['jobId']}"


def object_count(job: Mapping[str, Any]) -> int | None:
    """Sum of synchronizedEntryCountByType; None when Graph reports no counts."""
    counts = [v for v in (job.get("synchronizedEntryCountByType") or {}).values() if isinstance(v, int)]
    return sum(counts) if counts else None


def successive_failures(job: Mapping[str, Any]) -> int:
    """Graph's countSuccessiveCompleteFailures; a last run that Failed counts as at least one."""
    failures = job.get("countSuccessiveCompleteFailures") or 0
    last = job.get("lastExecution") or {}
    return max(failures, 1) if last.get("state") == "Failed" else failures


# ---------------------------------------------------------------- rules


def quarantine_condition(job: Mapping[str, Any], now: datetime, config: AlertConfig) -> Condition | None:
    if not is_quarantined(job):
        return None
    quarantine = job.get("quarantine") or {}
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


def failing_condition(job: Mapping[str, Any], config: AlertConfig) -> Condition | None:
    failures = successive_failures(job)
    if failures < config.failing_after:
        return None
    last = job.get("lastExecution") or {}
    facts = {"successive complete failures": f"{failures:,}"}
    if last.get("state") == "Failed":
        facts["last run failed at"] = str(last.get("timeEnded") or last.get("timeBegan"))
        if error := error_text(last.get("error")):
            facts["error"] = error[:500]
    summary = f"The job's last {failures:,} runs failed completely."
    return Condition("Failing", summary, facts)


Judged = tuple[str, list[str]]  # the job's health and reasons now, classified once per evaluation


def health_condition(
    job: Mapping[str, Any], judged: Judged, health: str, title: str, rules: HealthRules = DEFAULT_RULES
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


def paused_condition(job: Mapping[str, Any], judged: Judged, rules: HealthRules) -> Condition | None:
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


def first_cycle_condition(
    job: Mapping[str, Any], judged: Judged, now: datetime, rules: HealthRules
) -> Condition | None:
    health, reasons = judged
    if health != "warning" or not first_cycle_overdue(job, now, rules):
        return None
    since = first_cycle_since(job)
    summary = (
        "The job is active but its first (initial) cycle has not finished after "
        f"{span(rules.first_cycle_warn_seconds)}: check its progress and the provisioning logs."
    )
    return Condition("First cycle not finished", summary, {"running since": str(since)}, {"why": reasons[0]})


def escrow_condition(job: Mapping[str, Any]) -> Condition | None:
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


def _drop_condition(before: int, after: int) -> Condition:
    percent = (before - after) / before * 100 if before else 0.0
    summary = f"Synchronized objects dropped from {before:,} to {after:,} ({percent:.0f}% fewer)."
    return Condition(
        "Objects dropped",
        summary,
        {"objects before": f"{before:,}", "objects now": f"{after:,}"},
        condition={"before": before, "after": after},
    )


# ---------------------------------------------------------------- the state machine


@dataclass(frozen=True)
class _Context:
    tenant_id: str
    now: datetime
    config: AlertConfig

    @property
    def at(self) -> str:
        return isoformat_utc(self.now)


def _muted(mutes: Sequence[Mute], sp_id: str, job_id: str, rule: str, now: datetime) -> bool:
    for mute in mutes:
        until = parse_timestamp(mute["until"])
        if (
            mute["servicePrincipalId"] == sp_id
            and mute["jobId"] == job_id
            and mute["rule"] in (None, rule)
            and until is not None
            and until > now
        ):
            return True
    return False


def _headline(rule: str, kind: str, state: AlertState, previous: AlertState | None, live: dict[str, str]) -> str:
    reason = state["key"] or ""
    if kind == "open":
        return {
            "quarantined": f"Job entered quarantine: {reason}",
            "failing": "Job is failing",
            "stale": "Job has stopped: no run ended and no progress seen within its allowed time",
            "escrowsNearThreshold": "Escrows are growing toward Entra's quarantine thresholds",
            "paused": state["title"] if state["severity"] == "error" else "Job is paused or disabled",
            "firstCycleNotFinished": "First cycle has not finished",
            "objectCountDrop": "Synchronized object count dropped sharply",
            "removed": "Job was removed",
        }.get(rule, state["title"])
    if kind == "update":
        if rule == "paused":  # Entra's own pause and an admin's are told apart
            return f"Pause changed: {state['title']}"
        before = previous["key"] if previous is not None else None
        return f"Quarantine reason changed: {before} -> {reason}"
    if kind == "remind":
        if rule == "quarantined" and "in quarantine for" in live:
            left = live.get("days left before Entra disables it", "")
            return f"Still quarantined after {live['in quarantine for']}: {left} days left before Entra disables it"
        return f"Still open since {state['openedAt']} (reminder {state['reminders']})"
    return {
        "quarantined": "Resolved: job left quarantine",
        "removed": "Resolved: job is back",
    }.get(rule, f"Resolved: {state['title'].lower()} cleared") + (
        f" ({state['resolution']})" if state["resolution"] and state["resolution"] != "condition cleared" else ""
    )


def _notify(
    ctx: _Context, state: AlertState, kind: NotificationKind, previous: AlertState | None, live: dict[str, str]
) -> Notification:
    number = {"remind": state["reminders"], "update": state["updates"]}.get(kind, 0)
    return {
        "notificationId": notification_id(state["alertId"], state["episode"], kind, number),
        "kind": kind,
        "at": ctx.at,
        "alertId": state["alertId"],
        "tenantId": state["tenantId"],
        "servicePrincipalId": state["servicePrincipalId"],
        "servicePrincipalName": state["servicePrincipalName"],
        "jobId": state["jobId"],
        "templateId": state["templateId"],
        "rule": state["rule"],
        "severity": state["severity"],
        "status": state["status"],
        "title": state["title"],
        "headline": _headline(state["rule"], kind, state, previous, live),
        "summary": state["summary"],
        "facts": {**state["facts"], **(live if kind != "resolve" else {})},
        "episode": state["episode"],
        "reminder": state["reminders"] if kind == "remind" else 0,
        "openedAt": state["openedAt"],
        "resolvedAt": state["resolvedAt"],
        "troubleshootingUrl": state["troubleshootingUrl"],
    }


def _new_state(ctx: _Context, job: Mapping[str, Any], rule: str, previous: AlertState | None) -> AlertState:
    return {
        "alertId": alert_id(ctx.tenant_id, job["servicePrincipalId"], job["jobId"], rule),
        "tenantId": ctx.tenant_id,
        "servicePrincipalId": job["servicePrincipalId"],
        "servicePrincipalName": job.get("servicePrincipalName"),
        "jobId": job["jobId"],
        "templateId": job.get("templateId"),
        "rule": rule,
        "severity": SEVERITY.get(rule, "warning"),
        "status": "open",
        "title": "",
        "summary": "",
        "facts": {},
        "key": None,
        "condition": {},
        "troubleshootingUrl": job.get("troubleshootingUrl"),
        "episode": (previous["episode"] if previous is not None else 0) + 1,
        "openedAt": ctx.at,
        "resolvedAt": None,
        "resolution": None,
        "announced": False,
        "lastNotifiedAt": None,
        "reminders": 0,
        "updates": 0,
        "milestone": 0,
        "notifications": previous["notifications"] if previous is not None else 0,
    }


def _reminder_due(ctx: _Context, state: AlertState, found: Condition) -> bool:
    if state["rule"] == "removed":
        return False  # a removal is told once
    if found.milestone > state["milestone"]:
        return True
    if ctx.config.reminder_hours <= 0 or state["lastNotifiedAt"] is None:
        return False
    last = parse_timestamp(state["lastNotifiedAt"])
    return last is not None and ctx.now - last >= timedelta(hours=ctx.config.reminder_hours)


def step(
    ctx: _Context,
    job: Mapping[str, Any],
    rule: str,
    previous: AlertState | None,
    found: Condition | None,
    *,
    muted: bool,
    resolution: str = "condition cleared",
) -> tuple[AlertState | None, list[Notification]]:
    """One alert's transition: the state to store (None: unchanged) and what to send."""
    out: list[Notification] = []
    if found is None:
        if previous is None or previous["status"] != "open":
            return None, out
        state: AlertState = {**previous, "status": "resolved", "resolvedAt": ctx.at, "resolution": resolution}
        if previous["announced"] and not muted:
            out.append(_notify(ctx, state, "resolve", previous, {}))
        state["notifications"] += len(out)
        return state, out

    is_new = previous is None or previous["status"] != "open"
    if is_new or previous is None:
        state = _new_state(ctx, job, rule, previous)
    else:
        state = {**previous}
    state.update(
        {
            "servicePrincipalName": job.get("servicePrincipalName") or state["servicePrincipalName"],
            "templateId": job.get("templateId") or state["templateId"],
            "severity": found.severity or SEVERITY.get(rule, "warning"),
            "title": found.title,
            "summary": found.summary,
            "facts": found.facts,
            "key": found.key,
            "condition": found.condition or state["condition"],
            "troubleshootingUrl": job.get("troubleshootingUrl") or state["troubleshootingUrl"],
        }
    )
    if not muted:
        if not state["announced"]:
            # Opened now, or opened during a mute that has ended: tell it now.
            state.update({"announced": True, "lastNotifiedAt": ctx.at, "milestone": found.milestone})
            out.append(_notify(ctx, state, "open", previous if not is_new else None, found.live))
        else:
            if previous is not None and found.key != previous["key"]:
                state["updates"] += 1
                out.append(_notify(ctx, state, "update", previous, found.live))
            if _reminder_due(ctx, state, found):
                state.update(
                    {
                        "reminders": state["reminders"] + 1,
                        "lastNotifiedAt": ctx.at,
                        "milestone": max(found.milestone, state["milestone"]),
                    }
                )
                out.append(_notify(ctx, state, "remind", previous, found.live))
    state["notifications"] += len(out)
    return (state if is_new or state != previous else None), out


def _job_conditions(
    job: Job, memory: JobMemory | None, states: Mapping[str, AlertState], ctx: _Context
) -> tuple[dict[str, Condition | None], set[str], dict[str, str]]:
    """Each rule's finding for a present job, the rules held this time, and resolutions."""
    config, now = ctx.config, ctx.now
    # Holds follow what Graph last reported, not the monitor's view: a paused job the monitor
    # cannot read is still paused, and must not start alerting as failing.
    judged = classify_health(job, now=now, rules=config.health)
    reported = judged[0]
    if job.get("notObservedSince"):
        reported, _ = classify_health({**job, "notObservedSince": None}, now=now, rules=config.health)
    held: set[str] = set()
    if is_quarantined(job):
        held |= _HELD_BY_QUARANTINE
    elif reported == "paused" or is_escrow_pruned_pause(job):
        held |= _HELD_BY_PAUSE
    if job.get("notObservedSince"):
        held |= _HELD_BY_UNOBSERVED
    resolutions: dict[str, str] = {}
    found: dict[str, Condition | None] = {
        "quarantined": quarantine_condition(job, now, config),
        "failing": failing_condition(job, config),
        "stale": health_condition(job, judged, "stale", "Stale", config.health),
        "escrowsNearThreshold": escrow_condition(job),
        "paused": paused_condition(job, judged, config.health),
        "firstCycleNotFinished": first_cycle_condition(job, judged, now, config.health),
        "removed": None,
    }
    # Objects: against the last observation, or while open, against the count before the drop.
    count = object_count(job)
    drop = states.get("objectCountDrop")
    threshold = 1 - config.object_drop_percent / 100
    found["objectCountDrop"] = None
    if drop is not None and drop["status"] == "open":
        before = int(drop["condition"].get("before") or 0)
        opened = parse_timestamp(drop["openedAt"])
        accepted = opened is not None and now - opened >= timedelta(hours=config.object_drop_accept_hours)
        if count is not None and count < before * threshold and not accepted:
            found["objectCountDrop"] = _drop_condition(before, count)
        else:
            resolutions["objectCountDrop"] = (
                f"count stayed at {count:,} for {config.object_drop_accept_hours:g} h: accepted as the new level"
                if accepted and count is not None and count < before * threshold
                else "condition cleared"
            )
    elif memory is not None and memory["objectCount"] and count is not None:
        if count < memory["objectCount"] * threshold:
            found["objectCountDrop"] = _drop_condition(memory["objectCount"], count)
    return found, held, resolutions


def _confirm(
    found: dict[str, Condition | None],
    held: set[str],
    states: Mapping[str, AlertState],
    memory: JobMemory | None,
    ctx: _Context,
) -> tuple[dict[str, str], dict[str, str]]:
    """Hysteresis for CONFIRMED_RULES, in place on `found` and `held`: a condition opens its
    alert only once it has held for `confirm_minutes`, and an open alert resolves only once
    its condition has stayed clear as long (held open meanwhile). Returns what the job's
    memory keeps: since when each rule has been pending and clearing."""
    window = timedelta(minutes=ctx.config.confirm_minutes)
    was_pending = (memory.get("pending") if memory is not None else None) or {}
    was_clearing = (memory.get("clearing") if memory is not None else None) or {}
    pending: dict[str, str] = {}
    clearing: dict[str, str] = {}

    def waiting(rule: str, was: Mapping[str, str], now_waiting: dict[str, str]) -> bool:
        """True (and remembered) while the change has lasted less than the window."""
        since = was.get(rule, ctx.at)
        began = parse_timestamp(since)
        if began is None or ctx.now - began < window:
            now_waiting[rule] = since
            return True
        return False

    for rule in sorted(CONFIRMED_RULES):
        if rule in held or window <= timedelta(0):
            continue
        is_open = (state := states.get(rule)) is not None and state["status"] == "open"
        if not is_open and found.get(rule) is not None and waiting(rule, was_pending, pending):
            found[rule] = None  # not yet: nothing opens
        elif is_open and found.get(rule) is None and waiting(rule, was_clearing, clearing):
            held.add(rule)  # not yet: stays open as it is
    return pending, clearing


def evaluate(
    jobs: Sequence[Job],
    states: Mapping[tuple[str, str, str], AlertState],
    memories: Mapping[tuple[str, str], JobMemory],
    mutes: Sequence[Mute],
    *,
    now: datetime,
    config: AlertConfig,
    tenant_id: str,
) -> Evaluation:
    """Every job's alerts after a poll. `states` by (servicePrincipalId, jobId, rule),
    `memories` by (servicePrincipalId, jobId): what the previous evaluation stored."""
    ctx = _Context(tenant_id, now, config)
    result = Evaluation()
    by_job: dict[tuple[str, str], dict[str, AlertState]] = {}
    for (sp_id, job_id, rule), state in states.items():
        by_job.setdefault((sp_id, job_id), {})[rule] = state

    def apply(
        job: Mapping[str, Any], rule: str, found: Condition | None, resolution: str = "condition cleared"
    ) -> None:
        previous = by_job.get((job["servicePrincipalId"], job["jobId"]), {}).get(rule)
        muted = _muted(mutes, job["servicePrincipalId"], job["jobId"], rule, now)
        if rule not in config.rules:
            found, resolution, muted = None, "rule turned off", True  # closes quietly
        state, sent = step(ctx, job, rule, previous, found, muted=muted, resolution=resolution)
        if state is not None:
            result.states.append(state)
        result.notifications.extend(sent)

    present: set[tuple[str, str]] = set()
    for job in sorted(jobs, key=lambda j: (j["servicePrincipalId"], j["jobId"])):
        key = (job["servicePrincipalId"], job["jobId"])
        present.add(key)
        memory = memories.get(key)
        found, held, resolutions = _job_conditions(job, memory, by_job.get(key, {}), ctx)
        pending, clearing = _confirm(found, held, by_job.get(key, {}), memory, ctx)
        for rule in RULES:
            if rule in held and rule in config.rules:
                continue  # said by the quarantine or pause alert; evaluated again once it clears
            apply(job, rule, found[rule], resolutions.get(rule, "condition cleared"))
        remembered: JobMemory = {
            "servicePrincipalId": job["servicePrincipalId"],
            "servicePrincipalName": job.get("servicePrincipalName"),
            "jobId": job["jobId"],
            "templateId": job.get("templateId"),
            "objectCount": object_count(job),
            "objectCountAt": memory["objectCountAt"] if memory is not None else None,
            "pending": pending,
            "clearing": clearing,
        }
        if memory is None or remembered["objectCount"] != memory["objectCount"]:
            remembered["objectCountAt"] = ctx.at
        if remembered != {"pending": {}, "clearing": {}, **(memory or {})}:
            result.memories.append(remembered)

    # Jobs seen before and gone now were removed by the poll (it deletes only confirmed ones).
    for key, memory in sorted(memories.items()):
        if key in present:
            continue
        job_view: dict[str, Any] = {**memory, "troubleshootingUrl": None}
        for rule, state in sorted(by_job.get(key, {}).items()):
            if rule != "removed" and state["status"] == "open":
                step_state, _ = step(ctx, job_view, rule, state, None, muted=True, resolution="job removed")
                if step_state is not None:
                    result.states.append(step_state)
        summary = (
            f"Provisioning job {memory['jobId']} of {memory['servicePrincipalName'] or 'its app'} "
            "is gone from Microsoft Graph: its history stays, nothing watches it any more."
        )
        apply(job_view, "removed", Condition("Removed", summary, {"job": memory["jobId"]}))
        result.forgotten.append(key)
    return result
