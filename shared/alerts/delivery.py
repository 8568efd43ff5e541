"""Delivering alerts: payloads per target, signed webhooks, retries, and the step after a poll.

`alerts_after_poll` is what `run_poll` calls once a poll has stored its jobs. It evaluates
the rules (`shared.alerts.rules`), queues what to send in the outbox and delivers it
(`shared.alerts.store`), and never raises: a failure is logged and put in the poll record's
`alerts` section. One run evaluates and delivers at a time (a lease in the Alerts table), so
overlapping polls neither decide nor send a notification twice.

Targets are secrets (their URLs carry tokens): only their kind (`teams`, `slack`, `webhook`)
is ever logged or stored; error texts are built from status codes and exception class names.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from shared import __version__
from shared.alerts.conditions import AlertConfig
from shared.alerts.records import job_label
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
    undelivered,
    update_delivery,
)
from shared.domain.health import DEFAULT_RULES, HealthRules
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.settings import Settings, SettingsError
from shared.storage.store import Store, open_store, unpack_document

log = logging.getLogger("entra_sync_monitor.alerts")

NOTIFICATION_ID_HEADER = "X-Entra-Sync-Monitor-Notification-Id"
SIGNATURE_HEADER = "X-Entra-Sync-Monitor-Signature"
TIMESTAMP_HEADER = "X-Entra-Sync-Monitor-Timestamp"
OUTBOX_KEEP_DAYS = 30
_KIND_LABELS = {"open": "Alert", "update": "Update", "remind": "Reminder", "resolve": "Resolved"}
_TEAMS_COLORS = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_TEXT_LIMIT = 1_000


@dataclass(frozen=True)
class Target:
    kind: str  # teams | slack | webhook
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)


def targets_of(settings: AlertSettings) -> list[Target]:
    targets = []
    if settings.teams_webhook_url:
        targets.append(Target("teams", settings.teams_webhook_url))
    if settings.slack_webhook_url:
        targets.append(Target("slack", settings.slack_webhook_url))
    if settings.webhook_url:
        targets.append(Target("webhook", settings.webhook_url, settings.webhook_secret))
    return targets


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


# ---------------------------------------------------------------- payloads


def _label(notification: Mapping[str, Any]) -> str:
    return f"{_KIND_LABELS.get(notification['kind'], 'Alert')}: {notification['title']} - {job_label(notification)}"


def _facts(notification: Mapping[str, Any]) -> list[tuple[str, str]]:
    facts = [("job", job_label(notification)), *notification["facts"].items()]
    facts.append(("opened", notification["openedAt"]))
    if notification.get("resolvedAt"):
        facts.append(("resolved", notification["resolvedAt"]))
    return [(name, str(value)[:_TEXT_LIMIT]) for name, value in facts]


def _https(url: object) -> str | None:
    return url if isinstance(url, str) and url.startswith("https://") else None


def generic_payload(notification: Mapping[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON (docs/alerts.md): the notification as data."""
    return {
        "type": "entra-sync-monitor.alert",
        "version": 1,
        "notificationId": notification["notificationId"],
        "kind": notification["kind"],
        "at": notification["at"],
        "alert": {
            key: notification[key]
            for key in (
                "alertId",
                "rule",
                "severity",
                "status",
                "title",
                "headline",
                "summary",
                "facts",
                "episode",
                "reminder",
                "openedAt",
                "resolvedAt",
            )
        },
        "job": {
            key: notification[key]
            for key in (
                "tenantId",
                "servicePrincipalId",
                "servicePrincipalName",
                "jobId",
                "templateId",
                "troubleshootingUrl",
            )
        },
    }


def teams_payload(notification: Mapping[str, Any]) -> dict[str, Any]:
    """An Adaptive Card 1.4 in the message envelope Teams incoming webhooks and the Workflows
    "post to a channel when a webhook request is received" template accept."""
    color = "Good" if notification["kind"] == "resolve" else _TEAMS_COLORS.get(notification["severity"], "Default")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _label(notification), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": notification["headline"], "color": color, "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": notification["summary"], "wrap": True, "spacing": "Small"},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(notification)]},
        {
            "type": "TextBlock",
            "text": f"{notification['severity']} - alert {notification['alertId']} - "
            f"notification {notification['notificationId']}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        },
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if url := _https(notification.get("troubleshootingUrl")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Troubleshoot in Entra", "url": url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notification: Mapping[str, Any]) -> dict[str, Any]:
    """Incoming-webhook message: `text` (notifications, fallback) and Block Kit `blocks`."""
    label = _label(notification)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": label[:150], "emoji": False}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{_slack_escape(notification['headline'])}*\n{_slack_escape(notification['summary'])}"[:3000],
            },
        },
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{_slack_escape(name)}*\n{_slack_escape(value)}"[:2000]}
        for name, value in _facts(notification)[:10]  # Slack takes at most 10 fields
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if url := _https(notification.get("troubleshootingUrl")):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Troubleshoot in Entra"}, "url": url}
                ],
            }
        )
    context = (
        f"{notification['severity']} | alert {notification['alertId']} | notification {notification['notificationId']}"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{label}: {notification['headline']}"[:3000], "blocks": blocks}


def render(target_kind: str, notification: Mapping[str, Any]) -> bytes:
    """The request body for a target: the same bytes on every attempt."""
    payload = {"teams": teams_payload, "slack": slack_payload}.get(target_kind, generic_payload)(notification)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `{timestamp}.{raw body}` under the shared secret."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None, tolerance: float = 300
) -> bool:
    """What a receiver does (docs/alerts.md): recompute, compare in constant time, refuse
    timestamps older or newer than `tolerance` seconds (a replayed request)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))


def request_headers(target: Target, notification_id: str, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"entra-sync-monitor/{__version__}",
        NOTIFICATION_ID_HEADER: notification_id,
    }
    if target.secret:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(target.secret, timestamp, body)
    return headers


# ---------------------------------------------------------------- sending


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 4  # per notification and target in one run
    base_delay: float = 1.0  # seconds, doubled each attempt, with jitter
    max_delay: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After is waited out between runs instead
    timeout: float = 10.0  # per request
    budget_seconds: float = 120.0  # a run stops sending after this (the rest waits for the next)
    max_age: timedelta = timedelta(hours=24)
    retry_later_base: float = 60.0  # seconds before a later run retries; doubled per failed run

    def backoff(self, attempt: int) -> float:
        """Exponential with equal jitter: half fixed, half random."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


def policy_of(settings: AlertSettings) -> DeliveryPolicy:
    return DeliveryPolicy(attempts=settings.delivery_attempts, max_age=timedelta(hours=settings.delivery_max_age_hours))


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int = 0
    error: str = ""  # never the URL: a status or an exception class
    retryable: bool = True
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())  # delay-seconds (integers by the RFC; decimals taken too)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < 86_400 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0) if when.tzinfo else None


async def post_once(
    session: aiohttp.ClientSession, target: Target, notification_id: str, body: bytes, policy: DeliveryPolicy
) -> Attempt:
    headers = request_headers(target, notification_id, body)
    try:
        async with session.post(
            target.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout),
        ) as response:
            text = (await response.content.read(2048)).decode("utf-8", "replace")
            status = response.status
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except TimeoutError:
        return Attempt(False, error="timed out")
    except aiohttp.ClientConnectionError as error:
        return Attempt(False, error=f"connection failed ({type(error).__name__})")
    except aiohttp.ClientError as error:
        return Attempt(False, error=type(error).__name__)
    if 200 <= status < 300:
        # Teams' older connectors answer 200 with an error text when they could not post.
        if target.kind == "teams" and "failed with error" in text.lower():
            return Attempt(False, status, f"HTTP {status}: Teams could not post the message")
        return Attempt(True, status)
    retryable = status in _RETRYABLE_STATUS
    return Attempt(False, status, f"HTTP {status}", retryable, retry_after)


Sleep = Callable[[float], Awaitable[None]]


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    notification: Mapping[str, Any],
    policy: DeliveryPolicy,
    *,
    deadline: float,
    sleep: Sleep = asyncio.sleep,
) -> tuple[Attempt, int]:
    """POST one notification to one target with bounded retries; (last attempt, attempts)."""
    body = render(target.kind, notification)
    attempt = Attempt(False, error="not attempted")
    for number in range(1, policy.attempts + 1):
        attempt = await post_once(session, target, notification["notificationId"], body, policy)
        if attempt.ok or not attempt.retryable or number == policy.attempts:
            return attempt, number
        delay = attempt.retry_after if attempt.retry_after is not None else policy.backoff(number)
        if delay > policy.max_retry_after or time.monotonic() + delay > deadline:
            return attempt, number  # waited out between runs (nextAttemptAt)
        await sleep(delay)
    return attempt, policy.attempts


def _next_attempt(now: datetime, runs: int, retry_after: float | None, base: float) -> datetime:
    """When a later run tries again: 1, 2, 4 ... minutes, at most an hour, or Retry-After."""
    delay = min(base * 2 ** max(runs - 1, 0), 3600.0)
    return now + timedelta(seconds=max(delay, retry_after or 0.0))


async def deliver_outbox(store: Store, targets: list[Target], policy: DeliveryPolicy) -> dict[str, Any]:
    """Send every due outbox row, oldest first, each target in order: after a failure, that
    target's later notifications wait for the next run (the receiver sees them in order)."""
    rows = await undelivered(store)
    configured = {target.kind: target for target in targets}
    deadline = time.monotonic() + policy.budget_seconds
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "waiting": 0, "attempts": 0}
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_target.setdefault(str(row.get("target")), []).append(row)

    async def one_target(kind: str, queue: list[dict[str, Any]], session: aiohttp.ClientSession) -> None:
        target = configured.get(kind)
        blocked = False
        for row in queue:
            now = datetime.now(UTC)
            created = parse_timestamp(row.get("createdAt"))
            if created is not None and now - created > policy.max_age:
                why = f"given up after {policy.max_age.total_seconds() / 3600:g} h"
                last = row.get("lastError") or ("target not configured" if target is None else "not attempted")
                await update_delivery(store, row, {"status": "failed", "lastError": f"{why}: {last}"[:500]})
                counts["failed"] += 1
                log.warning("alert notification %s to %s given up: %s", row["notificationId"], kind, last)
                continue
            next_at = parse_timestamp(row.get("nextAttemptAt"))
            if target is None or blocked or (next_at is not None and next_at > now) or time.monotonic() > deadline:
                blocked = blocked or target is not None
                counts["waiting"] += 1
                continue
            attempt, tries = await send(session, target, unpack_document(row), policy, deadline=deadline)
            counts["attempts"] += tries
            attempts = int(row.get("attempts") or 0) + tries
            done = datetime.now(UTC)
            if attempt.ok:
                changes: dict[str, Any] = {
                    "status": "delivered",
                    "deliveredAt": isoformat_utc(done),
                    "attempts": attempts,
                    "lastStatusCode": attempt.status,
                }
                counts["delivered"] += 1
            else:
                runs = int(row.get("runs") or 0) + 1
                changes = {
                    "status": "retrying",
                    "attempts": attempts,
                    "runs": runs,
                    "lastError": attempt.error[:500],
                    "lastStatusCode": attempt.status,
                    "nextAttemptAt": isoformat_utc(
                        _next_attempt(done, runs, attempt.retry_after, policy.retry_later_base)
                    ),
                }
                counts["retrying"] += 1
                blocked = True
                log.warning(
                    "alert notification %s to %s not delivered after %d attempts: %s",
                    row["notificationId"],
                    kind,
                    tries,
                    attempt.error,
                )
            await update_delivery(store, row, changes)

    if by_target:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one_target(kind, queue, session) for kind, queue in by_target.items()))
    return counts


# ---------------------------------------------------------------- the step after a poll


async def run_alerts(
    store: Store,
    settings: AlertSettings,
    *,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
    health: HealthRules = DEFAULT_RULES,
) -> dict[str, Any]:
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
