"""Storage stopped in the middle of a poll: that poll fails visibly, the next one completes,
and every run is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

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


class _DropFirstTransaction:
    """A TCP proxy in front of Azurite's Table endpoint that closes the connection carrying the
    first `$batch` request, unanswered: a connection the service dropped (an idle keep-alive
    closed as the request went out, a load balancer's reset)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _DropFirstTransaction:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def to_server() -> None:
            while chunk := await client_reader.read(65536):
                if not self.dropped and chunk.startswith(b"POST ") and b"$batch" in chunk.split(b"\r\n", 1)[0]:
                    self.dropped += 1
                    client_writer.close()
                    server_writer.close()
                    return
                server_writer.write(chunk)
                await server_writer.drain()
            server_writer.close()

        async def to_client() -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await server_reader.read(65536):
                    client_writer.write(chunk)
                    await client_writer.drain()
            client_writer.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(to_server(), to_client())


async def test_a_transaction_whose_connection_drops_is_sent_again(azurite: AzuriteServer) -> None:
    rows = [{"PartitionKey": "p", "RowKey": f"r{index}", "value": index} for index in range(3)]
    async with _DropFirstTransaction(azurite.port) as proxy:
        endpoint = azurite.connection_string.replace(f":{azurite.port}/", f":{proxy.port}/")
        name = f"dropped{uuid.uuid4().hex[:12]}"
        async with TableClient.from_connection_string(
            endpoint, table_name=name, **tables.STORAGE_CLIENT_OPTIONS
        ) as client:
            await client.create_table()
            await tables.upsert_entities(client, rows)
            stored = [entity async for entity in client.list_entities()]
            await client.delete_table()
    assert proxy.dropped == 1  # the first send was lost, unanswered
    assert sorted((row["RowKey"], row["value"]) for row in stored) == [(row["RowKey"], row["value"]) for row in rows]
