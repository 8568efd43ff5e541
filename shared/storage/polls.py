"""`<p>Polls`: one record per poll (PK tenant, RK inverted start ticks|poll id), newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.domain.poll_record import PollSummary
from shared.domain.work import DISPATCHED
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import inverted_ticks, poll_row_key
from shared.storage.tables import TableSet


class PollsTable(TableSet):
    async def save_poll(self, record: PollSummary | Mapping[str, Any], *, etag: str | None = None) -> None:
        """Store a poll record: as the poll made it, or with the alert step's section added
        (shared.alerts.delivery passes it on as a plain dict). With `etag`, only over that
        version of it (else ResourceModifiedError): two items completing one dispatched
        poll at once complete it once."""
        entity = {
            "PartitionKey": self.tenant_id,
            "RowKey": poll_row_key(record["startedAt"], record["pollId"]),
            "status": record["status"],
            "startedAt": record["startedAt"],
            "discovery": bool(record.get("discovery")),
            **pack_document(record),
        }
        if etag is None:
            await self.tables["Polls"].upsert_entity(entity, mode=UpdateMode.REPLACE)
        else:
            await self.tables["Polls"].update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )

    async def poll_with_etag(self, started_at: str, poll_id: str) -> tuple[PollSummary, str] | None:
        try:
            entity = await self.tables["Polls"].get_entity(self.tenant_id, poll_row_key(started_at, poll_id))
        except ResourceNotFoundError:
            return None
        record: PollSummary = unpack_document(entity)
        return record, str(entity.metadata["etag"])

    async def dispatched_polls(self) -> list[PollSummary]:
        """Polls whose work items are still out (newest first)."""
        rows = await self._query(
            "Polls", "PartitionKey eq @pk and status eq @status", {"pk": self.tenant_id, "status": DISPATCHED}
        )
        return [unpack_document(row) for row in rows]

    async def last_poll(self) -> PollSummary | None:
        """The newest poll that has ended (a dispatched one ends when its last item does)."""
        try:
            async for entity in self.tables["Polls"].query_entities(
                "PartitionKey eq @pk and status ne @dispatched",
                parameters={"pk": self.tenant_id, "dispatched": DISPATCHED},
                results_per_page=1,
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
