"""Azure Table Storage: the one module that reads and writes the app's tables.

Tables (prefix from TABLE_PREFIX; docs/tables.md has keys, properties and the queries each
serves):
- `<p>Jobs`        PK tenant, RK job key: each job's current state.
- `<p>Executions`  PK tenant|job key, RK inverted timeBegan ticks|activityIdentifier:
                   every distinct run once, newest first.
- `<p>JobDays`     PK tenant|day, RK job key: a job's runs of one UTC day, by state.
- `<p>TenantDays`  PK tenant, RK day: the tenant's runs of one day, summed from JobDays.
- `<p>Polls`       PK tenant, RK inverted start ticks|poll id: a record of every poll.

Every key is derived from Graph's ids, so repeating or overlapping polls write the same
entities instead of new ones. Every filter is parameterized; no user text is formatted into
a query.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.normalize import Execution, Job
from shared.process_cache import ProcessCache
from shared.settings import Settings, StorageSettings
from shared.timestamps import isoformat_utc, timestamp_ticks

TRANSACTION_LIMIT = 100  # Azure's maximum operations in one entity group transaction
_MAX_TICKS = 3_155_378_975_999_999_999  # 9999-12-31T23:59:59.9999999Z
_KEY_UNSAFE = re.compile(r"[/\\#?%|\x00-\x1f\x7f-\x9f]")
TABLE_NAMES = ("Jobs", "Executions", "JobDays", "TenantDays", "Polls")


def key_part(value: str) -> str:
    """Escape what Table keys forbid (`/ \\ # ?`, control characters) and our separator `|`."""
    return _KEY_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)


def job_key(service_principal_id: str, job_id: str) -> str:
    return f"{key_part(service_principal_id)}|{key_part(job_id)}"


def inverted_ticks(timestamp: str) -> str:
    """Fixed-width key part that sorts newest first."""
    return f"{_MAX_TICKS - timestamp_ticks(timestamp):019d}"


def execution_row_key(execution: Execution) -> str:
    return f"{inverted_ticks(execution['timeBegan'])}|{key_part(execution['activityIdentifier'])}"


def content_hash(document: dict[str, Any], ignore: Iterable[str] = ()) -> str:
    skipped = set(ignore)
    data = {k: v for k, v in document.items() if k not in skipped}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def job_content_hash(job: Job) -> str:
    # observedAt moves every poll and healthReasons carry ages ("for 5 h"): the job has
    # changed only if something else did. The API recomputes reasons when it answers.
    return content_hash(dict(job), ignore=("observedAt", "healthReasons"))


def _day_of(execution: Execution) -> str:
    return execution["timeBegan"][:10]


def _day_bounds(day: str) -> tuple[str, str]:
    """RowKey range [low, high) of the Executions rows whose run began on `day`."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    first = timestamp_ticks(isoformat_utc(start))
    after = timestamp_ticks(isoformat_utc(start + timedelta(days=1)))
    return f"{_MAX_TICKS - after + 1:019d}", f"{_MAX_TICKS - first + 1:019d}"


@dataclass(frozen=True)
class StoredJob:
    content_hash: str
    document: Job


@dataclass(frozen=True)
class DayCounts:
    runs: int
    by_state: dict[str, int]
    imported: int
    exported: int
    escrowed: int


def _sum_days(rows: Iterable[dict[str, Any]]) -> DayCounts:
    runs = imported = exported = escrowed = 0
    by_state: dict[str, int] = {}
    for row in rows:
        runs += int(row.get("runs") or 0)
        imported += int(row.get("countImported") or 0)
        exported += int(row.get("countExported") or 0)
        escrowed += int(row.get("countEscrowed") or 0)
        for state, count in json.loads(row.get("byState") or "{}").items():
            by_state[state] = by_state.get(state, 0) + int(count)
    return DayCounts(runs, by_state, imported, exported, escrowed)


def _int64(value: int) -> Any:
    from azure.data.tables import EdmType, EntityProperty

    # Graph's counts are Int64; the SDK refuses Python ints of 2**31 and more unless typed.
    return EntityProperty(value, EdmType.INT64)


def _number(value: Any) -> int:
    """An Int64 property as a plain int (the SDK returns them as EntityProperty)."""
    return int(getattr(value, "value", value) or 0)


class Store:
    """The tables of one tenant. Create with `open_store`; one per process."""

    def __init__(self, service: TableServiceClient, prefix: str, tenant_id: str) -> None:
        self._service = service
        self.tenant_id = tenant_id
        self.tables: dict[str, TableClient] = {
            name: service.get_table_client(f"{prefix}{name}") for name in TABLE_NAMES
        }
        self._tables_ready = False

    async def close(self) -> None:
        for table in self.tables.values():
            await table.close()
        await self._service.close()

    async def ensure_tables(self) -> None:
        if self._tables_ready:
            return
        for table in self.tables.values():
            try:
                await table.create_table()
            except ResourceExistsError:
                pass
        self._tables_ready = True

    # ------------------------------------------------------------ low level

    async def _query(
        self, table: str, filter_: str, parameters: dict[str, Any], select: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        try:
            return [
                dict(entity)
                async for entity in self.tables[table].query_entities(
                    filter_, parameters=parameters, select=list(select) if select else None
                )
            ]
        except ResourceNotFoundError:  # nothing polled yet: the table does not exist
            return []

    async def _upsert_all(self, table: str, entities: Sequence[dict[str, Any]]) -> None:
        """Replace-upsert in transactions of at most 100 operations of one partition."""
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for entity in entities:
            by_partition.setdefault(entity["PartitionKey"], []).append(entity)
        client = self.tables[table]
        for rows in by_partition.values():
            for start in range(0, len(rows), TRANSACTION_LIMIT):
                chunk = rows[start : start + TRANSACTION_LIMIT]
                if len(chunk) == 1:
                    await client.upsert_entity(chunk[0], mode=UpdateMode.REPLACE)
                    continue
                try:
                    await client.submit_transaction([("upsert", row, {"mode": UpdateMode.REPLACE}) for row in chunk])
                except TableTransactionError:
                    # Azure rejects a transaction with two operations on one entity; fall back.
                    for row in chunk:
                        await client.upsert_entity(row, mode=UpdateMode.REPLACE)

    # ------------------------------------------------------------ jobs

    async def load_jobs(self) -> dict[str, StoredJob]:
        rows = await self._query(
            "Jobs", "PartitionKey eq @pk", {"pk": self.tenant_id}, select=["RowKey", "contentHash", "document"]
        )
        return {
            row["RowKey"]: StoredJob(row.get("contentHash", ""), json.loads(row["document"]))
            for row in rows
            if row.get("document")
        }

    def job_entity(self, job: Job) -> dict[str, Any]:
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
            "document": json.dumps(job, separators=(",", ":")),
        }

    async def save_jobs(self, jobs: Sequence[Job]) -> None:
        await self._upsert_all("Jobs", [self.job_entity(job) for job in jobs])

    async def list_jobs(self) -> list[Job]:
        rows = await self._query("Jobs", "PartitionKey eq @pk", {"pk": self.tenant_id}, select=["document"])
        return [json.loads(row["document"]) for row in rows if row.get("document")]

    async def get_job(self, service_principal_id: str, job_id: str) -> Job | None:
        try:
            entity = await self.tables["Jobs"].get_entity(
                self.tenant_id, job_key(service_principal_id, job_id), select=["document"]
            )
        except ResourceNotFoundError:
            return None
        return json.loads(entity["document"])

    # ------------------------------------------------------------ executions

    def _executions_partition(self, service_principal_id: str, job_id: str) -> str:
        return f"{self.tenant_id}|{job_key(service_principal_id, job_id)}"

    async def save_runs(self, job: Job, runs: Sequence[Execution]) -> None:
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        await self._upsert_all(
            "Executions",
            [
                {
                    "PartitionKey": partition,
                    "RowKey": execution_row_key(run),
                    "servicePrincipalId": job["servicePrincipalId"],
                    "jobId": job["jobId"],
                    "activityIdentifier": run["activityIdentifier"],
                    "state": run["state"],
                    "timeBegan": run["timeBegan"],
                    "document": json.dumps(run, separators=(",", ":")),
                }
                for run in runs
            ],
        )

    async def delete_runs(self, job: Job, runs: Sequence[Execution]) -> None:
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        for run in runs:
            await self.tables["Executions"].delete_entity(partition, execution_row_key(run))

    async def list_executions(
        self, service_principal_id: str, job_id: str, *, top: int, after_row_key: str | None = None
    ) -> tuple[list[Execution], str | None]:
        """Newest first; returns the page and the RowKey to continue after (None at the end)."""
        filter_ = "PartitionKey eq @pk"
        parameters: dict[str, Any] = {"pk": self._executions_partition(service_principal_id, job_id)}
        if after_row_key is not None:
            filter_ += " and RowKey gt @after"
            parameters["after"] = after_row_key
        page: list[dict[str, Any]] = []
        try:
            async for entity in self.tables["Executions"].query_entities(
                filter_, parameters=parameters, select=["RowKey", "document"], results_per_page=min(top + 1, 1000)
            ):
                page.append(entity)
                if len(page) > top:
                    break
        except ResourceNotFoundError:
            return [], None
        more = len(page) > top
        page = page[:top]
        return [json.loads(row["document"]) for row in page], (page[-1]["RowKey"] if more else None)

    # ------------------------------------------------------------ rollups

    async def refresh_job_days(self, job: Job, days: Iterable[str]) -> None:
        """Recount the job's runs on each day from Executions: idempotent, so a repeated or
        overlapping poll converges on the same rollup instead of counting a run twice."""
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        entities = []
        for day in sorted(set(days)):
            low, high = _day_bounds(day)
            rows = await self._query(
                "Executions",
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                {"pk": partition, "low": low, "high": high},
                select=["document"],
            )
            runs = [json.loads(row["document"]) for row in rows]
            by_state: dict[str, int] = {}
            for run in runs:
                state = run.get("state") or "unknown"
                by_state[state] = by_state.get(state, 0) + 1
            entities.append(
                {
                    "PartitionKey": f"{self.tenant_id}|{day}",
                    "RowKey": job_key(job["servicePrincipalId"], job["jobId"]),
                    "servicePrincipalId": job["servicePrincipalId"],
                    "jobId": job["jobId"],
                    "runs": len(runs),
                    "byState": json.dumps(by_state, sort_keys=True),
                    "countImported": _int64(sum(run.get("countImported") or 0 for run in runs)),
                    "countExported": _int64(sum(run.get("countExported") or 0 for run in runs)),
                    "countEscrowed": _int64(sum(run.get("countEscrowed") or 0 for run in runs)),
                }
            )
        for entity in entities:
            await self.tables["JobDays"].upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def refresh_tenant_days(self, days: Iterable[str]) -> None:
        entities = []
        for day in sorted(set(days)):
            rows = await self._query("JobDays", "PartitionKey eq @pk", {"pk": f"{self.tenant_id}|{day}"})
            counts = _sum_days(
                {**row, **{k: _number(row.get(k)) for k in ("countImported", "countExported", "countEscrowed")}}
                for row in rows
            )
            entities.append(
                {
                    "PartitionKey": self.tenant_id,
                    "RowKey": day,
                    "runs": counts.runs,
                    "byState": json.dumps(counts.by_state, sort_keys=True),
                    "countImported": _int64(counts.imported),
                    "countExported": _int64(counts.exported),
                    "countEscrowed": _int64(counts.escrowed),
                }
            )
        await self._upsert_all("TenantDays", entities)

    async def run_counts(self, since_day: str | None = None) -> DayCounts:
        """Runs by state from the daily rollups: cost bounded by days, not by history."""
        filter_, parameters = "PartitionKey eq @pk", {"pk": self.tenant_id}
        if since_day:
            filter_ += " and RowKey ge @since"
            parameters["since"] = since_day
        rows = await self._query("TenantDays", filter_, parameters)
        return _sum_days(
            {**row, **{k: _number(row.get(k)) for k in ("countImported", "countExported", "countEscrowed")}}
            for row in rows
        )

    # ------------------------------------------------------------ polls

    async def save_poll(self, record: dict[str, Any]) -> None:
        await self.tables["Polls"].upsert_entity(
            {
                "PartitionKey": self.tenant_id,
                "RowKey": f"{inverted_ticks(record['startedAt'])}|{record['pollId']}",
                "status": record["status"],
                "startedAt": record["startedAt"],
                "document": json.dumps(record, separators=(",", ":")),
            },
            mode=UpdateMode.REPLACE,
        )

    async def last_poll(self) -> dict[str, Any] | None:
        try:
            async for entity in self.tables["Polls"].query_entities(
                "PartitionKey eq @pk", parameters={"pk": self.tenant_id}, select=["document"], results_per_page=1
            ):
                return json.loads(entity["document"])
        except ResourceNotFoundError:
            return None
        return None


def table_service(storage: StorageSettings) -> TableServiceClient:
    if storage.connection_string:
        return TableServiceClient.from_connection_string(storage.connection_string)
    from azure.identity.aio import ManagedIdentityCredential

    assert storage.table_service_uri is not None  # load_settings guarantees one of the two
    credential = ManagedIdentityCredential(client_id=storage.managed_identity_client_id)
    return TableServiceClient(endpoint=storage.table_service_uri, credential=credential)


_stores = ProcessCache[Store]()


def open_store(settings: Settings) -> Store:
    """The process's store, created on first use inside the running event loop."""
    return _stores.get(
        settings, lambda: Store(table_service(settings.storage), settings.table_prefix, settings.tenant_id)
    )


async def close_store() -> None:
    await _stores.close()
