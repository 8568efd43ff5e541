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
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict

from shared.alerts.conditions import AlertConfig
from shared.alerts.delivery import DeliveryCounts, deliver_outbox
from shared.alerts.records import TargetKind
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


async def run_alerts(
    store: Store,
    settings: AlertSettings,
    *,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
    health: HealthRules = DEFAULT_RULES,
) -> AlertsSection:
    """Evaluate every job's alerts as of `now` (default: the current time), queue the
    notifications and deliver what is due. Returns a summary for the poll record."""
    now = now or datetime.now(UTC)
    await ensure_alert_tables(store)
    lease = await acquire_lease(store)
    if lease is None:
        return {"status": "skipped", "reason": "another run is evaluating alerts"}
    try:
        jobs = await store.list_jobs()
        rows = await load_alert_rows(store)
        mutes = await load_mutes(store)
        evaluation = evaluate(
            jobs,
            rows.states,
            rows.memories,
            mutes,
            now=now,
            config=alert_config(settings, health),
            tenant_id=store.tenant_id,
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
    alert_settings: AlertSettings | None = None
    section: AlertsSection
    try:
        store = store or open_store(settings)
        alert_settings = load_alert_settings()
        section = await run_alerts(store, alert_settings, health=settings.health_rules)
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
