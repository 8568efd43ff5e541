"""The table set of one tenant: clients, creation, parameterized reads and batched writes.

`TableSet` is the base every table family of `shared.storage` builds on (see store.py for
how they are composed). Writes of many rows go in entity-group transactions the way Azure
requires them: at most 100 operations, all of one partition (`transaction_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.settings import StorageSettings

TRANSACTION_LIMIT = 100  # Azure's maximum operations in one entity group transaction
TABLE_NAMES = (
    "Jobs",
    "Executions",
    "RunsByTime",
    "Events",
    "JobDays",
    "TenantDays",
    "Polls",
    "ServicePrincipals",
    "WorkItems",
)

# Transient storage faults (5xx, timeouts, refused connections) are retried with exponential
# backoff by the SDK's retry policy; bounded here so that an outage fails the poll in seconds,
# not after the SDK's default ten retries of up to two minutes each.
STORAGE_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 4,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8,
    "connection_timeout": 10,
    "read_timeout": 60,
}

# A transaction is a POST, which azure-core never sends again after a dropped connection: it
# cannot know whether the server applied it. Ours upsert or delete whole rows, so a second send
# is safe; without it, a connection the service closed while idle fails the whole poll or work
# item (seen under load in the benchmark, where each failed item read its principals again).
# (The queue SDK's own retry policy already retries any method.)
RETRY_POST: dict[str, Any] = {
    "retry_on_methods": frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})
}

Entity = dict[str, Any]


def table_service(storage: StorageSettings) -> TableServiceClient:
    if storage.connection_string:
        return TableServiceClient.from_connection_string(storage.connection_string, **STORAGE_CLIENT_OPTIONS)
    from azure.identity.aio import ManagedIdentityCredential

    assert storage.table_service_uri is not None  # load_settings guarantees one of the two
    credential = ManagedIdentityCredential(client_id=storage.managed_identity_client_id)
    return TableServiceClient(endpoint=storage.table_service_uri, credential=credential, **STORAGE_CLIENT_OPTIONS)


def transaction_chunks(rows: Iterable[Entity]) -> Iterator[list[Entity]]:
    """Rows grouped by partition, at most 100 to a group: what one transaction may hold
    (Azure's rule; Azurite accepts more, so the chunking is ours to keep)."""
    by_partition: dict[str, list[Entity]] = {}
    for row in rows:
        by_partition.setdefault(row["PartitionKey"], []).append(row)
    for partition_rows in by_partition.values():
        for start in range(0, len(partition_rows), TRANSACTION_LIMIT):
            yield partition_rows[start : start + TRANSACTION_LIMIT]


async def upsert_entities(client: TableClient, entities: Sequence[Entity]) -> None:
    """Replace-upsert in transactions of at most 100 operations of one partition."""
    for chunk in transaction_chunks(entities):
        if len(chunk) == 1:
            await client.upsert_entity(chunk[0], mode=UpdateMode.REPLACE)
            continue
        try:
            await client.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk], **RETRY_POST
            )
        except TableTransactionError:
            # Azure rejects a transaction with two operations on one entity; fall back.
            for row in chunk:
                await client.upsert_entity(row, mode=UpdateMode.REPLACE)


async def delete_entities(client: TableClient, rows: Sequence[Entity]) -> None:
    """Delete rows (PartitionKey and RowKey present) in transactions of one partition."""
    for chunk in transaction_chunks(rows):
        await client.submit_transaction(
            [("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in chunk],
            **RETRY_POST,
        )


class TableSet:
    """The app's tables of one tenant: one client per table, sharing the service's transport."""

    def __init__(self, service: TableServiceClient, prefix: str, tenant_id: str, *, owns_service: bool = True) -> None:
        self._service = service
        self._owns_service = owns_service  # False: the service (and its transport) is shared by tenants
        self._prefix = prefix
        self.tenant_id = tenant_id
        self.tables: dict[str, TableClient] = {
            name: service.get_table_client(f"{prefix}{name}") for name in TABLE_NAMES
        }
        self._tables_ready = False

    async def close(self) -> None:
        for table in self.tables.values():
            await table.close()
        if self._owns_service:
            await self._service.close()

    async def ensure_tables(self) -> None:
        if self._tables_ready:
            return
        for table in self.tables.values():
            await create_table(table)
        self._tables_ready = True

    async def _query(
        self, table: str, filter_: str, parameters: dict[str, Any], select: Sequence[str] | None = None
    ) -> list[Entity]:
        try:
            return [
                dict(entity)
                async for entity in self.tables[table].query_entities(
                    filter_, parameters=parameters, select=list(select) if select else None
                )
            ]
        except ResourceNotFoundError:  # nothing polled yet: the table does not exist
            return []

    async def _read_page(
        self, table: str, filter_: str, parameters: dict[str, Any], *, top: int
    ) -> tuple[list[Entity], bool]:
        """At most `top` rows in key order, and whether more follow (reads top + 1)."""
        rows: list[Entity] = []
        try:
            async for entity in self.tables[table].query_entities(
                filter_, parameters=parameters, results_per_page=min(top + 1, 1000)
            ):
                rows.append(dict(entity))
                if len(rows) > top:
                    break
        except ResourceNotFoundError:
            return [], False
        return rows[:top], len(rows) > top

    async def _upsert_all(self, table: str, entities: Sequence[Entity]) -> None:
        await upsert_entities(self.tables[table], entities)

    async def _delete_all(self, table: str, rows: Sequence[Entity]) -> None:
        await delete_entities(self.tables[table], rows)


async def create_table(table: TableClient) -> None:
    try:
        await table.create_table()
    except ResourceExistsError:
        pass
