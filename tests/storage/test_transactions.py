"""Table writes go in entity-group transactions the way Azure requires them: at most 100
operations, all of one partition (Azurite accepts more, so the chunking is checked here)."""

from __future__ import annotations

from typing import Any

from shared.storage.tables import TRANSACTION_LIMIT, upsert_entities


class RecordingTable:
    """Stands in for a TableClient: records what upsert_entities sends."""

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []
        self.single: list[dict[str, Any]] = []

    async def submit_transaction(
        self, operations: list[tuple[str, dict[str, Any], dict[str, Any]]], **kwargs: Any
    ) -> None:
        self.transactions.append([entity for _, entity, _ in operations])

    async def upsert_entity(self, entity: dict[str, Any], mode: Any = None) -> None:
        self.single.append(entity)


async def test_transactions_hold_at_most_100_operations_of_one_partition() -> None:
    rows = [{"PartitionKey": f"p{index % 3}", "RowKey": f"r{index:04d}"} for index in range(451)]
    rows.append({"PartitionKey": "lonely", "RowKey": "r"})
    table = RecordingTable()
    await upsert_entities(table, rows)  # type: ignore[arg-type]
    assert all(0 < len(batch) <= TRANSACTION_LIMIT == 100 for batch in table.transactions)
    assert all(len({row["PartitionKey"] for row in batch}) == 1 for batch in table.transactions)
    # Every row is written exactly once; a lone row needs no transaction.
    written = [row["RowKey"] + row["PartitionKey"] for batch in table.transactions for row in batch]
    written += [row["RowKey"] + row["PartitionKey"] for row in table.single]
    assert sorted(written) == sorted(row["RowKey"] + row["PartitionKey"] for row in rows)
    assert [row["PartitionKey"] for row in table.single] == ["lonely"]
    # 151, 150 and 150 rows per partition: two transactions each.
    assert sorted(len(batch) for batch in table.transactions) == [50, 50, 51, 100, 100, 100]
