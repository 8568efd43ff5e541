"""`<prefix>JobActions`: the operator actions asked for through the API (shared/actions.py).

PK the job's partition (tenant|sp|job), RK the caller's request id: one row per request, made
insert-only, so a request repeated (or sent twice at once) is done once and answered the same.
RK `~slot` holds when the job's last action was let through: the per-job rate limit, taken
under its ETag so that two callers at once cannot both pass. Made on first use, like ApiKeys.
"""

from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import job_partition
from shared.storage.tables import TableSet, create_table

SLOT_ROW = "~slot"  # sorts after every request id (uuids are hex and dashes)


class JobActionsTable(TableSet):
    _job_actions_ready: bool = False

    async def _job_actions(self) -> TableClient:
        table = self._service.get_table_client(f"{self._prefix}JobActions")  # shares the transport
        if not self._job_actions_ready:
            await create_table(table)
            self._job_actions_ready = True
        return table

    async def find_job_action(self, sp_id: str, job_id: str, request_id: str) -> dict[str, Any] | None:
        table = await self._job_actions()
        try:
            return unpack_document(await table.get_entity(job_partition(self.tenant_id, sp_id, job_id), request_id))
        except ResourceNotFoundError:
            return None

    async def claim_job_action(self, record: dict[str, Any]) -> bool:
        """Store the request's row if no row has its id; False when one has (a repeat)."""
        table = await self._job_actions()
        try:
            await table.create_entity(self._action_entity(record))
        except ResourceExistsError:
            return False
        return True

    async def save_job_action(self, record: dict[str, Any]) -> None:
        await (await self._job_actions()).upsert_entity(self._action_entity(record), mode=UpdateMode.REPLACE)

    async def forget_job_action(self, record: dict[str, Any]) -> None:
        partition = job_partition(self.tenant_id, record["servicePrincipalId"], record["jobId"])
        try:
            await (await self._job_actions()).delete_entity(partition, record["requestId"])
        except ResourceNotFoundError:
            pass

    async def take_job_action_slot(self, sp_id: str, job_id: str, now: float, interval: float) -> float:
        """0 when this caller may act on the job now (and the slot is taken until now +
        interval); else the seconds to wait."""
        table = await self._job_actions()
        partition = job_partition(self.tenant_id, sp_id, job_id)
        entity = {"PartitionKey": partition, "RowKey": SLOT_ROW, "at": now}
        try:
            found = await table.get_entity(partition, SLOT_ROW)
        except ResourceNotFoundError:
            try:
                await table.create_entity(entity)
            except ResourceExistsError:
                return interval  # another caller took it this instant
            return 0.0
        wait = float(found.get("at") or 0) + interval - now
        if wait > 0:
            return wait
        try:
            await table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=found.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return interval
        return 0.0

    async def release_job_action_slot(self, sp_id: str, job_id: str) -> None:
        """Give the slot back (the action was not done: Graph refused it)."""
        partition = job_partition(self.tenant_id, sp_id, job_id)
        entity = {"PartitionKey": partition, "RowKey": SLOT_ROW, "at": 0.0}
        await (await self._job_actions()).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _action_entity(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "PartitionKey": job_partition(self.tenant_id, record["servicePrincipalId"], record["jobId"]),
            "RowKey": record["requestId"],
            "status": record["status"],
            **pack_document(record),
        }
