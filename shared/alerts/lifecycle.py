"""One alert's lifecycle: open, update, remind, resolve, and what each transition says.

`step` takes an alert's previous state and its rule's finding now, and returns the state to
store (None: unchanged) and the notifications to queue. A muted alert still opens and
resolves, silently; an alert that opened during a mute is announced once the mute ends.
Every notification id comes from the alert's identity, episode, kind and reminder/update
number (`shared.alerts.records.notification_id`), never the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.alerts.conditions import AlertConfig, Condition
from shared.alerts.records import (
    SEVERITY,
    AlertedJob,
    AlertState,
    MuteRow,
    Notification,
    NotificationKind,
    RuleName,
    alert_id,
    mute_covers,
    mute_in_force,
    notification_id,
)
from shared.domain.timestamps import isoformat_utc, parse_timestamp


@dataclass(frozen=True)
class Context:
    """One evaluation: whose alerts, as of when, under which knobs."""

    tenant_id: str
    now: datetime
    config: AlertConfig

    @property
    def at(self) -> str:
        return isoformat_utc(self.now)


def is_muted(mutes: Sequence[MuteRow], sp_id: str, job_id: str, rule: RuleName, now: datetime) -> bool:
    return any(mute_covers(mute, sp_id, job_id, rule) and mute_in_force(mute, now) for mute in mutes)


def _headline(
    rule: RuleName, kind: NotificationKind, state: AlertState, previous: AlertState | None, live: dict[str, str]
) -> str:
    reason = state["key"] or ""
    if kind == "open":
        return {
            "quarantined": f"Job entered quarantine: {reason}",
            "failing": "Job is failing",
            "stale": "Job has stopped: no run ended and no progress seen within its allowed time",
            "escrowsNearThreshold": "Escrows are growing toward Entra's quarantine thresholds",
            "newErrorCode": f"New error code: {state['facts'].get('error codes', reason)}",
            "paused": state["title"] if state["severity"] == "error" else "Job is paused or disabled",
            "firstCycleNotFinished": "First cycle has not finished",
            "objectCountDrop": "Synchronized object count dropped sharply",
            "removed": "Job was removed",
        }.get(rule, state["title"])
    if kind == "update":
        if rule == "paused":  # Entra's own pause and an admin's are told apart
            return f"Pause changed: {state['title']}"
        if rule == "newErrorCode":
            return f"Another new error code: {reason}"
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
    ctx: Context, state: AlertState, kind: NotificationKind, previous: AlertState | None, live: dict[str, str]
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


def _new_state(ctx: Context, job: AlertedJob, rule: RuleName, previous: AlertState | None) -> AlertState:
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


def _reminder_due(ctx: Context, state: AlertState, found: Condition) -> bool:
    if state["rule"] in ("removed", "newErrorCode"):
        return False  # a removal, and a new error code, are told once
    if found.milestone > state["milestone"]:
        return True
    if ctx.config.reminder_hours <= 0 or state["lastNotifiedAt"] is None:
        return False
    last = parse_timestamp(state["lastNotifiedAt"])
    return last is not None and ctx.now - last >= timedelta(hours=ctx.config.reminder_hours)


def step(
    ctx: Context,
    job: AlertedJob,
    rule: RuleName,
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
