"""`<p>Tenants`: the tenants this deployment watches (PK `registry`, RK the tenant id), one
partition for the whole deployment, the only table that is not one tenant's. Each row keeps
the tenant's JSON form (`Tenant.document`) and who last changed it, and when.

The `TENANTS` setting seeds rows that do not exist yet; after that, the rows (changed through
the API) are the truth, so a seed edited later does not undo what an operator did.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.domain.tenants import Tenant, TenantError, parse_tenant
from shared.storage.documents import pack_document, unpack_document
from shared.storage.tables import Entity, TableSet, create_table

REGISTRY_PARTITION = "registry"
log = logging.getLogger("entra_sync_monitor.tenants")


class TenantsTable(TableSet):
    _tenants_client: TableClient | None = None

    async def _tenants_table(self) -> TableClient:
        if self._tenants_client is None:
            client = self._service.get_table_client(f"{self._prefix}Tenants")
            await create_table(client)  # before it is shared: a reader at once must find the table
            if self._tenants_client is None:
                self._tenants_client = client
            else:  # another coroutine made it meanwhile
                await client.close()
        return self._tenants_client

    async def tenant_rows(self) -> tuple[list[tuple[Tenant, dict[str, Any]]], set[str]]:
        """Every row: the tenant, and its audit fields (updatedAt, updatedBy); and the ids of
        the tenants removed (tombstones). A row that no longer parses (edited by hand) is left
        out, with why in the log, rather than failing every poll."""
        table = await self._tenants_table()
        rows: list[tuple[Tenant, dict[str, Any]]] = []
        removed: set[str] = set()
        async for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": REGISTRY_PARTITION}):
            if entity.get("deleted"):
                removed.add(entity["RowKey"])
                continue
            tenant, audit = _row(dict(entity))
            if tenant is not None:
                rows.append((tenant, audit))
        return rows, removed

    async def save_tenant(self, tenant: Tenant, *, updated_at: str, updated_by: str | None) -> None:
        table = await self._tenants_table()
        await table.upsert_entity(_entity(tenant, updated_at, updated_by), mode=UpdateMode.REPLACE)

    async def seed_tenant(self, tenant: Tenant, *, updated_at: str) -> bool:
        """Add the row unless one exists (True when added)."""
        table = await self._tenants_table()
        try:
            await table.create_entity(_entity(tenant, updated_at, "TENANTS setting"))
        except ResourceExistsError:
            return False
        return True

    async def delete_tenant(self, tenant_id: str, *, tombstone: bool, at: str) -> None:
        """Remove the row; or, for a tenant the TENANTS setting names, leave a row that says it
        was removed, so that the seed does not add it again."""
        table = await self._tenants_table()
        if tombstone:
            entity = {"PartitionKey": REGISTRY_PARTITION, "RowKey": tenant_id, "deleted": True, "updatedAt": at}
            await table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            return
        try:
            await table.delete_entity(REGISTRY_PARTITION, tenant_id)
        except ResourceNotFoundError:
            pass

    async def close(self) -> None:
        if self._tenants_client is not None:
            await self._tenants_client.close()
        await super().close()


def _entity(tenant: Tenant, updated_at: str, updated_by: str | None) -> Entity:
    return {
        "PartitionKey": REGISTRY_PARTITION,
        "RowKey": tenant.tenant_id,
        "enabled": tenant.enabled,
        "updatedAt": updated_at,
        "updatedBy": updated_by or "",
        **pack_document(tenant.document()),
    }


def _row(entity: Entity) -> tuple[Tenant | None, dict[str, Any]]:
    audit = {"updatedAt": entity.get("updatedAt") or None, "updatedBy": entity.get("updatedBy") or None}
    try:
        document = unpack_document(entity)
        source = document.pop("source", "api")
        tenant = parse_tenant(document, endpoints=True, source=source if source in ("setting", "api") else "api")
    except (TenantError, ValueError, KeyError) as error:
        log.error("Tenants row %.60r is not a tenant and is ignored: %s", entity.get("RowKey"), error)
        return None, audit
    return tenant, audit
