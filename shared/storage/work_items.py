"""`<p>WorkItems`: each work item's part of a dispatched poll's record (PK poll id, RK item number).

An item writes its part once done (or the poison handler, once it gave up); the part's key
is the item's, so an item handled twice writes the same row. When every item has a row the
poll's record is completed from them (shared/work.py).
"""

from __future__ import annotations

from typing import Any

from azure.data.tables import UpdateMode

from shared.domain.poll_record import PollSummary
from shared.storage.documents import pack_document, unpack_document
from shared.storage.tables import TableSet


def _item_key(item: int) -> str:
    return f"{item:06d}"


class WorkItemsTable(TableSet):
    async def save_item_part(
        self, poll_id: str, item: int, part: PollSummary, *, outcome: str, unanswered: list[str]
    ) -> None:
        """`outcome`: done | poisoned. `unanswered`: its principals Graph gave no answer for
        (a discovery's sweep comes back to them)."""
        await self.tables["WorkItems"].upsert_entity(
            {
                "PartitionKey": poll_id,
                "RowKey": _item_key(item),
                "outcome": outcome,
                **pack_document({"part": part, "unanswered": unanswered}),
            },
            mode=UpdateMode.REPLACE,
        )

    async def item_done(self, poll_id: str, item: int) -> bool:
        rows = await self._query(
            "WorkItems",
            "PartitionKey eq @pk and RowKey eq @rk",
            {"pk": poll_id, "rk": _item_key(item)},
            select=["outcome"],
        )
        return bool(rows)

    async def item_count(self, poll_id: str) -> int:
        return len(await self._query("WorkItems", "PartitionKey eq @pk", {"pk": poll_id}, select=["RowKey"]))

    async def item_parts(self, poll_id: str) -> list[dict[str, Any]]:
        """Each stored part: {"outcome", "part", "unanswered"}."""
        rows = await self._query("WorkItems", "PartitionKey eq @pk", {"pk": poll_id})
        return [{"outcome": row["outcome"], **unpack_document(row)} for row in rows]

    async def purge_item_parts(self, poll_id: str) -> None:
        rows = await self._query("WorkItems", "PartitionKey eq @pk", {"pk": poll_id}, select=["PartitionKey", "RowKey"])
        await self._delete_all("WorkItems", rows)
