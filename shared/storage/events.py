"""`<p>Events`: each job's timeline (PK tenant|job key, RK inverted time left|kind)."""

from __future__ import annotations

from collections.abc import Sequence

from azure.core.exceptions import ResourceNotFoundError

from shared.domain.model import Event
from shared.domain.transitions import newest_first
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import event_row_key, job_partition
from shared.storage.tables import Entity, TableSet


class EventsTable(TableSet):
    def _event_entity(self, event: Event) -> Entity:
        return {
            "PartitionKey": job_partition(self.tenant_id, event["servicePrincipalId"], event["jobId"]),
            "RowKey": event_row_key(event),
            "kind": event["kind"],
            "at": event["at"],
            **pack_document(event),
        }

    async def save_events(self, events: Sequence[Event]) -> None:
        await self._upsert_all("Events", [self._event_entity(event) for event in events])

    async def list_events(self, service_principal_id: str, job_id: str, *, top: int = 100) -> list[Event]:
        """The job's timeline, newest first."""
        partition = job_partition(self.tenant_id, service_principal_id, job_id)
        events: list[Event] = []
        try:
            async for entity in self.tables["Events"].query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=top
            ):
                events.append(unpack_document(entity))
                if len(events) >= top:
                    break
        except ResourceNotFoundError:
            return []
        return newest_first(events)
