"""Alert rules: which job conditions people are told about, once, and when they clear.

Pure: `evaluate(jobs, states, memories, mutes, now=..., config=..., tenant_id=...)` compares the
jobs as the last poll stored them with each alert's previous state and returns the states to
write and the notifications to send (open, update, remind, resolve). It walks every job
through the rest of the package:

- `shared.alerts.conditions`: what each rule finds in the job now, and which rules are held;
- `shared.alerts.memory`: the hysteresis of the confirmed rules, and the job's memory row;
- `shared.alerts.lifecycle`: each alert's transition and the notifications it sends.

Storage and delivery live in `shared.alerts.store` and `shared.alerts.delivery`;
docs/alerts.md explains the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.alerts.conditions import AlertConfig, Condition, JobErrors, judge_job
from shared.alerts.error_codes import CodeCount, JobKey, KnownCode, learn_codes
from shared.alerts.lifecycle import Context, is_muted, step
from shared.alerts.memory import confirm, remember
from shared.alerts.records import (
    NOTIFICATION_KINDS,
    RULES,
    AlertedJob,
    AlertState,
    JobMemory,
    MuteRow,
    Notification,
    RuleName,
)
from shared.domain.model import Job


@dataclass
class Evaluation:
    """What one evaluation decided: rows to write and notifications to queue."""

    states: list[AlertState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    memories: list[JobMemory] = field(default_factory=list)
    forgotten: list[tuple[str, str]] = field(default_factory=list)  # job memories to delete

    def counts(self) -> dict[str, int]:
        """Notifications queued by kind, and alert states written."""
        by_kind: dict[str, int] = {kind: 0 for kind in NOTIFICATION_KINDS}
        for notification in self.notifications:
            by_kind[notification["kind"]] += 1
        return {**by_kind, "statesWritten": len(self.states)}


def evaluate(
    jobs: Sequence[Job],
    states: Mapping[tuple[str, str, str], AlertState],
    memories: Mapping[tuple[str, str], JobMemory],
    mutes: Sequence[MuteRow],
    *,
    now: datetime,
    config: AlertConfig,
    tenant_id: str,
    errors: Mapping[JobKey, Sequence[CodeCount]] | None = None,
    seen_before: Mapping[JobKey, set[str]] | None = None,
) -> Evaluation:
    """Every job's alerts after a poll. `states` by (servicePrincipalId, jobId, rule),
    `memories` by (servicePrincipalId, jobId): what the previous evaluation stored. With the
    provisioning logs on, `errors` holds each job's recent failure codes and `seen_before`
    which of the codes its memory lacks its older stored history already holds
    (`shared.alerts.error_codes`); None: the logs are off."""
    ctx = Context(tenant_id, now, config)
    result = Evaluation()
    by_job: dict[tuple[str, str], dict[str, AlertState]] = {}
    for (sp_id, job_id, rule), state in states.items():
        by_job.setdefault((sp_id, job_id), {})[rule] = state

    def apply(job: AlertedJob, rule: RuleName, found: Condition | None, resolution: str = "condition cleared") -> None:
        previous = by_job.get((job["servicePrincipalId"], job["jobId"]), {}).get(rule)
        muted = is_muted(mutes, job["servicePrincipalId"], job["jobId"], rule, now)
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
        job_states = by_job.get(key, {})
        view: JobErrors | None = None
        codes: tuple[dict[str, KnownCode], str] | None = None
        if errors is not None:
            recent = errors.get(key, ())
            known = memory.get("errorCodes") if memory is not None else None
            since = memory.get("errorCodesSince") if memory is not None else None
            before = (seen_before or {}).get(key, set())
            codes = learn_codes(known, since, recent, before, now)
            view = JobErrors(recent, codes[0])
        found, held, resolutions = judge_job(job, memory, job_states, now, config, view)
        pending, clearing = confirm(found, held, job_states, memory, now=now, confirm_minutes=config.confirm_minutes)
        for rule in RULES:
            if rule in held and rule in config.rules:
                continue  # said by the quarantine or pause alert; evaluated again once it clears
            apply(job, rule, found[rule], resolutions.get(rule, "condition cleared"))
        if (remembered := remember(job, memory, pending, clearing, at=ctx.at, codes=codes)) is not None:
            result.memories.append(remembered)

    # Jobs seen before and gone now were removed by the poll (it deletes only confirmed ones).
    for key, memory in sorted(memories.items()):
        if key in present:
            continue
        job_view: AlertedJob = {
            "servicePrincipalId": memory["servicePrincipalId"],
            "servicePrincipalName": memory.get("servicePrincipalName"),
            "jobId": memory["jobId"],
            "templateId": memory.get("templateId"),
            "troubleshootingUrl": None,
        }
        for rule, state in sorted(by_job.get(key, {}).items()):
            if rule != "removed" and state["status"] == "open":
                step_state, _ = step(ctx, job_view, state["rule"], state, None, muted=True, resolution="job removed")
                if step_state is not None:
                    result.states.append(step_state)
        summary = (
            f"Provisioning job {memory['jobId']} of {memory['servicePrincipalName'] or 'its app'} "
            "is gone from Microsoft Graph: its history stays, nothing watches it any more."
        )
        apply(job_view, "removed", Condition("Removed", summary, {"job": memory["jobId"]}))
        result.forgotten.append(key)
    return result
