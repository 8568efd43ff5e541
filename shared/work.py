"""Work items: the queue trigger's work, the poison queue's, and a local worker that does both
as the Functions host would (`python -m shared work`, and `poll` for its own items).

An item reads the jobs of its service principals and stores what changed, exactly as a poll
in one run does (shared.poll.read_and_store), then stores its part of the poll's record;
the part that makes the set whole completes the record (shared/fanout.py). Everything an
item writes is keyed by Graph's ids and the item's number, so an item done twice, or by two
workers at once, stores nothing twice; one done already is not read again.

The local worker follows host.json's `extensions.queues` (and the platform's
`AzureFunctionsJobHost__extensions__queues__*` overrides): `batchSize` items at a time, a
failed item retried after `visibilityTimeout`, and one dequeued more than `maxDequeueCount`
times moved to the poison queue. Like the host it holds each message invisible while it
works on it, renewing the lease, so a worker that dies loses only its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from shared import telemetry
from shared.domain.model import ServicePrincipal
from shared.domain.observation import not_observed
from shared.domain.poll_record import PollRecord, no_graph_requests
from shared.domain.work import DISPATCHED, WorkItem, WorkItemError, is_tenant_poll, parse_item
from shared.fanout import complete_if_whole
from shared.graph.errors import GraphUnavailableError
from shared.poll import read_and_store, store_jobs
from shared.settings import Settings, load_settings
from shared.storage.principals import KnownPrincipal
from shared.storage.store import Store, open_store
from shared.storage.work_queue import WorkQueue, work_queue
from shared.tenants import find_tenant

log = logging.getLogger("entra_sync_monitor.work")

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
_POISONED_REASON = "its work item failed on every try (poison queue)"


async def run_work_item(content: str | bytes) -> None:
    """The queue trigger's entry point: settings are read (and checked) first."""
    settings = load_settings()
    telemetry.configure_telemetry()
    await do_work_item(settings, content)


async def run_poisoned_work_item(content: str | bytes) -> None:
    """The poison queue trigger's entry point."""
    settings = load_settings()
    telemetry.configure_telemetry()
    await record_poisoned_item(settings, content)


async def do_work_item(settings: Settings, content: str | bytes, *, deadline: float | None = None) -> None:
    """The queue trigger's work. Raises on what a retry may cure (storage, a bug, a message
    that cannot be read), so the platform retries the item, then moves it to the poison queue."""
    from shared.tenant_polls import do_tenant_poll

    if (tenant_poll := is_tenant_poll(content)) is not None:
        await do_tenant_poll(settings, tenant_poll)
        return
    item = parse_item(content)
    with telemetry.work_item_span(item["tenantId"], item["pollId"], item["item"], item["items"]) as span:
        settings = await _settings_of(settings, item["tenantId"])
        store = open_store(settings)
        await store.ensure_tables()
        poll, number = (item["pollStartedAt"], item["pollId"]), item["item"]
        if not await store.item_done(poll, number):
            part, unanswered = await _read_item(settings, store, item, deadline)
            telemetry.describe_poll(span, part)
            await store.save_item_part(poll, number, part, outcome="done", unanswered=unanswered)
        await complete_if_whole(settings, store, poll, item["items"])


async def _settings_of(settings: Settings, tenant_id: str) -> Settings:
    """The settings of the item's tenant, as the registry has it (read at most every 15 s)."""
    tenant = await find_tenant(settings, tenant_id)
    if tenant is None:
        raise WorkItemError(f"a work item of tenant {tenant_id}, which this deployment does not watch")
    return settings.for_tenant(tenant)


async def _read_item(settings: Settings, store: Store, item: WorkItem, deadline: float | None) -> tuple[Any, list[str]]:
    from shared.graph.counting import start_counting
    from shared.graph.reader import graph_reader

    counters = start_counting(settings.tenant_id)
    started = datetime.now(UTC)
    record = PollRecord(item["pollId"], settings.tenant_id, started, "workItem")
    record.discovery = bool(item["discovery"])
    by_id: dict[str, ServicePrincipal] = {
        sp["id"]: {"id": sp["id"], "appId": sp.get("appId"), "displayName": sp.get("displayName")}
        for sp in item["principals"]
    }
    record.service_principals_scanned = len(by_id)
    previous, removals = await store.load_jobs_of(list(by_id))
    failure = None
    results: dict[str, Any] = {}
    try:
        results, failure = await read_and_store(
            settings,
            graph_reader(settings),
            store,
            record,
            by_id,
            set(item["mustRead"]),
            previous=previous,
            removals=removals,
            listed=None,
            last=None,
            # An invocation's own time; a local poll that does its items also its own deadline.
            deadline=min(time.monotonic() + settings.poll_deadline_seconds, deadline or float("inf")),
        )
    except GraphUnavailableError as error:  # no token, or Graph down: recorded, not retried
        failure = error.failure
        record.error(error.kind, str(error), **error.where)
        await _mark_not_observed(settings, store, record, previous, error.failure[:300])
    except Exception:
        # The platform retries the item; the Graph requests of this try are kept for the
        # record, since the retry's part does not hold them (best effort: storage may be down).
        if counters.as_dict()["requests"]:
            with contextlib.suppress(Exception):
                await store.save_failed_try((item["pollStartedAt"], item["pollId"]), item["item"], counters.as_dict())
        raise
    if item["discovery"]:
        await _remember_counts(store, item["principals"], results)
    status = "failed" if failure else ("partial" if record.error_count or record.unfinished else "succeeded")
    part = record.to_dict(status=status, ended_at=datetime.now(UTC), graph=counters.as_dict())
    return part, [sp_id for sp_id in by_id if sp_id not in results]


async def _remember_counts(store: Store, principals: list[Any], results: Mapping[str, Any]) -> None:
    """A discovery item's learning: each answered principal's job count, where it changed.
    The dispatch did not store new principals (jobCount None): those without an answer are
    stored unread, so the sweep counts them as left."""
    changed: list[KnownPrincipal] = []
    for sp in principals:
        result = results.get(sp["id"])
        count = len(result.body or []) if result is not None and result.ok else None
        if (count is not None and count != sp.get("jobCount", -1)) or (count is None and sp.get("jobCount") is None):
            changed.append(
                {"id": sp["id"], "appId": sp.get("appId"), "displayName": sp.get("displayName"), "jobCount": count}
            )
    if changed:
        await store.save_principals(changed)


async def _mark_not_observed(
    settings: Settings, store: Store, record: PollRecord, previous: dict[str, Any], reason: str
) -> None:
    record.not_read = {stored.document["servicePrincipalId"]: reason for stored in previous.values()}
    unseen = not_observed(previous, [], [], record.not_read, None, record.started_at, settings.health_rules)
    record.jobs_not_observed = len(unseen)
    await store_jobs(store, unseen, previous, [], record, {})


async def record_poisoned_item(settings: Settings, content: str | bytes) -> None:
    """The poison queue trigger's work: an item that failed on every try becomes its poll's
    part, an error, with its service principals' jobs marked not observed; its poll then
    completes (partial) instead of waiting for it. A tenant's poll becomes its failed record."""
    from shared.tenant_polls import record_poisoned_tenant_poll

    try:
        if (tenant_poll := is_tenant_poll(content)) is not None:
            await record_poisoned_tenant_poll(settings, tenant_poll)
            return
    except WorkItemError:
        pass  # dropped below, as any message that names no poll
    try:
        envelope = json.loads(content)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not all(
        isinstance(envelope.get(key), kind)
        for key, kind in (("pollId", str), ("pollStartedAt", str), ("item", int), ("items", int))
    ):
        log.error("a poisoned work item that names no poll was dropped: %.200r", content)
        return
    try:
        settings = await _settings_of(settings, str(envelope.get("tenantId")))
    except WorkItemError:
        log.error("a poisoned work item of a tenant not watched was dropped (poll %s)", envelope["pollId"])
        return
    poll_id, number = envelope["pollId"], envelope["item"]
    with telemetry.work_item_span(settings.tenant_id, poll_id, number, envelope["items"], poisoned=True):
        await _record_poisoned(settings, envelope)


async def _record_poisoned(settings: Settings, envelope: dict[str, Any]) -> None:
    store = open_store(settings)
    await store.ensure_tables()
    poll_id, number = envelope["pollId"], envelope["item"]
    poll = (envelope["pollStartedAt"], poll_id)
    if not await store.item_done(poll, number):
        listed = envelope.get("principals")
        principals = (
            [sp for sp in listed if isinstance(sp, dict) and isinstance(sp.get("id"), str)]
            if isinstance(listed, list)
            else []
        )
        ids = [sp["id"] for sp in principals]
        started = datetime.now(UTC)
        record = PollRecord(poll_id, settings.tenant_id, started, "workItem")
        record.error(
            "workItemPoisoned",
            f"work item {number + 1} of {envelope['items']} failed on every try; "
            f"its {len(ids)} service principals were not read",
            item=number,
        )
        previous, _ = await store.load_jobs_of(ids)
        await _mark_not_observed(settings, store, record, previous, _POISONED_REASON)
        if envelope.get("discovery") is True:
            await _remember_counts(store, principals, {})
        record.not_read = dict.fromkeys(ids, _POISONED_REASON)
        must_read = envelope.get("mustRead")
        record.unfinished = [sp_id for sp_id in ids if isinstance(must_read, list) and sp_id in must_read]
        part = record.to_dict(
            status="failed",
            ended_at=datetime.now(UTC),
            graph=no_graph_requests(),
        )
        await store.save_item_part(poll, number, part, outcome="poisoned", unanswered=ids)
    await complete_if_whole(settings, store, poll, envelope["items"])


# ---------------------------------------------------------------- the local worker


@dataclass(frozen=True)
class QueueOptions:
    """host.json's `extensions.queues`, as the Functions host reads them."""

    batch_size: int = 16
    new_batch_threshold: int = 8  # another batch is fetched once this few are in hand
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # before a failed item is retried
    max_polling_interval: float = 2.0


def _seconds(value: Any) -> float:
    """host.json's TimeSpan (hh:mm:ss[.fff]) or a number of milliseconds, in seconds."""
    if isinstance(value, int | float):
        return float(value) / 1000
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", str(value).strip())
    if not match:
        raise ValueError(f"not a TimeSpan: {value!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def queue_options(env: Mapping[str, str] | None = None, host_json: Path = HOST_JSON) -> QueueOptions:
    env = os.environ if env is None else env
    queues = dict(json.loads(host_json.read_text()).get("extensions", {}).get("queues", {}))
    prefix = "AzureFunctionsJobHost__extensions__queues__"
    for name, value in env.items():
        if name.startswith(prefix):  # the platform's override of a host.json value
            queues[name[len(prefix) :]] = value
    default = QueueOptions()
    batch_size = int(queues.get("batchSize", default.batch_size))
    return QueueOptions(
        batch_size=batch_size,
        # The host's default for one core: half the batch.
        new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
        max_dequeue_count=int(queues.get("maxDequeueCount", default.max_dequeue_count)),
        visibility_timeout=_seconds(queues.get("visibilityTimeout", "00:00:00")),
        max_polling_interval=_seconds(queues.get("maxPollingInterval", "00:00:02")),
    )


@dataclass
class WorkerTally:
    items: int = 0
    failed: int = 0
    poisoned: int = 0
    poison_recorded: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "failed": self.failed,
            "movedToPoison": self.poisoned,
            "poisonRecorded": self.poison_recorded,
            "errors": self.errors[:20],
        }


class LocalWorker:
    """Drains the work queue and its poison queue in this process, as the queue triggers would."""

    def __init__(
        self, settings: Settings, options: QueueOptions, *, lease_seconds: int = 60, deadline: float | None = None
    ) -> None:
        queue = work_queue(settings)
        if queue is None:
            raise RuntimeError("the storage settings name no queue service (see WORK_QUEUE_NAME in docs/operations.md)")
        telemetry.configure_telemetry()  # `python -m shared work` (and `poll`'s own items): as the triggers do
        self.settings = settings
        self.queue: WorkQueue = queue
        self.options = options
        self.lease_seconds = max(1, lease_seconds)
        self.deadline = deadline  # time.monotonic(): no item reads Graph past it
        self.tally = WorkerTally()

    async def run(
        self,
        *,
        until: Callable[[], Awaitable[bool]] | None = None,
        idle_seconds: float = 5.0,
        wait_seconds: float = 0.0,
        deadline: float | None = None,
    ) -> WorkerTally:
        """Work until `until()` says so, or the queues held nothing at all (none visible, none
        waiting) for `idle_seconds`, or `deadline` (time.monotonic) passes; items in hand are
        finished first. Until the first item comes, empty queues count as idle only after
        `wait_seconds` (a worker started ahead of the poll it is for).

        As the host does, a batch of `batchSize` messages is fetched whenever no more than
        `newBatchThreshold` are in hand, so one slow item does not hold up the rest."""
        await self.queue.ensure()
        idle_since = time.monotonic() + max(0.0, wait_seconds - idle_seconds)
        in_hand: set[asyncio.Task[None]] = set()
        try:
            while deadline is None or time.monotonic() < deadline:
                if until is not None and await until():
                    break
                fetched = 0
                if len(in_hand) <= self.options.new_batch_threshold:
                    fetched = self._start(
                        in_hand, self.queue.poison, self._poison_one, await self._receive(self.queue.poison)
                    )
                    fetched += self._start(
                        in_hand, self.queue.queue, self._item_one, await self._receive(self.queue.queue)
                    )
                if fetched or in_hand:
                    idle_since = time.monotonic()
                elif until is None and time.monotonic() - idle_since >= idle_seconds:
                    # Empty, or only items that wait out their retry delay or another worker's
                    # lease (invisible, but counted): those are this worker's to wait for too.
                    if sum(await self.queue.length()) == 0:
                        break
                    idle_since = time.monotonic()
                if in_hand and (fetched == 0 or len(in_hand) > self.options.new_batch_threshold):
                    # Until one finishes; a while only, so `until` and the queue are looked at again.
                    await asyncio.wait(
                        in_hand, timeout=self.options.max_polling_interval, return_when=asyncio.FIRST_COMPLETED
                    )
                elif not fetched:
                    await asyncio.sleep(min(0.2, self.options.max_polling_interval))
        finally:
            if in_hand:
                await asyncio.wait(in_hand)
        return self.tally

    async def _receive(self, queue: QueueClient) -> list[QueueMessage]:
        return await self.queue.receive(queue, self.options.batch_size, self.lease_seconds)

    def _start(
        self,
        in_hand: set[asyncio.Task[None]],
        queue: QueueClient,
        handle: Callable[[QueueMessage], Awaitable[None]],
        messages: list[QueueMessage],
    ) -> int:
        for message in messages:
            task = asyncio.create_task(self._with_lease(queue, message, handle))
            in_hand.add(task)
            task.add_done_callback(self._finished(in_hand))
        return len(messages)

    def _finished(self, in_hand: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_hand.discard(task)
            # The item's own failure is handled in _with_lease; this is the queue's (deleting
            # or releasing the message): its lease runs out and the item comes back.
            if not task.cancelled() and (error := task.exception()) is not None:
                self.tally.errors.append(f"{type(error).__name__}: {error}"[:300])
                log.warning("work queue message not settled: %s", error)

        return done

    async def _with_lease(
        self, queue: QueueClient, message: QueueMessage, handle: Callable[[QueueMessage], Awaitable[None]]
    ) -> None:
        """Handle one message, keeping it invisible meanwhile; delete it when done."""
        receipt = [message.pop_receipt]

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_seconds / 2)
                updated = await queue.update_message(message.id, receipt[0], visibility_timeout=self.lease_seconds)
                receipt[0] = updated.pop_receipt

        renewing = asyncio.create_task(renew())
        try:
            await handle(message)
            outcome: str | None = "done"
        except Exception as error:
            outcome = None
            self.tally.failed += 1
            self.tally.errors.append(f"{type(error).__name__}: {error}"[:300])
            log.warning("work item failed (try %d): %s", message.dequeue_count or 0, error)
        finally:
            renewing.cancel()
        if outcome == "done":
            await queue.delete_message(message.id, receipt[0])
        elif queue is self.queue.queue and (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            await self._to_poison(message, receipt[0])
        else:  # retried once the retry delay has passed, as the host does
            await queue.update_message(message.id, receipt[0], visibility_timeout=int(self.options.visibility_timeout))

    async def _to_poison(self, message: QueueMessage, receipt: str | None) -> None:
        await self.queue.poison.send_message(message.content)
        await self.queue.queue.delete_message(message.id, receipt)
        self.tally.poisoned += 1

    async def _item_one(self, message: QueueMessage) -> None:
        # Dequeued more often than allowed (workers that died holding it): poison, untried.
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            raise _TooManyTries()
        await do_work_item(self.settings, message.content, deadline=self.deadline)
        self.tally.items += 1

    async def _poison_one(self, message: QueueMessage) -> None:
        await record_poisoned_item(self.settings, message.content)
        self.tally.poison_recorded += 1


class _TooManyTries(RuntimeError):
    pass


async def drain_own_poll(settings: Settings, started_at: str, poll_id: str, deadline: float) -> dict[str, Any]:
    """`python -m shared poll`'s part when its poll was dispatched: do items in this process
    (any, alongside any workers) until the poll is complete or its deadline has passed.
    Returns the poll's record as it then stands."""
    store = open_store(settings)
    latest: dict[str, Any] = {}

    async def completed() -> bool:
        found = await store.poll_with_etag(started_at, poll_id)
        latest.update(dict(found[0]) if found else {})
        return found is None or found[0].get("status") != DISPATCHED

    await LocalWorker(settings, queue_options(), deadline=deadline).run(until=completed, deadline=deadline)
    await completed()
    return latest


async def drain_tenant_polls(settings: Settings, polls: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
    """`python -m shared poll`'s part when it sent its tenants' polls to the queue: do items in
    this process until each tenant's poll is stored and complete, or the deadline has passed.
    Returns each tenant's record as it then stands (a `queued` stand-in for one not begun)."""
    from shared.tenants import find_tenant

    latest: dict[str, dict[str, Any]] = {}

    async def completed() -> bool:
        for poll in polls:
            if latest.get(poll["tenantId"], {}).get("status") not in (None, DISPATCHED, "queued"):
                continue  # complete already: not read again
            tenant = await find_tenant(settings, poll["tenantId"])
            if tenant is None:
                latest[poll["tenantId"]] = {**poll, "status": "dropped"}
                continue
            found = await open_store(settings.for_tenant(tenant)).poll_with_etag(poll["startedAt"], poll["pollId"])
            latest[poll["tenantId"]] = dict(found[0]) if found else {**poll, "status": "queued"}
        return all(record.get("status") not in (DISPATCHED, "queued") for record in latest.values())

    await LocalWorker(settings, queue_options(), deadline=deadline).run(until=completed, deadline=deadline)
    await completed()
    return [latest[poll["tenantId"]] for poll in polls]


def run_processes(processes: int, args: list[str]) -> list[dict[str, Any]]:
    """`work --processes N`: N workers, each its own process (as the platform's instances are)."""
    children = [
        subprocess.Popen(  # noqa: S603 -- this interpreter, our own module, our own arguments
            [sys.executable, "-m", "shared", "work", "--processes", "1", *args], stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    tallies = []
    for child in children:
        out, _ = child.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        tallies.append(json.loads(lines[-1]) if lines else {"exitCode": child.returncode})
    return tallies
