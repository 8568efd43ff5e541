"""Property-based: whatever normalization produces from anything Graph might send always
stores in real Table Storage and reads back the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from devtools.azurite import AzuriteServer
from shared.domain.changes import JobChanges, plan_job_write
from shared.domain.normalize import distinct_runs
from shared.settings import load_settings
from shared.storage.store import Store, open_store
from tests.support.strategies import jobs, normalize


@pytest.fixture(scope="module")
def store_loop(azurite: AzuriteServer) -> Iterator[tuple[asyncio.AbstractEventLoop, Store]]:
    env = {
        "AZURE_TENANT_ID": "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9",
        "AzureWebJobsStorage": azurite.connection_string,
        "TABLE_PREFIX": "props",
    }
    loop = asyncio.new_event_loop()

    async def open_() -> Store:
        store = open_store(load_settings(env))
        await store.ensure_tables()
        return store

    store = loop.run_until_complete(open_())
    yield loop, store
    loop.run_until_complete(store.close())
    loop.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs)
def test_what_normalization_produces_always_stores(
    store_loop: tuple[asyncio.AbstractEventLoop, Store], raw: Any
) -> None:
    job = normalize(raw)
    if job is None:
        return
    loop, store = store_loop

    async def round_trip() -> None:
        write = plan_job_write(job, None)
        assert write is not None
        await store.save_job_changes(JobChanges([write]))
        assert await store.get_job(job["servicePrincipalId"], job["jobId"]) == job
        stored, _ = await store.executions_page(job["servicePrincipalId"], job["jobId"], top=1000)
        assert {run["activityIdentifier"] for run in stored} >= {
            run["activityIdentifier"] for run in distinct_runs(job)
        }

    loop.run_until_complete(round_trip())
