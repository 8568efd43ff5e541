"""`<p>Jobs`: each job's current state (PK tenant, RK job key), or a removed job's tombstone."""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from shared.domain.changes import StoredJob, job_content_hash
from shared.domain.model import Job
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import job_key
from shared.storage.tables import Entity, TableSet


class JobsTable(TableSet):
    async def load_jobs(self) -> dict[str, StoredJob]:
        return (await self.load_jobs_and_removals())[0]

    async def load_jobs_and_removals(self) -> tuple[dict[str, StoredJob], dict[str, str]]:
        """The stored jobs by job key, and when each removed job was removed."""
        rows = await self._query("Jobs", "PartitionKey eq @pk", {"pk": self.tenant_id})
        jobs = {
            row["RowKey"]: StoredJob(row.get("contentHash", ""), unpack_document(row))
            for row in rows
            if row.get("document")
        }
        removals = {row["RowKey"]: row["removedAt"] for row in rows if not row.get("document") and row.get("removedAt")}
        return jobs, removals

    def job_entity(self, job: Job) -> Entity:
        return {
            "PartitionKey": self.tenant_id,
            "RowKey": job_key(job["servicePrincipalId"], job["jobId"]),
            "servicePrincipalId": job["servicePrincipalId"],
            "servicePrincipalName": job["servicePrincipalName"],
            "jobId": job["jobId"],
            "templateId": job["templateId"],
            "statusCode": job["statusCode"],
            "health": job["health"],
            "contentHash": job_content_hash(job),
            **pack_document(job),
        }

    def tombstone_entity(self, service_principal_id: str, job_id: str, removed_at: str) -> Entity:
        """A removed job's row: only when it was removed. Its runs, rollups and events stay."""
        return {
            "PartitionKey": self.tenant_id,
            "RowKey": job_key(service_principal_id, job_id),
            "jobId": job_id,
            "removedAt": removed_at,
        }

    async def list_jobs(self) -> list[Job]:
        rows = await self._query("Jobs", "PartitionKey eq @pk", {"pk": self.tenant_id})
        return [unpack_document(row) for row in rows if row.get("document")]

    async def get_job(self, service_principal_id: str, job_id: str) -> Job | None:
        try:
            entity = await self.tables["Jobs"].get_entity(self.tenant_id, job_key(service_principal_id, job_id))
        except ResourceNotFoundError:
            return None
        return unpack_document(entity) if entity.get("document") else None  # removed: a tombstone
