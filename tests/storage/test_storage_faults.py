"""Storage stopped in the middle of a poll: that poll fails visibly, the next one completes,
and every run is stored exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.poll import PollFailedError, run_poll
from shared.settings import load_settings
from shared.storage import tables
from shared.storage.store import Store, open_store
from tests.support.tenants import freeze, served_runs


@pytest.fixture
def own_azurite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_env: dict[str, str]) -> Iterator[AzuriteServer]:
    """An Azurite of this test's own, keeping its data on disk so it survives a restart."""
    server = AzuriteServer(location=tmp_path / "azurite")
    server.start()
    monkeypatch.setenv("AzureWebJobsStorage", server.connection_string)
    # Fewer, shorter retries than production, so the outage fails the poll within seconds.
    monkeypatch.setitem(tables.STORAGE_CLIENT_OPTIONS, "retry_total", 1)
    monkeypatch.setitem(tables.STORAGE_CLIENT_OPTIONS, "retry_backoff_factor", 0.1)
    yield server
    server.stop()


async def test_storage_stopping_mid_poll_fails_it_and_the_next_poll_stores_each_run_once(
    own_azurite: AzuriteServer, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = freeze(demo_emulator)
    original = Store.refresh_tenant_days

    async def stop_storage_then_continue(self: Store, days: Any) -> None:
        own_azurite.stop()  # runs and job-day rollups are written; the rest of the poll is not
        await original(self, days)

    monkeypatch.setattr(Store, "refresh_tenant_days", stop_storage_then_continue)
    with pytest.raises(PollFailedError) as failed:
        await run_poll(trigger="test")
    assert failed.value.record["status"] == "failed"

    monkeypatch.setattr(Store, "refresh_tenant_days", original)
    own_azurite.start()
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded"
    assert record["jobsChanged"] > 0  # the job states the failed poll never wrote

    store = open_store(load_settings())
    expected = served_runs(tenant)
    total = 0
    for job in await store.list_jobs():
        stored, _ = await store.executions_page(job["servicePrincipalId"], job["jobId"], top=1000)
        ids = [run["activityIdentifier"] for run in stored]
        assert sorted(ids) == sorted(expected.get((job["servicePrincipalId"], job["jobId"]), {}))
        total += len(ids)
    assert sum(day["runs"] for day in await store.run_days()) == total
    again = await run_poll(trigger="test")
    assert (again["jobsChanged"], again["runsStored"]) == (0, 0)
