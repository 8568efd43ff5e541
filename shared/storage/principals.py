"""`<p>ServicePrincipals`: discovery's memory (PK tenant, RK service principal id) of which
service principals have jobs; the row `!discovery` holds when discovery last completed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict

from azure.core.exceptions import ResourceNotFoundError

from shared.storage.keys import DISCOVERY_MARKER, key_part
from shared.storage.tables import TableSet


class KnownPrincipal(TypedDict):
    id: str
    appId: str | None
    displayName: str | None
    jobCount: int


class PrincipalsTable(TableSet):
    async def load_principals(self) -> tuple[dict[str, KnownPrincipal], str | None]:
        """Known service principals by id, and when discovery last completed (None: never)."""
        rows = await self._query("ServicePrincipals", "PartitionKey eq @pk", {"pk": self.tenant_id})
        principals: dict[str, KnownPrincipal] = {
            row["id"]: {
                "id": row["id"],
                "appId": row.get("appId"),
                "displayName": row.get("displayName"),
                "jobCount": int(row.get("jobCount") or 0),
            }
            for row in rows
            if row["RowKey"] != DISCOVERY_MARKER
        }
        marker = next((row for row in rows if row["RowKey"] == DISCOVERY_MARKER), None)
        return principals, (marker or {}).get("completedAt")

    async def save_principals(
        self, principals: Sequence[KnownPrincipal], *, remove: Iterable[str] = (), completed_at: str | None = None
    ) -> None:
        """Upsert what changed (the caller passes only changed rows) and forget removed ones."""
        entities = [
            {
                "PartitionKey": self.tenant_id,
                "RowKey": key_part(sp["id"]),
                "id": sp["id"],
                "appId": sp["appId"],
                "displayName": sp["displayName"],
                "jobCount": sp["jobCount"],
            }
            for sp in principals
        ]
        if completed_at is not None:
            entities.append({"PartitionKey": self.tenant_id, "RowKey": DISCOVERY_MARKER, "completedAt": completed_at})
        await self._upsert_all("ServicePrincipals", entities)
        for sp_id in remove:
            try:
                await self.tables["ServicePrincipals"].delete_entity(self.tenant_id, key_part(sp_id))
            except ResourceNotFoundError:
                pass
