"""Azure Table Storage: the one module that reads and writes the app's tables.

Tables (prefix from TABLE_PREFIX; docs/tables.md has keys, properties and the queries each
serves):
- `<p>Jobs`        PK tenant, RK job key: each job's current state; a removed job leaves a
                   row with only `removedAt`, so its return is told apart from its first
                   appearance.
- `<p>Executions`  PK tenant|job key, RK inverted timeBegan ticks|activityIdentifier:
                   every distinct run once, newest first.
- `<p>RunsByTime`  PK tenant|day, RK inverted timeBegan ticks|job key|activityIdentifier:
                   the same runs by UTC day of timeBegan, for tenant-wide time windows.
- `<p>Events`      PK tenant|job key, RK inverted time|kind: a job's state transitions.
- `<p>ServicePrincipals` PK tenant, RK service principal id: discovery's memory of which
                   service principals have jobs.
- `<p>JobDays`     PK tenant|day, RK job key: a job's runs of one UTC day, by state.
- `<p>TenantDays`  PK tenant, RK day: the tenant's runs of one day, summed from JobDays.
- `<p>Polls`       PK tenant, RK inverted start ticks|poll id: a record of every poll.

Every key is derived from Graph's ids, so repeating or overlapping polls write the same
entities instead of new ones. Every filter is parameterized; no user text is formatted into
a query.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.domain.model import EVENT_KINDS, Event
from shared.domain.normalize import Execution, Job, run_began, run_id
from shared.domain.timestamps import timestamp_ticks
from shared.process_cache import ProcessCache
from shared.settings import Settings, StorageSettings

TRANSACTION_LIMIT = 100  # Azure's maximum operations in one entity group transaction
_MAX_TICKS = 3_155_378_975_999_999_999  # 9999-12-31T23:59:59.9999999Z
_EVENT_ORDER = {kind: index for index, kind in enumerate(EVENT_KINDS)}
_DISCOVERY_MARKER = "!discovery"  # sorts before any id; holds when discovery last completed
_KEY_UNSAFE = re.compile(r"[/\\#?%|\x00-\x1f\x7f-\x9f]")
_KEY_PART_LIMIT = 240  # three parts and a timestamp stay under the 1 KiB key limit
_PROPERTY_CHARS = 30_000  # a string property holds 64 KiB of UTF-16: up to 32K characters
TABLE_NAMES = ("Jobs", "Executions", "RunsByTime", "Events", "JobDays", "TenantDays", "Polls", "ServicePrincipals")


def key_part(value: str) -> str:
    """Escape what Table keys forbid (`/ \\ # ?`, control characters) and our separator `|`.
    A part too long for a 1 KiB key keeps a readable head and a hash of the whole value."""
    escaped = _KEY_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)
    if len(escaped) <= _KEY_PART_LIMIT:
        return escaped
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{escaped[:100].rstrip('%0123456789ABCDEF')}~{digest}"


def pack_document(document: Any) -> dict[str, str]:
    """JSON in as many string properties as it needs (Azure caps one at 64 KiB)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    chunks = [text[i : i + _PROPERTY_CHARS] for i in range(0, len(text), _PROPERTY_CHARS)] or [""]
    return {("document" if index == 0 else f"document{index}"): chunk for index, chunk in enumerate(chunks)}


def unpack_document(entity: dict[str, Any]) -> Any:
    parts = [entity["document"]]
    index = 1
    while f"document{index}" in entity:
        parts.append(entity[f"document{index}"])
        index += 1
    return json.loads("".join(parts))


def job_key(service_principal_id: str, job_id: str) -> str:
    return f"{key_part(service_principal_id)}|{key_part(job_id)}"


def inverted_ticks(timestamp: str) -> str:
    """Fixed-width key part that sorts newest first."""
    return f"{_MAX_TICKS - timestamp_ticks(timestamp):019d}"


def execution_row_key(execution: Execution) -> str:
    return f"{inverted_ticks(run_began(execution))}|{key_part(run_id(execution))}"


def content_hash(document: dict[str, Any], ignore: Iterable[str] = ()) -> str:
    skipped = set(ignore)
    data = {k: v for k, v in document.items() if k not in skipped}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def job_content_hash(job: Job) -> str:
    # observedAt moves every poll and healthReasons carry ages ("for 5 h"): the job has
    # changed only if something else did. The API recomputes reasons when it answers.
    return content_hash(dict(job), ignore=("observedAt", "healthReasons"))


async def upsert_entities(client: TableClient, entities: Sequence[dict[str, Any]]) -> None:
    """Replace-upsert in transactions of at most 100 operations of one partition (Azure's
    rule; Azurite accepts more, so the chunking is ours to keep)."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        by_partition.setdefault(entity["PartitionKey"], []).append(entity)
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


def with_derived_figures(run: Execution, previous: Execution | None) -> Execution:
    """The run with its escrow change since the job's previous run (None without one)."""
    escrowed = run["countEscrowed"]
    before = previous["countEscrowed"] if previous is not None else None
    delta = escrowed - before if escrowed is not None and before is not None else None
    return {**run, "escrowDelta": delta}


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
        await upsert_entities(self.tables[table], entities)

    # ------------------------------------------------------------ jobs

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
            **pack_document(job),
        }

    async def save_jobs(self, jobs: Sequence[Job]) -> None:
        await self._upsert_all("Jobs", [self.job_entity(job) for job in jobs])

    async def list_jobs(self) -> list[Job]:
        rows = await self._query("Jobs", "PartitionKey eq @pk", {"pk": self.tenant_id})
        return [unpack_document(row) for row in rows if row.get("document")]

    async def get_job(self, service_principal_id: str, job_id: str) -> Job | None:
        try:
            entity = await self.tables["Jobs"].get_entity(self.tenant_id, job_key(service_principal_id, job_id))
        except ResourceNotFoundError:
            return None
        return unpack_document(entity) if entity.get("document") else None  # removed: a tombstone

    # ------------------------------------------------------------ executions

    def _executions_partition(self, service_principal_id: str, job_id: str) -> str:
        return f"{self.tenant_id}|{job_key(service_principal_id, job_id)}"

    async def _previous_run(self, partition: str, run: Execution) -> Execution | None:
        """The job's stored run just before `run` (the next row: rows sort newest first)."""
        filter_, parameters = run_filter(since=None, until=None, after_row_key=execution_row_key(run))
        rows, _ = await self._read_page("Executions", filter_, {**parameters, "pk": partition}, top=1)
        return unpack_document(rows[0]) if rows else None

    async def save_runs(
        self, job: Job, runs: Sequence[Execution], known: Sequence[Execution] = ()
    ) -> list[dict[str, Any]]:
        """Store new or changed runs in Executions, with their derived figures. Returns their
        RunsByTime rows, which share partitions across jobs: the caller writes them in batches
        (`save_runs_by_time`). `known` are the job's runs from its stored state: the newest
        of them older than a new run is its predecessor, so storage is asked only without one."""
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        key = job_key(job["servicePrincipalId"], job["jobId"])
        stored: list[Execution] = []
        candidates = sorted(known, key=run_began)
        for run in sorted(runs, key=run_began):
            older = [r for r in [*candidates, *stored] if run_began(r) < run_began(run)]
            previous = max(older, key=run_began) if older else None
            if previous is None:
                previous = await self._previous_run(partition, run)
            stored.append(with_derived_figures(run, previous))
        executions, by_time = [], []
        for run in stored:
            common = {
                "servicePrincipalId": job["servicePrincipalId"],
                "jobId": job["jobId"],
                "activityIdentifier": run_id(run),
                "state": run["state"],
                "timeBegan": run_began(run),
                **pack_document(run),
            }
            executions.append({"PartitionKey": partition, "RowKey": execution_row_key(run), **common})
            by_time.append(
                {
                    "PartitionKey": f"{self.tenant_id}|{run_began(run)[:10]}",
                    "RowKey": f"{inverted_ticks(run_began(run))}|{key}|{key_part(run_id(run))}",
                    "servicePrincipalName": job["servicePrincipalName"],
                    **common,
                }
            )
        await self._upsert_all("Executions", executions)
        return by_time

    async def save_runs_by_time(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._upsert_all("RunsByTime", rows)

    async def delete_runs(self, job: Job, runs: Sequence[Execution]) -> None:
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        key = job_key(job["servicePrincipalId"], job["jobId"])
        for run in runs:
            await self.tables["Executions"].delete_entity(partition, execution_row_key(run))
            await self.tables["RunsByTime"].delete_entity(
                f"{self.tenant_id}|{run_began(run)[:10]}",
                f"{inverted_ticks(run_began(run))}|{key}|{key_part(run_id(run))}",
            )

    # ------------------------------------------------------------ rollups

    async def count_job_days(self, job: Job, days: Iterable[str]) -> list[dict[str, Any]]:
        """Recount the job's runs on each day from Executions: idempotent, so a repeated or
        overlapping poll converges on the same rollup instead of counting a run twice.
        Returns the JobDays rows; they share a partition per day across jobs, so the caller
        writes them in batches (`save_job_days`)."""
        partition = self._executions_partition(job["servicePrincipalId"], job["jobId"])
        entities = []
        for day in sorted(set(days)):
            start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            filter_, parameters = run_filter(since=start, until=start + timedelta(days=1))
            rows = await self._query("Executions", filter_, {**parameters, "pk": partition})
            runs = [unpack_document(row) for row in rows]
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
        return entities

    async def save_job_days(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._upsert_all("JobDays", rows)

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

    # ------------------------------------------------------------ events

    def _event_entity(self, event: Event) -> dict[str, Any]:
        key = job_key(event["servicePrincipalId"], event["jobId"])
        # Keyed by the left state's observedAt: overlapping polls write the same event once.
        when = inverted_ticks(event["since"]) if event["since"] else f"{_MAX_TICKS:019d}"
        return {
            "PartitionKey": f"{self.tenant_id}|{key}",
            "RowKey": f"{when}|{event['kind']}",
            "kind": event["kind"],
            "at": event["at"],
            **pack_document(event),
        }

    async def save_events(self, events: Sequence[Event]) -> None:
        await self._upsert_all("Events", [self._event_entity(event) for event in events])

    async def list_events(self, service_principal_id: str, job_id: str, *, top: int = 100) -> list[Event]:
        """The job's timeline, newest first."""
        partition = f"{self.tenant_id}|{job_key(service_principal_id, job_id)}"
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
        # Events of one poll share their time: within it, the order job_transitions gives.
        return sorted(events, key=lambda e: (e["at"], _EVENT_ORDER.get(e["kind"], 99)), reverse=True)

    async def remove_job(self, service_principal_id: str, job_id: str, removed_at: str) -> None:
        """A removed job leaves the current state for a tombstone (when it was removed); its
        runs, rollups and events stay."""
        await self.tables["Jobs"].upsert_entity(
            {
                "PartitionKey": self.tenant_id,
                "RowKey": job_key(service_principal_id, job_id),
                "jobId": job_id,
                "removedAt": removed_at,
            },
            mode=UpdateMode.REPLACE,
        )

    # ------------------------------------------------------------ discovery

    async def load_principals(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        """Known service principals by id, and when discovery last completed (None: never)."""
        rows = await self._query("ServicePrincipals", "PartitionKey eq @pk", {"pk": self.tenant_id})
        principals = {row["id"]: row for row in rows if row["RowKey"] != _DISCOVERY_MARKER}
        marker = next((row for row in rows if row["RowKey"] == _DISCOVERY_MARKER), None)
        return principals, (marker or {}).get("completedAt")

    async def save_principals(
        self, principals: Sequence[dict[str, Any]], *, remove: Iterable[str] = (), completed_at: str | None = None
    ) -> None:
        """Upsert what changed (the caller passes only changed rows) and forget removed ones."""
        entities = [
            {
                "PartitionKey": self.tenant_id,
                "RowKey": key_part(sp["id"]),
                "id": sp["id"],
                "appId": sp.get("appId"),
                "displayName": sp.get("displayName"),
                "jobCount": int(sp.get("jobCount") or 0),
            }
            for sp in principals
        ]
        if completed_at is not None:
            entities.append({"PartitionKey": self.tenant_id, "RowKey": _DISCOVERY_MARKER, "completedAt": completed_at})
        await self._upsert_all("ServicePrincipals", entities)
        for sp_id in remove:
            try:
                await self.tables["ServicePrincipals"].delete_entity(self.tenant_id, key_part(sp_id))
            except ResourceNotFoundError:
                pass

    # ------------------------------------------------------------ retention

    async def purge_runs_before(self, cutoff_day: str, *, budget: int) -> tuple[int, bool]:
        """Delete stored runs (Executions and RunsByTime rows) of days before `cutoff_day`,
        at most `budget` runs per call; rollups and events stay. Returns (runs deleted,
        finished). Days already purged are marked, so later calls skip them."""
        days = await self._query(
            "TenantDays",
            "PartitionKey eq @pk and RowKey lt @cutoff",
            {"pk": self.tenant_id, "cutoff": cutoff_day},
            select=["RowKey", "purged"],
        )
        deleted = 0
        for day in sorted(row["RowKey"] for row in days if not row.get("purged")):
            remaining = budget - deleted
            if remaining <= 0:
                return deleted, False
            rows = await self._query(
                "RunsByTime",
                "PartitionKey eq @pk",
                {"pk": f"{self.tenant_id}|{day}"},
                select=["PartitionKey", "RowKey", "servicePrincipalId", "jobId", "timeBegan", "activityIdentifier"],
            )
            batch = rows[:remaining]
            for row in batch:
                partition = self._executions_partition(row["servicePrincipalId"], row["jobId"])
                row_key = f"{inverted_ticks(row['timeBegan'])}|{key_part(row['activityIdentifier'])}"
                await self.tables["Executions"].delete_entity(partition, row_key)
            await self._delete_all("RunsByTime", batch)
            deleted += len(batch)
            if len(rows) > len(batch):
                return deleted, False
            await self.tables["TenantDays"].upsert_entity(
                {"PartitionKey": self.tenant_id, "RowKey": day, "purged": True}, mode=UpdateMode.MERGE
            )
        return deleted, True

    async def purge_polls_before(self, cutoff: str, *, budget: int) -> int:
        rows = await self._query(
            "Polls",
            "PartitionKey eq @pk and RowKey gt @after",
            {"pk": self.tenant_id, "after": inverted_ticks(cutoff)},
            select=["PartitionKey", "RowKey"],
        )
        rows = rows[:budget]
        await self._delete_all("Polls", rows)
        return len(rows)

    async def _delete_all(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Delete rows (PartitionKey and RowKey present) in transactions of one partition."""
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_partition.setdefault(row["PartitionKey"], []).append(row)
        client = self.tables[table]
        for partition_rows in by_partition.values():
            for start in range(0, len(partition_rows), TRANSACTION_LIMIT):
                chunk = partition_rows[start : start + TRANSACTION_LIMIT]
                await client.submit_transaction(
                    [("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in chunk]
                )

    # ------------------------------------------------------------ polls

    async def save_poll(self, record: dict[str, Any]) -> None:
        await self.tables["Polls"].upsert_entity(
            {
                "PartitionKey": self.tenant_id,
                "RowKey": f"{inverted_ticks(record['startedAt'])}|{record['pollId']}",
                "status": record["status"],
                "startedAt": record["startedAt"],
                **pack_document(record),
            },
            mode=UpdateMode.REPLACE,
        )

    async def last_poll(self) -> dict[str, Any] | None:
        try:
            async for entity in self.tables["Polls"].query_entities(
                "PartitionKey eq @pk", parameters={"pk": self.tenant_id}, results_per_page=1
            ):
                return unpack_document(entity)
        except ResourceNotFoundError:
            return None
        return None

    # ============================================================ API queries
    # What the HTTP API (shared/api*.py) reads. Every filter is parameterized: user input only
    # ever arrives as a parameter value. The one write is the API's continuation-signing key,
    # made once in the API's own table `<prefix>ApiKeys` (PK tenant, RK `continuation`).

    _signing_key: bytes | None = None

    async def _read_page(
        self, table: str, filter_: str, parameters: dict[str, Any], *, top: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """At most `top` rows in key order, and whether more follow (reads top + 1)."""
        rows: list[dict[str, Any]] = []
        try:
            async for entity in self.tables[table].query_entities(
                filter_, parameters=parameters, results_per_page=min(top + 1, 1000)
            ):
                rows.append(dict(entity))
                if len(rows) > top:
                    break
        except ResourceNotFoundError:
            return [], False
        return rows[:top], len(rows) > top

    async def executions_page(
        self,
        service_principal_id: str,
        job_id: str,
        *,
        top: int,
        since: datetime | None = None,
        until: datetime | None = None,
        states: Sequence[str] = (),
        after_row_key: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        """A job's runs that began in [since, until), newest first, optionally of some states;
        returns the page and the RowKey to continue after (None at the end)."""
        filter_, parameters = run_filter(since=since, until=until, states=states, after_row_key=after_row_key)
        parameters["pk"] = self._executions_partition(service_principal_id, job_id)
        rows, more = await self._read_page("Executions", filter_, parameters, top=top)
        return [unpack_document(row) for row in rows], (rows[-1]["RowKey"] if more and rows else None)

    async def runs_by_time_page(
        self,
        day: str,
        *,
        top: int,
        since: datetime | None = None,
        until: datetime | None = None,
        states: Sequence[str] = (),
        after_row_key: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The tenant's runs that began on UTC `day` (and in [since, until)), newest first, each
        with its job's ids and service principal name; and the RowKey to continue after."""
        filter_, parameters = run_filter(since=since, until=until, states=states, after_row_key=after_row_key)
        parameters["pk"] = f"{self.tenant_id}|{day}"
        rows, more = await self._read_page("RunsByTime", filter_, parameters, top=top)
        runs = [
            {
                **unpack_document(row),
                "servicePrincipalId": row.get("servicePrincipalId"),
                "servicePrincipalName": row.get("servicePrincipalName"),
                "jobId": row.get("jobId"),
            }
            for row in rows
        ]
        return runs, (rows[-1]["RowKey"] if more and rows else None)

    async def run_days(self, first_day: str | None = None, last_day: str | None = None) -> list[dict[str, Any]]:
        """TenantDays rows of days in [first_day, last_day] (either open), oldest first, with
        `day`, `runs`, `byState` (dict) and the three counts as plain ints."""
        filter_, parameters = "PartitionKey eq @pk", {"pk": self.tenant_id}
        if first_day:
            filter_ += " and RowKey ge @first"
            parameters["first"] = first_day
        if last_day:
            filter_ += " and RowKey le @last"
            parameters["last"] = last_day
        rows = await self._query(
            "TenantDays",
            filter_,
            parameters,
            select=["RowKey", "runs", "byState", "countImported", "countExported", "countEscrowed"],
        )
        return [rollup_row(row, day=row["RowKey"]) for row in rows]

    async def job_days(self, first_day: str, last_day: str, *, days_per_query: int = 15) -> list[dict[str, Any]]:
        """JobDays rows of the days in [first_day, last_day], each with `day`, `servicePrincipalId`,
        `jobId`, `runs`, `byState` (dict) and the counts. Read as PartitionKey ranges of up to
        `days_per_query` days, concurrently: few requests, and a long window costs no more time
        than its largest chunk."""
        first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
        chunks = []
        while first <= last:
            end = min(last, first + timedelta(days=days_per_query - 1))
            chunks.append((first.isoformat(), end.isoformat()))
            first = end + timedelta(days=1)

        async def chunk(low: str, high: str) -> list[dict[str, Any]]:
            rows = await self._query(
                "JobDays",
                "PartitionKey ge @low and PartitionKey le @high",
                {"low": f"{self.tenant_id}|{low}", "high": f"{self.tenant_id}|{high}"},
                select=[
                    "PartitionKey",
                    "servicePrincipalId",
                    "jobId",
                    "runs",
                    "byState",
                    "countImported",
                    "countExported",
                    "countEscrowed",
                ],
            )
            return [
                {
                    **rollup_row(row, day=row["PartitionKey"].rpartition("|")[2]),
                    "servicePrincipalId": row.get("servicePrincipalId"),
                    "jobId": row.get("jobId"),
                }
                for row in rows
            ]

        results = await asyncio.gather(*(chunk(low, high) for low, high in chunks))
        return [row for rows in results for row in rows]

    async def last_successful_poll(self, statuses: Sequence[str] = ("succeeded", "partial")) -> dict[str, Any] | None:
        """The newest poll record with one of `statuses`."""
        names = [f"status{index}" for index in range(len(statuses))]
        filter_ = "PartitionKey eq @pk and ( " + " or ".join(f"status eq @{name}" for name in names) + " )"
        parameters: dict[str, Any] = {"pk": self.tenant_id, **dict(zip(names, statuses, strict=True))}
        rows, _ = await self._read_page("Polls", filter_, parameters, top=1)
        return unpack_document(rows[0]) if rows else None

    async def api_signing_key(self) -> bytes:
        """The API's key for signing continuation tokens: random, made once per deployment and
        kept where only the app's identity can read it; cached by this store."""
        if self._signing_key is not None:
            return self._signing_key
        prefix = self.tables["Jobs"].table_name.removesuffix("Jobs")
        table = self._service.get_table_client(f"{prefix}ApiKeys")  # shares the service's transport
        try:
            entity = dict(await table.get_entity(self.tenant_id, "continuation"))
        except ResourceNotFoundError:
            try:
                await table.create_table()
            except ResourceExistsError:
                pass
            entity = {
                "PartitionKey": self.tenant_id,
                "RowKey": "continuation",
                "key": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
            try:
                await table.create_entity(entity)
            except ResourceExistsError:  # another instance made it first: use theirs
                entity = dict(await table.get_entity(self.tenant_id, "continuation"))
        self._signing_key = base64.b64decode(entity["key"])
        return self._signing_key


# Transient storage faults (5xx, timeouts, refused connections) are retried with exponential
# backoff by the SDK's retry policy; bounded here so that an outage fails the poll in seconds,
# not after the SDK's default ten retries of up to two minutes each.
STORAGE_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 4,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 8,
    "connection_timeout": 10,
    "read_timeout": 60,
}


# ------------------------------------------------------------ API query helpers (pure)

_TICKS_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def datetime_ticks(instant: datetime) -> int:
    """100 ns ticks since 0001-01-01 of an aware datetime (exact: no float arithmetic)."""
    delta = instant.astimezone(UTC) - _TICKS_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def run_filter(
    *,
    since: datetime | None,
    until: datetime | None,
    states: Sequence[str] = (),
    after_row_key: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A parameterized filter (with `@pk` left to the caller) over rows keyed
    `inverted timeBegan ticks|...`: timeBegan in [since, until), state among `states`, and
    RowKey after `after_row_key`. The bounds become a RowKey range, so the service reads
    only the rows in the window."""
    clauses, parameters = ["PartitionKey eq @pk"], {}
    if since is not None:  # timeBegan >= since  <=>  inverted ticks <= MAX - ticks(since)
        clauses.append("RowKey lt @newest")
        parameters["newest"] = f"{_MAX_TICKS - datetime_ticks(since) + 1:019d}"
    if until is not None:  # timeBegan < until  <=>  inverted ticks > MAX - ticks(until)
        clauses.append("RowKey ge @oldest")
        parameters["oldest"] = f"{max(_MAX_TICKS - datetime_ticks(until) + 1, 0):019d}"
    if after_row_key is not None:
        clauses.append("RowKey gt @after")
        parameters["after"] = after_row_key
    if states:
        names = [f"state{index}" for index in range(len(states))]
        # The SDK substitutes `@name` only as a whole space-separated word: hence "( ... )".
        clauses.append("( " + " or ".join(f"state eq @{name}" for name in names) + " )")
        parameters.update(zip(names, states, strict=True))
    return " and ".join(clauses), parameters


def rollup_row(row: dict[str, Any], *, day: str) -> dict[str, Any]:
    """A JobDays or TenantDays row as plain values (Int64 counts arrive as EntityProperty)."""
    return {
        "day": day,
        "runs": int(row.get("runs") or 0),
        "byState": {state: int(count) for state, count in json.loads(row.get("byState") or "{}").items()},
        "countImported": _number(row.get("countImported")),
        "countExported": _number(row.get("countExported")),
        "countEscrowed": _number(row.get("countEscrowed")),
    }


def table_service(storage: StorageSettings) -> TableServiceClient:
    if storage.connection_string:
        return TableServiceClient.from_connection_string(storage.connection_string, **STORAGE_CLIENT_OPTIONS)
    from azure.identity.aio import ManagedIdentityCredential

    assert storage.table_service_uri is not None  # load_settings guarantees one of the two
    credential = ManagedIdentityCredential(client_id=storage.managed_identity_client_id)
    return TableServiceClient(endpoint=storage.table_service_uri, credential=credential, **STORAGE_CLIENT_OPTIONS)


_stores = ProcessCache[Store]()


def open_store(settings: Settings) -> Store:
    """The process's store, created on first use inside the running event loop."""
    return _stores.get(
        settings, lambda: Store(table_service(settings.storage), settings.table_prefix, settings.tenant_id)
    )


async def close_store() -> None:
    await _stores.close()
