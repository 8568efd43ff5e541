"""What a poll costs in table operations, counted outside the app: the benchmark's counting
proxy (bench/table_counter.py) stands between the app and Azurite, so each operation of a
`$batch` counts once, as in docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.table_counter import TableCounter
from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.domain.changes import JobWrite, RunWrite
from shared.poll import run_poll
from shared.settings import load_settings
from shared.storage.keys import day_partition, job_key
from shared.storage.store import close_store, open_store

CYCLE_SECONDS = 2400  # one provisioning cycle: the second poll sees each job's next run


@pytest.fixture
def counter(app_env: dict[str, str], azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TableCounter]:
    with TableCounter(azurite.port) as proxy:
        endpoint = azurite.table_endpoint.replace(f":{azurite.port}/", f":{proxy.port}/")
        monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string.replace(azurite.table_endpoint, endpoint))
        yield proxy


async def test_table_reads_of_a_first_and_a_changed_poll(
    counter: TableCounter, app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    demo_emulator.freeze_clock()
    first = await run_poll(trigger="test")
    prefix = app_env["TABLE_PREFIX"]
    # A first poll reads each job's stored runs once (for its oldest run's predecessor), and
    # counts its new JobDays rows from that same read, not from a second query.
    assert counter.snapshot().by_table("query").get(f"{prefix}Executions", 0) <= first["jobsChanged"]
    demo_emulator.advance_clock(CYCLE_SECONDS)
    counter.reset()
    record = await run_poll(trigger="test")
    counts = counter.snapshot()
    demo_emulator.freeze_clock(False)

    assert record["status"] == "succeeded" and record["runsStored"] > 0
    reads = {table.removeprefix(prefix): n for table, n in counts.by_table("query").items()}
    written = counts.total("write") + counts.total("delete")
    # The JobDays rows come from one query per touched day (and the TenantDays sum from one
    # more), not from a recount of each changed job's Executions rows of that day.
    assert "Executions" not in reads
    days = len({run["timeBegan"][:10] for run in await _stored_runs()})
    assert reads.get("JobDays", 0) <= 2 * days
    # Every other read is a fixed cost of the poll (stored jobs, principals, last poll, alerts).
    assert counts.total("query") <= 2 * days + FIXED_READS
    assert counts.total() == written + counts.total("query") + counts.total("table")

    # And the rollups still count exactly the stored runs.
    store = open_store(load_settings())
    assert sum(day["runs"] for day in await store.run_days()) == len(await _stored_runs())
    await close_store()  # before the proxy stops


# Stored jobs (2 pages' worth of calls: poll and alerts), service principals, the last poll,
# and the alert tables (2 each).
FIXED_READS = 10


async def _stored_runs() -> list[dict[str, str]]:
    store = open_store(load_settings())
    runs = []
    for job in await store.list_jobs():
        page, _ = await store.executions_page(job["servicePrincipalId"], job["jobId"], top=1000)
        runs.extend(page)
    return runs  # type: ignore[return-value]


async def test_overlapping_writes_of_one_job_day_keep_both_polls_runs(app_env: dict[str, str]) -> None:
    """Two polls merge different runs into one JobDays row at once: the write that finds the
    row changed since its read reads it again, so the row counts both runs."""
    store = open_store(load_settings())
    await store.ensure_tables()
    job: Any = {"servicePrincipalId": "sp", "jobId": "job"}
    day = "2026-03-01"
    await store.tables["JobDays"].upsert_entity(
        {"PartitionKey": day_partition(store.tenant_id, day), "RowKey": job_key("sp", "job"), "countedRuns": "{}"}
    )

    def write(activity: str) -> JobWrite:
        run: Any = {"activityIdentifier": activity, "timeBegan": f"{day}T10:00:00Z", "state": "Succeeded"}
        return JobWrite(job, [RunWrite(run, None)], [], [])

    await asyncio.gather(store.save_job_days([write("a")]), store.save_job_days([write("b")]))
    row = await store.tables["JobDays"].get_entity(day_partition(store.tenant_id, day), job_key("sp", "job"))
    assert row["runs"] == 2 and sorted(json.loads(row["countedRuns"])) == ["a", "b"]
    await store.save_job_days([write("a")])  # a repeated poll: the same row
    again = await store.tables["JobDays"].get_entity(day_partition(store.tenant_id, day), job_key("sp", "job"))
    assert (again["runs"], again["countedRuns"]) == (row["runs"], row["countedRuns"])


async def test_a_jobs_first_run_of_a_day_is_counted_without_a_recount(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new run that follows a known run of an earlier day starts its day's row: nothing of
    the job is stored on that day, so no Executions query; without a known predecessor, or
    after one of the same day, the row is recounted as before."""
    store = open_store(load_settings())
    await store.ensure_tables()
    recounted: list[str] = []

    async def recount(self: Any, job: Any, day: str) -> dict[str, list[Any]]:
        recounted.append(day)
        return {}

    monkeypatch.setattr(type(store), "_recount_job_day", recount)
    job: Any = {"servicePrincipalId": "sp", "jobId": "first-of-day"}

    def run(activity: str, began: str) -> Any:
        return {"activityIdentifier": activity, "timeBegan": began, "state": "Succeeded"}

    yesterday, today = run("r1", "2026-03-01T23:40:00Z"), run("r2", "2026-03-02T00:20:00Z")
    await store.save_job_days([JobWrite(job, [RunWrite(today, yesterday)], [], [])])
    assert recounted == []
    keys = day_partition(store.tenant_id, "2026-03-02"), job_key("sp", job["jobId"])
    row = await store.tables["JobDays"].get_entity(*keys)
    assert row["runs"] == 1 and list(json.loads(row["countedRuns"])) == ["r2"]

    other: Any = {"servicePrincipalId": "sp", "jobId": "unknown-before"}
    await store.save_job_days([JobWrite(other, [RunWrite(today, None)], [], [])])
    same_day: Any = {"servicePrincipalId": "sp", "jobId": "same-day"}
    await store.save_job_days([JobWrite(same_day, [RunWrite(today, run("r0", "2026-03-02T00:01:00Z"))], [], [])])
    assert recounted == ["2026-03-02", "2026-03-02"]
    await close_store()
