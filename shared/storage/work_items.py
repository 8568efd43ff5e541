"""`<p>WorkItems`: each work item's part of a dispatched poll's record (PK the poll's row key in
Polls, RK the item's number).

An item writes its part once done (or the poison handler, once it gave up); the part's key
is the item's, so an item handled twice writes the same row, and one delivered again later
finds its part and is not read again. When every item has a row the poll's record is
completed from them (shared/fanout.py). Retention deletes the parts with their polls.
"""

from __future__ import annotations

import uuid
from typing import Any

from azure.data.tables import UpdateMode

from shared.domain.poll_record import GraphCounts, PollSummary
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import inverted_ticks, poll_row_key
from shared.storage.tables import TableSet


def _item_key(item: int) -> str:
    return f"{item:06d}"


# A failed try's row (its Graph requests, which its retry does not repeat in its part): keyed
# after every part ("t" sorts after digits), so that parts are the range below it.
_TRIES = "try|"
FAILED_TRY = "failedTry"


class WorkItemsTable(TableSet):
    async def save_item_part(
        self, poll: tuple[str, str], item: int, part: PollSummary, *, outcome: str, unanswered: list[str]
    ) -> None:
        """`outcome`: done | poisoned. `unanswered`: its principals Graph gave no answer for
        (a discovery's sweep comes back to them)."""
        await self.tables["WorkItems"].upsert_entity(
            {
                "PartitionKey": poll_row_key(*poll),
                "RowKey": _item_key(item),
                "outcome": outcome,
                **pack_document({"part": part, "unanswered": unanswered}),
            },
            mode=UpdateMode.REPLACE,
        )

    async def save_failed_try(self, poll: tuple[str, str], item: int, graph: GraphCounts) -> None:
        """A try of the item that raised after reading Graph: its requests, for the record."""
        await self.tables["WorkItems"].upsert_entity(
            {
                "PartitionKey": poll_row_key(*poll),
                "RowKey": f"{_TRIES}{_item_key(item)}|{uuid.uuid4()}",
                "outcome": FAILED_TRY,
                **pack_document({"part": {"graph": graph}, "unanswered": []}),
            },
            mode=UpdateMode.REPLACE,
        )

    async def item_done(self, poll: tuple[str, str], item: int) -> bool:
        rows = await self._query(
            "WorkItems",
            "PartitionKey eq @pk and RowKey eq @rk",
            {"pk": poll_row_key(*poll), "rk": _item_key(item)},
            select=["outcome"],
        )
        return bool(rows)

    async def item_count(self, poll: tuple[str, str]) -> int:
        rows = await self._query(
            "WorkItems",
            "PartitionKey eq @pk and RowKey lt @tries",
            {"pk": poll_row_key(*poll), "tries": _TRIES},
            select=["RowKey"],
        )
        return len(rows)

    async def item_parts(self, poll: tuple[str, str]) -> list[dict[str, Any]]:
        """Each stored part: {"outcome", "part", "unanswered"}; and each failed try's, with
        outcome FAILED_TRY and a part of its `graph` counts only."""
        rows = await self._query("WorkItems", "PartitionKey eq @pk", {"pk": poll_row_key(*poll)})
        return [{"outcome": row["outcome"], **unpack_document(row)} for row in rows]

    async def purge_item_parts_before(self, cutoff: str, *, budget: int) -> int:
        """Delete at most `budget` parts of polls that started before `cutoff`; returns how many."""
        rows = await self._query(
            "WorkItems", "PartitionKey gt @after", {"after": inverted_ticks(cutoff)}, select=["PartitionKey", "RowKey"]
        )
        rows = rows[:budget]
        await self._delete_all("WorkItems", rows)
        return len(rows)
