"""`<p>ProvisioningErrors` and `<p>ProvisioningErrorDays`: error groups from the provisioning logs.

- ProvisioningErrors: PK the job's partition (as Executions), RK `{hour}|{group}`: a job's
  error groups hour by hour (`shared.domain.provisioning_logs.ErrorGroupHour`), read by the
  job's errors endpoint. Its tenant row `!cursor` holds the collector's state.
- ProvisioningErrorDays: PK `{tenant}|{day}`, RK `{job key}|{group}|{hour}`: the same rows by
  day, read by the tenant-wide errors endpoint.

Hours are written whole (every event of the hour counted): rows are replaced, never added
to, so an hour read again writes the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.domain.provisioning_logs import ErrorGroupHour, group_id
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import day_partition, job_key, job_partition
from shared.storage.tables import Entity, TableSet, create_table, delete_entities, upsert_entities

CURSOR_ROW = "!cursor"
_ALERT_COLUMNS = ("servicePrincipalId", "jobId", "hour", "status", "errorCode", "count", "firstSeen", "lastSeen")


class ProvisioningErrorsTables(TableSet):
    _error_tables: tuple[Any, Any] | None = None
    _error_tables_ready = False

    def _errors_tables(self) -> tuple[Any, Any]:
        # Not in TABLE_NAMES: only a tenant that turns the feature on has these tables. The
        # clients share the service's transport (as ApiKeys').
        if self._error_tables is None:
            self._error_tables = (
                self._service.get_table_client(f"{self._prefix}ProvisioningErrors"),
                self._service.get_table_client(f"{self._prefix}ProvisioningErrorDays"),
            )
        return self._error_tables

    async def ensure_error_tables(self) -> None:
        """Create both tables, once per store (as `ensure_tables`), not on every poll."""
        if self._error_tables_ready:
            return
        for table in self._errors_tables():
            await create_table(table)
        self._error_tables_ready = True

    async def load_log_cursor(self) -> dict[str, Any] | None:
        by_job, _ = self._errors_tables()
        try:
            entity = await by_job.get_entity(self.tenant_id, CURSOR_ROW)
        except ResourceNotFoundError:
            return None
        state: dict[str, Any] = unpack_document(entity)
        return state

    async def save_log_cursor(self, state: dict[str, Any]) -> None:
        by_job, _ = self._errors_tables()
        await by_job.upsert_entity(
            {"PartitionKey": self.tenant_id, "RowKey": CURSOR_ROW, **pack_document(state)}, mode=UpdateMode.REPLACE
        )

    async def save_error_hours(self, rows: Sequence[tuple[str, ErrorGroupHour]]) -> int:
        """Store (servicePrincipalId, row) pairs in both tables; returns the rows written."""
        by_job: list[Entity] = []
        by_day: list[Entity] = []
        for sp_id, row in rows:
            group = group_id(row["status"], row["action"], row["errorCode"])
            # Plain columns: what the alert step selects without unpacking samples.
            common = {
                "count": row["count"],
                "errorCode": row["errorCode"],
                "status": row["status"],
                "servicePrincipalId": sp_id,
                "jobId": row["jobId"],
                "hour": row["hour"],
                "firstSeen": row["firstSeen"],
                "lastSeen": row["lastSeen"],
            }
            document = pack_document({**row, "servicePrincipalId": sp_id})
            by_job.append(
                {
                    "PartitionKey": job_partition(self.tenant_id, sp_id, row["jobId"]),
                    "RowKey": f"{row['hour']}|{group}",
                    **common,
                    **document,
                }
            )
            by_day.append(
                {
                    "PartitionKey": day_partition(self.tenant_id, row["hour"][:10]),
                    "RowKey": f"{job_key(sp_id, row['jobId'])}|{group}|{row['hour']}",
                    **common,
                    **document,
                }
            )
        jobs_table, days_table = self._errors_tables()
        await upsert_entities(jobs_table, by_job)
        await upsert_entities(days_table, by_day)
        return len(by_job)

    async def job_error_hours(self, service_principal_id: str, job_id: str, first_day: str, last_day: str) -> list[Any]:
        """A job's hour rows from `first_day` to `last_day` (yyyy-mm-dd, both included)."""
        by_job, _ = self._errors_tables()
        return await _rows(
            by_job,
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {
                "pk": job_partition(self.tenant_id, service_principal_id, job_id),
                "low": first_day,
                "high": f"{last_day}~",  # `~` sorts after the hour's `T..|...`
            },
        )

    async def error_hours_of_days(self, days: Sequence[str]) -> list[Any]:
        """Every job's hour rows of these days (yyyy-mm-dd)."""
        _, by_day = self._errors_tables()
        rows: list[Any] = []
        for day in days:
            rows.extend(await _rows(by_day, "PartitionKey eq @pk", {"pk": day_partition(self.tenant_id, day)}))
        return rows

    async def recent_error_rows(self, since_hour: str, days: Sequence[str]) -> list[dict[str, Any]]:
        """Every job's hour rows of these days from `since_hour` (`YYYY-MM-DDTHH`) on, as plain
        columns only (no samples): what the alert step reads after each poll."""
        _, by_day = self._errors_tables()
        rows: list[dict[str, Any]] = []
        for day in days:
            partition = day_partition(self.tenant_id, day)
            try:
                found = [
                    dict(entity)
                    async for entity in by_day.query_entities(
                        "PartitionKey eq @pk", parameters={"pk": partition}, select=list(_ALERT_COLUMNS)
                    )
                ]
            except ResourceNotFoundError:
                continue
            if any(row.get("jobId") is None for row in found):  # rows stored before the plain columns
                found = await _rows(by_day, "PartitionKey eq @pk", {"pk": partition})
            rows.extend(row for row in found if str(row.get("hour") or "") >= since_hour)
        return rows

    async def job_error_codes(self, sp_id: str, job_id: str, first_day: str, before_hour: str) -> set[str]:
        """The error codes of a job's failure rows from `first_day` up to `before_hour`."""
        by_job, _ = self._errors_tables()
        try:
            return {
                str(entity["errorCode"])
                async for entity in by_job.query_entities(
                    "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high and status eq @status",
                    parameters={
                        "pk": job_partition(self.tenant_id, sp_id, job_id),
                        "low": first_day,
                        "high": before_hour,
                        "status": "failure",
                    },
                    select=["errorCode"],
                )
                if entity.get("errorCode")
            }
        except ResourceNotFoundError:
            return set()

    async def purge_error_hours_before(self, cutoff_day: str, *, budget: int) -> int:
        """Delete at most `budget` hour rows of days before `cutoff_day` (yyyy-mm-dd), from both
        tables; returns how many."""
        by_job, by_day = self._errors_tables()
        try:
            old = [
                dict(entity)
                async for entity in by_day.query_entities(
                    "PartitionKey gt @low and PartitionKey lt @high",
                    parameters={"low": f"{self.tenant_id}|", "high": day_partition(self.tenant_id, cutoff_day)},
                    select=["PartitionKey", "RowKey"],
                )
            ]
        except ResourceNotFoundError:
            return 0
        old = old[:budget]
        twins = []
        for row in old:
            sp_part, job_part, group, hour = row["RowKey"].split("|")
            twins.append({"PartitionKey": f"{self.tenant_id}|{sp_part}|{job_part}", "RowKey": f"{hour}|{group}"})
        for table, rows in ((by_job, twins), (by_day, old)):
            try:
                await delete_entities(table, rows)
            except TableTransactionError:  # a twin a crash never wrote: one at a time
                for row in rows:
                    await table.delete_entity(row["PartitionKey"], row["RowKey"])
        return len(old)


async def _rows(table: Any, filter_: str, parameters: dict[str, Any]) -> list[Any]:
    try:
        return [unpack_document(entity) async for entity in table.query_entities(filter_, parameters=parameters)]
    except ResourceNotFoundError:
        return []
