"""`<p>Polls`: one record per poll (PK tenant, RK inverted start ticks|poll id), newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.domain.poll_record import PollSummary
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import inverted_ticks, poll_row_key
from shared.storage.tables import TableSet


class PollsTable(TableSet):
    async def save_poll(self, record: PollSummary | Mapping[str, Any]) -> None:
        """Store a poll record: as the poll made it, or with the alert step's section added
        (shared.alerts.delivery passes it on as a plain dict)."""
        await self.tables["Polls"].upsert_entity(
            {
                "PartitionKey": self.tenant_id,
                "RowKey": poll_row_key(record["startedAt"], record["pollId"]),
                "status": record["status"],
                "startedAt": record["startedAt"],
                **pack_document(record),
            },
            mode=UpdateMode.REPLACE,
        )

    async def last_poll(self) -> PollSummary | None:
        try:
            async for entity in self.tables["Polls"].query_entities(
                "PartitionKey eq @pk", parameters={"pk": self.tenant_id}, results_per_page=1
            ):
                found: PollSummary = unpack_document(entity)
                return found
        except ResourceNotFoundError:
            return None
        return None

    async def last_successful_poll(self, statuses: Sequence[str] = ("succeeded", "partial")) -> dict[str, Any] | None:
        """The newest poll record with one of `statuses` (for the API, as stored)."""
        names = [f"status{index}" for index in range(len(statuses))]
        filter_ = "PartitionKey eq @pk and ( " + " or ".join(f"status eq @{name}" for name in names) + " )"
        parameters: dict[str, Any] = {"pk": self.tenant_id, **dict(zip(names, statuses, strict=True))}
        rows, _ = await self._read_page("Polls", filter_, parameters, top=1)
        return unpack_document(rows[0]) if rows else None

    async def purge_polls_before(self, cutoff: str, *, budget: int) -> int:
        """Delete at most `budget` poll records that started before `cutoff`; returns how many."""
        rows = await self._query(
            "Polls",
            "PartitionKey eq @pk and RowKey gt @after",
            {"pk": self.tenant_id, "after": inverted_ticks(cutoff)},
            select=["PartitionKey", "RowKey"],
        )
        rows = rows[:budget]
        await self._delete_all("Polls", rows)
        return len(rows)
