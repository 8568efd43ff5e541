"""The alert step after a poll: evaluate, queue, deliver, and report into the poll record.

`alerts_after_poll` is what `run_poll` calls once a poll has stored its jobs. It evaluates
the rules (`shared.alerts.rules`), queues what to send in the outbox (`shared.alerts.store`)
and delivers it (`shared.alerts.delivery`), and never raises: a failure is logged and put in
the poll record's `alerts` section. One run evaluates and delivers at a time (a lease in the
Alerts table), so overlapping polls neither decide nor send a notification twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict

from shared import telemetry
from shared.alerts.conditions import AlertConfig
from shared.alerts.delivery import DeliveryCounts, deliver_outbox
from shared.alerts.error_codes import RECENT_HOURS, CodeCount, JobKey, failures_by_code, learning, unknown_codes
from shared.alerts.records import JobMemory, TargetKind
from shared.alerts.rules import evaluate
from shared.alerts.settings import AlertSettings, load_alert_settings
from shared.alerts.store import (
    acquire_lease,
    ensure_alert_tables,
    load_alert_rows,
    load_mutes,
    purge_expired_mutes,
    purge_outbox,
    release_lease,
    save_evaluation,
)
from shared.alerts.webhooks import DeliveryPolicy, targets_of
from shared.domain.health import DEFAULT_RULES, HealthRules
from shared.domain.provisioning_logs import hour_of
from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings, SettingsError
from shared.storage.store import Store, open_store

log = logging.getLogger("entra_sync_monitor.alerts")

OUTBOX_KEEP_DAYS = 30


class AlertsSection(TypedDict):
    """The poll record's `alerts` section (docs/alerts.md): a run's outcome, or why there was none."""

    status: Literal["succeeded", "partial", "failed", "skipped"]
    reason: NotRequired[str]  # skipped
    error: NotRequired[str]  # failed: a setting's name or an error class, never a secret
    targets: NotRequired[list[TargetKind]]
    notifications: NotRequired[dict[str, int]]  # queued by kind, and statesWritten
    outboxRowsQueued: NotRequired[int]
    delivery: NotRequired[DeliveryCounts]
    openAlerts: NotRequired[int]


def alert_config(settings: AlertSettings, health: HealthRules = DEFAULT_RULES) -> AlertConfig:
    return AlertConfig(
        rules=settings.rules,
        reminder_hours=settings.reminder_hours,
        quarantine_reminder_days=settings.quarantine_reminder_days,
        failing_after=settings.failing_after,
        object_drop_percent=settings.object_drop_percent,
        object_drop_accept_hours=settings.object_drop_accept_hours,
        confirm_minutes=settings.confirm_minutes,
        health=health,
    )


def policy_of(settings: AlertSettings) -> DeliveryPolicy:
    return DeliveryPolicy(attempts=settings.delivery_attempts, max_age=timedelta(hours=settings.delivery_max_age_hours))


async def recent_failures(
    store: Store, memories: Mapping[JobKey, JobMemory], now: datetime, history_days: int
) -> tuple[dict[JobKey, list[CodeCount]], dict[JobKey, set[str]]]:
    """Each job's failure codes of the last RECENT_HOURS (from the stored error groups), and,
    for codes a job's memory lacks once it is past learning, which of them its older stored
    history already holds: one query per such job, once per code (the memory keeps it)."""
    since_hour = hour_of(now - timedelta(hours=RECENT_HOURS))
    days = sorted({since_hour[:10], isoformat_utc(now)[:10]})
    errors = failures_by_code(await store.recent_error_rows(since_hour, days))
    first_day = isoformat_utc(now - timedelta(days=history_days))[:10]
    seen_before: dict[JobKey, set[str]] = {}
    for key, codes in errors.items():
        memory = memories.get(key)
        if memory is None or learning(memory.get("errorCodesSince"), now):
            continue  # learning: every code is learned silently, no lookup needed
        if unknown := unknown_codes(codes, memory.get("errorCodes")):
            seen_before[key] = unknown & await store.job_error_codes(*key, first_day, since_hour)
    return errors, seen_before


async def run_alerts(
    store: Store,
    settings: AlertSettings,
    *,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
    health: HealthRules = DEFAULT_RULES,
    provisioning_logs: bool = False,
    history_days: int = 30,
) -> AlertsSection:
    """Evaluate every job's alerts as of `now` (default: the current time), queue the
    notifications and deliver what is due. Returns a summary for the poll record. With
    `provisioning_logs`, the error groups the polls stored feed the alerts (top error codes,
    newErrorCode), looking back `history_days` for codes a job has shown before."""
    now = now or datetime.now(UTC)
    await ensure_alert_tables(store)
    lease = await acquire_lease(store)
    if lease is None:
        return {"status": "skipped", "reason": "another run is evaluating alerts"}
    try:
        jobs = await store.list_jobs()
        rows = await load_alert_rows(store)
        mutes = await load_mutes(store)
        errors, seen_before = (
            await recent_failures(store, rows.memories, now, history_days) if provisioning_logs else (None, None)
        )
        evaluation = evaluate(
            jobs,
            rows.states,
            rows.memories,
            mutes,
            now=now,
            config=alert_config(settings, health),
            tenant_id=store.tenant_id,
            errors=errors,
            seen_before=seen_before,
        )
        targets = targets_of(settings)
        queued = await save_evaluation(store, evaluation, [target.kind for target in targets])
        delivery = await deliver_outbox(store, targets, policy or policy_of(settings))
        await purge_outbox(store, datetime.now(UTC) - timedelta(days=OUTBOX_KEEP_DAYS))
        await purge_expired_mutes(store, now)
    finally:
        await release_lease(store, lease)
    states = dict(rows.states)
    states.update({(s["servicePrincipalId"], s["jobId"], s["rule"]): s for s in evaluation.states})
    # Metrics from what this step read anyway: the tenant's jobs after the poll, its open alerts.
    telemetry.tenant_state(store.tenant_id, jobs, [s["severity"] for s in states.values() if s["status"] == "open"])
    return {
        "status": "partial" if delivery["retrying"] or delivery["failed"] else "succeeded",
        "targets": [target.kind for target in targets],
        "notifications": evaluation.counts(),
        "outboxRowsQueued": queued,
        "delivery": delivery,
        "openAlerts": sum(1 for state in states.values() if state["status"] == "open"),
    }


def _redact(text: str, settings: AlertSettings | None) -> str:
    if settings is not None:
        for secret in (
            settings.teams_webhook_url,
            settings.slack_webhook_url,
            settings.webhook_url,
            settings.webhook_secret,
        ):
            if secret:
                text = text.replace(secret, "<redacted>")
    return text[:500]


async def alerts_after_poll(
    settings: Settings, record: dict[str, Any], *, store: Store | None = None
) -> dict[str, Any]:
    """The alert step of a poll that stored its jobs: returns the record with an `alerts`
    section (also stored with the poll record). Never raises: alerts failing must not fail
    the poll, so the failure is logged and recorded instead."""
    if record.get("work") and record.get("status") != "dispatched":
        telemetry.poll_ended(record)  # a fanned-out poll ends here, completed from its work items
    alert_settings: AlertSettings | None = None
    section: AlertsSection
    try:
        store = store or open_store(settings)
        alert_settings = load_alert_settings(tenant_suffix=settings.alert_settings_suffix)
        section = await run_alerts(
            store,
            alert_settings,
            health=settings.health_rules,
            provisioning_logs=settings.provisioning_logs != "off",
            history_days=settings.retention_days,
        )
    except SettingsError as error:
        section = {"status": "failed", "error": f"configuration: {error}"}
    except Exception as error:  # storage down, a bug: the poll's own result stands
        section = {"status": "failed", "error": _redact(f"{type(error).__name__}: {error}", alert_settings)}
    if section["status"] == "failed":
        log.error("alerts failed: %s", section["error"])
    record = {**record, "alerts": section}
    try:
        if store is not None:
            await store.save_poll(record)
    except Exception as error:
        log.warning("could not add the alerts section to poll %s: %s", record.get("pollId"), type(error).__name__)
    log.info("alerts %s", json.dumps(section, separators=(",", ":")))
    return record
