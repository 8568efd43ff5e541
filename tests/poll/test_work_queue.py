"""Polls fanned out through the work queue: Azurite's real queue service, the real SDK against
the emulator, real tables. What the items store must be what one poll in one run stores, an
item done twice or at once stores nothing twice, a worker killed mid-item loses only its
lease, and an item that fails on every try is recorded and does not hold its poll open."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import free_port
from devtools.graph_emulator import EmulatorServer
from shared.domain.work import DISPATCHED
from shared.poll import poll_tenant
from shared.settings import Settings, load_settings
from shared.storage.store import open_store
from shared.storage.work_queue import work_queue
from shared.work import LocalWorker, do_work_item, queue_options
from tests.support import tenants
from tests.support.api import api_client
from tests.support.paths import ROOT

ITEM = 4  # service principals per item: the demo tenant's 31 make 8 items
HISTORY = ("Jobs", "Executions", "RunsByTime", "Events", "JobDays", "TenantDays")


@pytest.fixture
def fanned(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every poll fanned out, in items of four service principals."""
    env = {**app_env, "WORK_INLINE_MAX_PRINCIPALS": "0", "WORK_ITEM_PRINCIPALS": str(ITEM)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def rows_by_table(settings: Settings) -> dict[str, set[tuple[str, str]]]:
    store = open_store(settings)
    found = {}
    for name in HISTORY:
        entities = store.tables[name].list_entities(select=["PartitionKey", "RowKey"])
        found[name] = {(e["PartitionKey"], e["RowKey"]) async for e in entities}
    return found


async def inline_reference(settings: Settings, discover: bool = True) -> dict[str, set[tuple[str, str]]]:
    """What one poll in one run stores of the same tenant, in tables of its own."""
    inline = dataclasses.replace(
        settings, table_prefix=settings.table_prefix + "ref", work_inline_max_principals=1_000_000
    )
    record = await poll_tenant(inline, trigger="test", discover=discover)
    assert record["status"] == "succeeded" and "work" not in record, record
    # Keys carry the tenant, not the prefix: the two sets compare as they are.
    return await rows_by_table(inline)


async def work(settings: Settings, idle_seconds: float = 1.0) -> Any:
    return await LocalWorker(settings, queue_options()).run(idle_seconds=idle_seconds)


async def dispatched_discovery(
    emulator: EmulatorServer,
) -> tuple[dict[str, Any], Settings, dict[str, set[tuple[str, str]]], dict[str, Any]]:
    """The demo tenant frozen, what one run stores of it, and a discovery of it dispatched."""
    tenant = tenants.freeze(emulator)
    settings = load_settings()
    expected = await inline_reference(settings)
    dispatched = await poll_tenant(settings, trigger="test", discover=True)
    return tenant, settings, expected, dict(dispatched)


def without_volatile(rows: dict[str, set[tuple[str, str]]]) -> dict[str, set[tuple[str, str]]]:
    # Events are keyed by when they were observed: two polls observe at different times.
    return {name: keys for name, keys in rows.items() if name != "Events"}


async def test_a_fanned_out_discovery_and_poll_store_what_one_run_stores(
    fanned: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    tenant, settings, expected, dispatched = await dispatched_discovery(demo_emulator)
    items = math.ceil(len(tenant["servicePrincipals"]) / ITEM)
    assert dispatched["status"] == DISPATCHED and dispatched["work"]["items"] == items, dispatched
    assert await open_store(settings).last_poll() is None  # a dispatched poll has not ended
    # New principals are stored by the items that read them (once, with their job count).
    assert (await open_store(settings).load_principals())[0] == {}
    tally = await work(settings)
    assert tally.items == items and tally.failed == 0, tally.as_dict()

    record = await open_store(settings).last_poll()
    assert record is not None and record["pollId"] == dispatched["pollId"]
    assert record["status"] == "succeeded", record["errors"]
    assert record["work"] == {**dispatched["work"], "itemsDone": items}
    assert record["jobsRead"] == len(tenants.served_jobs(tenant))
    assert record["runsStored"] == sum(len(runs) for runs in tenants.served_runs(tenant).values())
    assert record["graph"]["requests"] > 0 and "alerts" in record  # the alert step ran, once complete
    assert record["sweep"] is not None and record["sweep"]["principalsLeft"] == 0
    assert record["sweep"]["lastFullSweepAt"] is not None
    stored = await rows_by_table(settings)
    assert without_volatile(stored) == without_volatile(expected)
    assert len(stored["Events"]) == len(expected["Events"])
    known, _ = await open_store(settings).load_principals()
    with_jobs = {sp["id"] for sp in tenant["servicePrincipals"] if sp.get("jobs")}
    assert {sp_id for sp_id, row in known.items() if row["jobCount"]} == with_jobs
    assert set(known) == {sp["id"] for sp in tenant["servicePrincipals"]}
    assert all(row["jobCount"] is not None for row in known.values())

    # A regular poll: only the principals with jobs, nothing new to store.
    regular = await poll_tenant(settings, trigger="test")
    assert regular["status"] == DISPATCHED and regular["work"]["items"] == math.ceil(len(with_jobs) / ITEM)
    await work(settings)
    record = await open_store(settings).last_poll()
    assert record is not None and record["pollId"] == regular["pollId"] and record["status"] == "succeeded"
    assert (record["jobsRead"], record["jobsChanged"], record["runsStored"]) == (len(tenants.served_jobs(tenant)), 0, 0)
    assert await rows_by_table(settings) == stored


async def test_a_poll_whose_items_are_out_is_not_dispatched_again(
    fanned: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    tenants.freeze(demo_emulator)
    settings = load_settings()
    first = await poll_tenant(settings, trigger="test")
    queue = work_queue(settings)
    assert queue is not None
    waiting, _ = await queue.length()
    again = await poll_tenant(settings, trigger="test")
    assert again["pollId"] == first["pollId"] and (await queue.length())[0] == waiting
    await work(settings)
    assert (await open_store(settings).last_poll() or {}).get("status") == "succeeded"


async def test_an_item_done_twice_or_at_once_stores_nothing_twice(
    fanned: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    tenant, settings, expected, dispatched = await dispatched_discovery(demo_emulator)
    queue = work_queue(settings)
    assert queue is not None
    messages = await queue.receive(queue.queue, 32, 300)
    assert len(messages) == dispatched["work"]["items"]
    # Each item by two workers at once, then once more after both are done.
    await asyncio.gather(*(do_work_item(settings, m.content) for m in messages for _ in range(2)))
    requests = demo_emulator.stats()["requests"]
    for message in messages:
        await do_work_item(settings, message.content)
        await queue.queue.delete_message(message)
    assert demo_emulator.stats()["requests"] == requests  # an item done already is not read again

    stored = await rows_by_table(settings)
    assert without_volatile(stored) == without_volatile(expected)
    assert len(stored["Events"]) == len(expected["Events"])
    record = await open_store(settings).last_poll()
    assert record is not None and record["status"] == "succeeded"
    assert record["work"]["itemsDone"] == len(messages)
    assert record["runsStored"] == sum(len(runs) for runs in tenants.served_runs(tenant).values())


def kill_worker_once_at_graph(env: dict[str, str], emulator: EmulatorServer) -> None:
    """`python -m shared work`, killed (SIGKILL: no goodbye) once it has asked Graph for jobs."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "shared", "work", "--lease-seconds", "3", "--idle-seconds", "60"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while emulator.stats()["batchRequests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert emulator.stats()["batchRequests"] > 0, "the worker never reached Graph"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()


async def test_a_worker_killed_mid_item_loses_only_its_lease(
    fanned: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    _, settings, expected, dispatched = await dispatched_discovery(demo_emulator)
    # Every Graph batch answers after 4 s: the worker is mid-item when it is killed.
    demo_emulator.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "slow", "delayMs": 4000, "inBatch": False}]})
    demo_emulator.reset_stats()
    await asyncio.to_thread(kill_worker_once_at_graph, fanned, demo_emulator)
    demo_emulator.clear_faults()

    started = time.monotonic()
    tally = await work(settings, idle_seconds=8)
    # The items the killed worker held came back once their lease ran out, and were done.
    assert tally.items == dispatched["work"]["items"] and tally.failed == 0, tally.as_dict()
    assert time.monotonic() - started >= 2
    record = await open_store(settings).last_poll()
    assert record is not None and record["status"] == "succeeded", record.get("errors")
    assert without_volatile(await rows_by_table(settings)) == without_volatile(expected)


async def test_a_poisoned_item_is_recorded_and_its_poll_completes(
    fanned: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The platform's own override of host.json: two tries, retried at once.
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__maxDequeueCount", "2")
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__visibilityTimeout", "00:00:00")
    tenants.freeze(demo_emulator)
    settings = load_settings()
    dispatched = await poll_tenant(settings, trigger="test", discover=True)
    queue = work_queue(settings)
    assert queue is not None
    # One item damaged in the queue: it fails on every try.
    [message] = await queue.receive(queue.queue, 1, 300)
    item = json.loads(message.content)
    await queue.queue.delete_message(message)
    await queue.queue.send_message(json.dumps({**item, "mustRead": "not a list"}))

    tally = await work(settings)
    assert (tally.failed, tally.poisoned, tally.poison_recorded) == (2, 1, 1), tally.as_dict()
    record = await open_store(settings).last_poll()
    assert record is not None and record["pollId"] == dispatched["pollId"]
    assert record["status"] == "partial"
    assert record["work"]["itemsPoisoned"] == 1 and record["work"]["itemsDone"] == dispatched["work"]["items"] - 1
    assert record["errorsByKind"] == {"workItemPoisoned": 1}
    poisoned = {sp["id"] for sp in item["principals"]}
    assert poisoned <= set(record["servicePrincipalsNotRead"] or [])
    # Its principals are not covered: the sweep comes back to them.
    assert record["sweep"] is not None and record["sweep"]["lastFullSweepAt"] is None

    async with api_client() as api:
        health = await api.get("/api/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["lastPoll"]["workItemsPoisoned"] == 1
    assert health.json()["lastPoll"]["errorsByKind"] == {"workItemPoisoned": 1}


async def test_storage_without_a_queue_service_or_an_unreachable_queue_polls_in_one_run(
    fanned: dict[str, str], demo_emulator: EmulatorServer, azurite: Any
) -> None:
    settings = load_settings()
    # An emulator that serves tables only names no QueueEndpoint.
    tables_only = azurite.connection_string.split("QueueEndpoint=")[0]
    storage = type(settings.storage)(connection_string=tables_only)
    record = await poll_tenant(dataclasses.replace(settings, storage=storage), trigger="test")
    assert record["status"] == "succeeded" and "work" not in record
    # A queue service that does not answer: the poll does its work in this run, in seconds.
    gone = f"{tables_only}QueueEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    started = time.monotonic()
    record = await poll_tenant(
        dataclasses.replace(settings, storage=type(settings.storage)(connection_string=gone)), trigger="test"
    )
    assert record["status"] == "succeeded" and "work" not in record and record["jobsRead"] > 0
    assert time.monotonic() - started < 60


async def test_an_item_try_that_fails_after_reading_graph_still_counts_its_requests(
    fanned: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__visibilityTimeout", "00:00:00")
    tenants.freeze(demo_emulator)
    settings = load_settings()
    demo_emulator.reset_stats()
    dispatched = await poll_tenant(settings, trigger="test", discover=True)
    # Storage fails once, after the item has read Graph: the platform retries the item.
    store = open_store(settings)
    save = store.save_job_changes
    failures = [RuntimeError("storage went away")]

    async def failing_once(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        await save(*args, **kwargs)

    monkeypatch.setattr(store, "save_job_changes", failing_once)
    tally = await work(settings)
    assert tally.failed == 1 and tally.items == dispatched["work"]["items"], tally.as_dict()
    record = await open_store(settings).last_poll()
    assert record is not None and record["pollId"] == dispatched["pollId"] and record["status"] == "succeeded"
    # Every request Graph saw is in the record: the dispatch's, the parts', the failed try's.
    assert record["graph"]["requests"] == demo_emulator.stats()["requests"]
    assert record["graph"]["failedTries"] == 1


def test_the_local_worker_reads_host_json_and_the_platforms_overrides() -> None:
    host = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    options = queue_options({})
    assert (options.batch_size, options.max_dequeue_count) == (host["batchSize"], host["maxDequeueCount"])
    assert options.new_batch_threshold == host["newBatchThreshold"]
    assert queue_options({}, _host_json_without_threshold(host)).new_batch_threshold == host["batchSize"] // 2
    assert options.visibility_timeout == 30.0 and host["visibilityTimeout"] == "00:00:30"
    overridden = queue_options(
        {
            "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
            "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "1.00:00:01.5",
        }
    )
    assert (overridden.max_dequeue_count, overridden.visibility_timeout) == (2, 86401.5)


def _host_json_without_threshold(queues: dict[str, Any]) -> Path:
    """A host.json whose queues leave newBatchThreshold to the host's default."""
    folder = Path(tempfile.mkdtemp())
    path = folder / "host.json"
    path.write_text(
        json.dumps({"extensions": {"queues": {k: v for k, v in queues.items() if k != "newBatchThreshold"}}})
    )
    return path
