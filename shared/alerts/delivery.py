"""Delivering the outbox: every due row, to its target, in order, with retries across runs.

Runs under the evaluation lease (`shared.alerts.store.acquire_lease`), so no other run sends
the same rows. A row becomes `delivered` only after a 2xx; a failure leaves it `retrying`
with `nextAttemptAt` (1, 2, 4 ... minutes, at most an hour, or the target's Retry-After), and
that target's later rows wait, so a receiver never sees a resolve before its open. A row not
delivered within the policy's `max_age` is given up (`failed`). Only target kinds are logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import aiohttp

from shared import telemetry
from shared.alerts.store import undelivered, update_delivery
from shared.alerts.webhooks import DeliveryPolicy, Target, send
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.storage.documents import unpack_document
from shared.storage.store import Store

log = logging.getLogger("entra_sync_monitor.alerts")


class DeliveryCounts(TypedDict):
    """One run's delivery, for the poll record's `alerts.delivery`."""

    delivered: int
    retrying: int
    failed: int
    waiting: int  # not due yet, or behind a failure of the same target
    attempts: int  # HTTP attempts made


def _next_attempt(now: datetime, runs: int, retry_after: float | None, base: float) -> datetime:
    """When a later run tries again: 1, 2, 4 ... minutes, at most an hour, or Retry-After."""
    delay = min(base * 2 ** max(runs - 1, 0), 3600.0)
    return now + timedelta(seconds=max(delay, retry_after or 0.0))


async def deliver_outbox(store: Store, targets: list[Target], policy: DeliveryPolicy) -> DeliveryCounts:
    """Send every due outbox row, oldest first, each target in order: after a failure, that
    target's later notifications wait for the next run (the receiver sees them in order)."""
    rows = await undelivered(store)
    configured: dict[str, Target] = {target.kind: target for target in targets}
    deadline = time.monotonic() + policy.budget_seconds
    counts: DeliveryCounts = {"delivered": 0, "retrying": 0, "failed": 0, "waiting": 0, "attempts": 0}
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
                telemetry.delivery_failed(store.tenant_id, kind)
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
                telemetry.delivery_failed(store.tenant_id, kind)
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
