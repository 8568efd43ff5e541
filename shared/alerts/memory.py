"""What alerting remembers of each job between evaluations, and the hysteresis it feeds.

A job's memory row (`JobMemory`) keeps its last object count (the baseline of
`objectCountDrop`) and, for the confirmed rules (`failing`, `stale`), since when a condition
has been pending (held, alert not yet open) or clearing (gone, alert still open). `confirm`
applies that hysteresis to a job's findings; `remember` says what the row becomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.alerts.conditions import Findings, object_count
from shared.alerts.error_codes import KnownCode
from shared.alerts.records import AlertState, JobMemory, RuleName
from shared.domain.model import Job
from shared.domain.timestamps import isoformat_utc, parse_timestamp

# Rules that open only after their condition held for ALERT_CONFIRM_MINUTES across polls, and
# resolve only after it stayed clear as long: a job at the edge of a rule must not flap.
CONFIRMED_RULES: frozenset[RuleName] = frozenset({"stale", "failing"})


def confirm(
    found: Findings,
    held: set[RuleName],
    states: Mapping[str, AlertState],
    memory: JobMemory | None,
    *,
    now: datetime,
    confirm_minutes: float,
) -> tuple[dict[str, str], dict[str, str]]:
    """Hysteresis for CONFIRMED_RULES, in place on `found` and `held`: a condition opens its
    alert only once it has held for `confirm_minutes`, and an open alert resolves only once
    its condition has stayed clear as long (held open meanwhile). Returns what the job's
    memory keeps: since when each rule has been pending and clearing."""
    window = timedelta(minutes=confirm_minutes)
    at = isoformat_utc(now)
    was_pending = (memory.get("pending") if memory is not None else None) or {}
    was_clearing = (memory.get("clearing") if memory is not None else None) or {}
    pending: dict[str, str] = {}
    clearing: dict[str, str] = {}

    def waiting(rule: str, was: Mapping[str, str], now_waiting: dict[str, str]) -> bool:
        """True (and remembered) while the change has lasted less than the window."""
        since = was.get(rule, at)
        began = parse_timestamp(since)
        if began is None or now - began < window:
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


def remember(
    job: Job,
    memory: JobMemory | None,
    pending: dict[str, str],
    clearing: dict[str, str],
    *,
    at: str,
    codes: tuple[dict[str, KnownCode], str] | None = None,
) -> JobMemory | None:
    """The job's memory row after this evaluation; None when it is unchanged (no write).
    The object count's time moves only when the count changes. `codes` are the job's known
    error codes and since when (None: the provisioning logs are off; what is kept stays)."""
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
        remembered["objectCountAt"] = at
    if codes is not None:
        remembered["errorCodes"], remembered["errorCodesSince"] = codes
    elif memory is not None and "errorCodesSince" in memory:
        remembered["errorCodes"] = memory.get("errorCodes") or {}
        remembered["errorCodesSince"] = memory["errorCodesSince"]
    if remembered == {"pending": {}, "clearing": {}, **(memory or {})}:
        return None
    return remembered
