"""A deployment that watches several tenants polls each on its own (docs/multitenant.md).

With a work queue, the timer sends one `tenantPoll` message per enabled tenant and returns;
whichever instance takes a message polls that tenant, as a single-tenant deployment's timer
would (and a large tenant fans out further, shared/fanout.py). So one tenant that is slow,
throttled or refused holds up no other: each has its own Graph client, its own throttling
(Graph counts requests per app and tenant), its own deadline and its own poll record. Without
a queue, the tenants are polled in this run, a few at a time, each failure its own.

A message carries the poll's id and start, so a retried one stores the same record; one that
waited in the queue past a newer poll of its tenant is dropped as superseded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared import telemetry
from shared.domain.poll_record import PollRecord, no_graph_requests
from shared.domain.tenants import Tenant
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.domain.work import DISPATCHED, ITEM_VERSION, TENANT_POLL, TenantPoll
from shared.poll import PollFailedError, poll_and_alert
from shared.settings import Settings
from shared.storage.store import open_store
from shared.storage.work_queue import work_queue
from shared.tenants import find_tenant

log = logging.getLogger("entra_sync_monitor.tenants")

INLINE_TENANTS_AT_ONCE = 4  # tenants polled at once when there is no queue
# The longest Retry-After one tenant's poll waits out; a longer one leaves those reads to the
# tenant's next poll, so a throttled tenant holds a worker (or an inline slot) for seconds, not
# for its whole deadline, while the other tenants wait for one.
TENANT_RETRY_WAIT_MAX_SECONDS = 30.0
# Best to worst: a poll not done yet (dispatched, or its message still queued) ranks below one
# done with errors, above one that failed.
_STATUS_ORDER = ("succeeded", "partial", DISPATCHED, "queued", "failed")


def worst_status(records: Iterable[Mapping[str, Any]]) -> str:
    """The worst status among tenants' poll records (succeeded when there are none)."""
    statuses = [str(record.get("status")) for record in records]
    return max((s for s in statuses if s in _STATUS_ORDER), key=_STATUS_ORDER.index, default="succeeded")


def tenant_poll(tenant: Tenant, *, trigger: str, discover: bool, past_due: bool) -> TenantPoll:
    return {
        "v": ITEM_VERSION,
        "kind": TENANT_POLL,
        "tenantId": tenant.tenant_id,
        "pollId": str(uuid.uuid4()),
        "pollStartedAt": isoformat_utc(datetime.now(UTC)),
        "trigger": trigger,
        "discover": discover,
        "pastDue": past_due,
    }


def tenant_settings(settings: Settings, tenant: Tenant) -> Settings:
    """A tenant's settings for its poll among others: its own, and a bounded wait on throttling."""
    return dataclasses.replace(settings.for_tenant(tenant), graph_retry_wait_max_seconds=TENANT_RETRY_WAIT_MAX_SECONDS)


def _brief(tenant_id: str, record: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "pollId", "startedAt", "endedAt", "jobsRead", "jobsChanged", "errorCount")
    return {"tenantId": tenant_id, **{key: record.get(key) for key in keys}}


async def poll_every_tenant(
    settings: Settings, tenants: list[Tenant], *, trigger: str, discover: bool, past_due: bool, inline: bool
) -> dict[str, Any]:
    """Poll every tenant given; returns what was done for each (`tenants`), and the worst status."""
    polls = [tenant_poll(tenant, trigger=trigger, discover=discover, past_due=past_due) for tenant in tenants]
    queue = None if inline else work_queue(settings)
    if queue is not None and polls:
        try:
            await queue.send(polls)
        except Exception as error:  # the queue service is down or absent: poll in this run
            log.warning("work queue unavailable (%s); polling the tenants in this run", type(error).__name__)
        else:
            log.info("dispatched the polls of %d tenants", len(polls))
            return {
                "status": DISPATCHED,
                "trigger": trigger,
                "queue": queue.name,
                "tenants": [
                    _brief(
                        poll["tenantId"],
                        {"status": DISPATCHED, "pollId": poll["pollId"], "startedAt": poll["pollStartedAt"]},
                    )
                    for poll in polls
                ],
            }
    limit = asyncio.Semaphore(INLINE_TENANTS_AT_ONCE)
    by_id = {tenant.tenant_id: tenant for tenant in tenants}

    async def one(poll: TenantPoll) -> dict[str, Any]:
        async with limit:
            return _brief(
                poll["tenantId"], await poll_tenant_now(tenant_settings(settings, by_id[poll["tenantId"]]), poll)
            )

    briefs = list(await asyncio.gather(*(one(poll) for poll in polls)))
    return {"status": worst_status(briefs), "trigger": trigger, "tenants": briefs}


async def poll_tenant_now(settings: Settings, poll: TenantPoll) -> dict[str, Any]:
    """One tenant's poll and alert step (settings already the tenant's); a failed poll is its
    record, never an exception: the other tenants go on, and a retry would fail the same way."""
    try:
        return await poll_and_alert(
            settings,
            trigger=poll["trigger"],
            past_due=poll["pastDue"],
            discover=poll["discover"],
            poll_id=poll["pollId"],
            started=parse_timestamp(poll["pollStartedAt"]),
        )
    except PollFailedError as error:
        log.warning("tenant %s: poll failed: %s", settings.tenant_id, error)
        return dict(error.record)


async def do_tenant_poll(settings: Settings, poll: TenantPoll) -> dict[str, Any] | None:
    """The queue trigger's part for a `tenantPoll` message; None when there was nothing to do
    (the tenant is gone or disabled, the poll already stored, or a newer one of it ran)."""
    tenant = await find_tenant(settings, poll["tenantId"])
    if tenant is None or not tenant.enabled:
        log.info("tenant poll of %s dropped: the tenant is not watched", poll["tenantId"])
        return None
    own = tenant_settings(settings, tenant)
    store = open_store(own)
    await store.ensure_tables()
    if await store.poll_with_etag(poll["pollStartedAt"], poll["pollId"]) is not None:
        return None  # done by an earlier try
    last = await store.last_poll()
    if last is not None and str(last.get("startedAt") or "") > poll["pollStartedAt"]:
        log.info("tenant poll of %s dropped: a newer poll of it already ran", poll["tenantId"])
        return None
    return await poll_tenant_now(own, poll)


async def record_poisoned_tenant_poll(settings: Settings, poll: TenantPoll) -> None:
    """A tenant poll that failed on every try (storage, a bug): its failure becomes the tenant's
    poll record, so the tenant shows it instead of silently missing a poll."""
    tenant = await find_tenant(settings, poll["tenantId"])
    if tenant is None:
        log.error("a poisoned poll of tenant %s, no longer watched, was dropped", poll["tenantId"])
        return
    own = settings.for_tenant(tenant)
    started = parse_timestamp(poll["pollStartedAt"]) or datetime.now(UTC)
    record = PollRecord(poll["pollId"], own.tenant_id, started, poll["trigger"], poll["pastDue"])
    record.error("workItemPoisoned", "the tenant's poll failed on every try of its work item")
    summary = record.to_dict(
        status="failed",
        ended_at=datetime.now(UTC),
        graph=no_graph_requests(),
    )
    store = open_store(own)
    await store.ensure_tables()
    await store.save_poll(summary)
    telemetry.poll_ended(summary)  # a poll of the tenant that ended, failed
