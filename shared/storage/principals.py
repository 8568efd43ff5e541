"""`<p>ServicePrincipals`: discovery's memory (PK tenant, RK service principal id) of which
service principals have jobs; the row `!discovery` holds the sweep's state (its cursor, when
the sweep under way began, when the last full sweep ended: shared/domain/sweep.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from azure.core.exceptions import ResourceNotFoundError

from shared.domain.sweep import SweepState
from shared.storage.keys import DISCOVERY_MARKER, key_part
from shared.storage.tables import TableSet


class KnownPrincipal(TypedDict):
    id: str
    appId: str | None
    displayName: str | None
    jobCount: int | None  # None: listed, its jobs not read yet


_PRINCIPAL = ("RowKey", "id", "appId", "displayName", "jobCount")
_SWEEP = ("cursor", "sweepStartedAt", "completedAt")  # the marker row's


def _sweep_state(rows: Iterable[dict[str, Any]]) -> SweepState:
    marker = next((row for row in rows if row["RowKey"] == DISCOVERY_MARKER), None) or {}
    return SweepState(marker.get("cursor") or "", marker.get("sweepStartedAt"), marker.get("completedAt"))


class PrincipalsTable(TableSet):
    async def load_principals(self) -> tuple[dict[str, KnownPrincipal], SweepState]:
        """The service principals discovery listed, by id (with their job count once read),
        and the sweep's state."""
        # Only the columns read: a large tenant's rows cost client CPU for every one.
        rows = await self._query(
            "ServicePrincipals", "PartitionKey eq @pk", {"pk": self.tenant_id}, select=[*_PRINCIPAL, *_SWEEP]
        )
        principals: dict[str, KnownPrincipal] = {
            row["id"]: {
                "id": row["id"],
                "appId": row.get("appId"),
                "displayName": row.get("displayName"),
                "jobCount": row.get("jobCount"),
            }
            for row in rows
            if row["RowKey"] != DISCOVERY_MARKER
        }
        return principals, _sweep_state(rows)

    async def load_principal_ids(self) -> tuple[list[str], SweepState]:
        """`load_principals` with the ids only (about a third of its cost): sorted."""
        rows = await self._query(
            "ServicePrincipals", "PartitionKey eq @pk", {"pk": self.tenant_id}, select=["RowKey", "id", *_SWEEP]
        )
        return sorted(row["id"] for row in rows if row["RowKey"] != DISCOVERY_MARKER), _sweep_state(rows)

    async def save_principals(
        self, principals: Sequence[KnownPrincipal], *, remove: Iterable[str] = (), sweep: SweepState | None = None
    ) -> None:
        """Upsert what changed (the caller passes only changed rows), forget removed ones, and
        keep the sweep's state (None: unchanged)."""
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
        if sweep is not None:
            marker = {"cursor": sweep.cursor, "sweepStartedAt": sweep.started_at, "completedAt": sweep.completed_at}
            kept = {name: value for name, value in marker.items() if value is not None}
            entities.append({"PartitionKey": self.tenant_id, "RowKey": DISCOVERY_MARKER, **kept})
        await self._upsert_all("ServicePrincipals", entities)
        for sp_id in remove:
            try:
                await self.tables["ServicePrincipals"].delete_entity(self.tenant_id, key_part(sp_id))
            except ResourceNotFoundError:
                pass
