"""`<p>JobDays` (PK tenant|UTC day, RK job key) and `<p>TenantDays` (PK tenant, RK day): runs
per day by state, with Graph's counts summed. A JobDays row keeps the runs it counts and is
merged by run id (or recounted from Executions), TenantDays is summed from JobDays; never
incremented, so repeated or overlapping polls converge (docs/tables.md says why)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.domain.changes import JobWrite
from shared.domain.model import Execution, Job
from shared.domain.normalize import run_began, run_id
from shared.storage.documents import PROPERTY_CHARS, int64, number, unpack_document
from shared.storage.keys import day_partition, job_key, job_partition, run_filter
from shared.storage.tables import TRANSACTION_LIMIT, Entity, TableSet

_COUNTS = ("countImported", "countExported", "countEscrowed")
_RECOUNT_CONCURRENCY = 8  # job-days recounted from Executions at once
_CONFLICT_ATTEMPTS = 5  # a JobDays row read and merged again when another poll wrote it
_UNCHANGED = MatchConditions.IfNotModified

Operation = tuple[str, Entity] | tuple[str, Entity, dict[str, Any]]  # one of a transaction


def _tally(run: Execution) -> list[Any]:
    """What a JobDays row counts of one run: its state and Graph's three counts."""
    counts = (run.get("countImported"), run.get("countExported"), run.get("countEscrowed"))
    return [run.get("state") or "unknown", *(int(count or 0) for count in counts)]


def _by_state(tallies: Iterable[list[Any]]) -> dict[str, int]:
    by_state: dict[str, int] = {}
    for tally in tallies:
        by_state[tally[0]] = by_state.get(tally[0], 0) + 1
    return by_state


class DayRollup(TypedDict):
    """A TenantDays row (or a JobDays row's counts) as plain values."""

    day: str
    runs: int
    byState: dict[str, int]
    countImported: int
    countExported: int
    countEscrowed: int


class JobDayRollup(DayRollup):
    servicePrincipalId: str | None
    jobId: str | None


def rollup_row(row: Entity, *, day: str) -> DayRollup:
    """A JobDays or TenantDays row as plain values (Int64 counts arrive as EntityProperty)."""
    return {
        "day": day,
        "runs": int(row.get("runs") or 0),
        "byState": {state: int(count) for state, count in json.loads(row.get("byState") or "{}").items()},
        "countImported": number(row.get("countImported")),
        "countExported": number(row.get("countExported")),
        "countEscrowed": number(row.get("countEscrowed")),
    }


def _sum_days(rows: Iterable[DayRollup], *, day: str) -> DayRollup:
    total: DayRollup = {
        "day": day,
        "runs": 0,
        "byState": {},
        "countImported": 0,
        "countExported": 0,
        "countEscrowed": 0,
    }
    for row in rows:
        total["runs"] += row["runs"]
        total["countImported"] += row["countImported"]
        total["countExported"] += row["countExported"]
        total["countEscrowed"] += row["countEscrowed"]
        for state, count in row["byState"].items():
            total["byState"][state] = total["byState"].get(state, 0) + count
    return total


class RollupsTables(TableSet):
    async def save_job_days(
        self, writes: Sequence[JobWrite], stored_before: Mapping[tuple[str, str], list[Execution]] | None = None
    ) -> None:
        """Bring the JobDays rows of the days these writes touch up to date, after their runs
        are stored. Each row keeps the runs it counts (`countedRuns`: activityIdentifier ->
        state and counts), so a row is this poll's runs put into the stored row by id, not
        incremented: a repeated poll writes the same row. The stored rows come from one query
        per day (not one per job); a job-day with no row yet, or a row without `countedRuns`,
        is recounted from its Executions rows: from `stored_before` (job key and day -> the
        runs stored before this poll's write, when they were read for a predecessor) with this
        write's runs put in, or else by a query. Every write is conditional (If-Match the row
        as read, or insert-only): a row another poll wrote in between is read again and
        merged again, so no poll's runs are lost and overlapping polls converge."""
        by_day: dict[str, list[JobWrite]] = {}
        for write in writes:
            for day in write.days:
                by_day.setdefault(day, []).append(write)
        before = stored_before or {}
        await asyncio.gather(*(self._save_day(day, day_writes, before) for day, day_writes in sorted(by_day.items())))

    async def _save_day(
        self, day: str, writes: Sequence[JobWrite], stored_before: Mapping[tuple[str, str], list[Execution]]
    ) -> None:
        stored: dict[str, tuple[Entity, str]] = {}
        try:
            async for entity in self.tables["JobDays"].query_entities(
                "PartitionKey eq @pk", parameters={"pk": day_partition(self.tenant_id, day)}
            ):
                stored[entity["RowKey"]] = (dict(entity), str(entity.metadata["etag"]))
        except ResourceNotFoundError:
            pass
        limit = asyncio.Semaphore(_RECOUNT_CONCURRENCY)

        async def operation(write: JobWrite) -> Operation:
            key = job_key(write.job["servicePrincipalId"], write.job["jobId"])
            row, etag = stored.get(key, (None, ""))
            async with limit:
                entity = await self._job_day_entity(write, day, row, stored_before.get((key, day)))
            if row is None:
                return ("create", entity)
            return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": _UNCHANGED})

        operations = await asyncio.gather(*(operation(write) for write in writes))
        for start in range(0, len(operations), TRANSACTION_LIMIT):
            try:
                await self.tables["JobDays"].submit_transaction(operations[start : start + TRANSACTION_LIMIT])
            except TableTransactionError:
                # Another poll wrote one of these rows since it was read: one row at a time.
                for write in writes[start : start + TRANSACTION_LIMIT]:
                    await self._save_job_day(write, day)

    async def _save_job_day(self, write: JobWrite, day: str) -> None:
        """One JobDays row, read and merged again until no other poll wrote it in between."""
        table = self.tables["JobDays"]
        keys = (day_partition(self.tenant_id, day), job_key(write.job["servicePrincipalId"], write.job["jobId"]))
        for _ in range(_CONFLICT_ATTEMPTS):
            try:
                current = await table.get_entity(*keys)
            except ResourceNotFoundError:
                current = None
            entity = await self._job_day_entity(write, day, dict(current) if current is not None else None)
            try:
                if current is None:
                    await table.create_entity(entity)
                else:
                    await table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"], match_condition=_UNCHANGED
                    )
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue
        # Still contended: a recount from the rows, as every write did before rows kept their runs.
        await table.upsert_entity(await self._job_day_entity(write, day, None), mode=UpdateMode.REPLACE)

    async def _job_day_entity(
        self, write: JobWrite, day: str, row: Entity | None, before: list[Execution] | None = None
    ) -> Entity:
        """The job's JobDays row of `day`: the runs the stored row counts, or without such a
        row the runs stored on that day (`before` this write, or read now), with this write's
        runs of the day put in by id and its runs of other days (moved) taken out."""
        job = write.job
        if row is not None and row.get("countedRuns"):
            counted: dict[str, list[Any]] = json.loads(row["countedRuns"])
        elif before is not None:
            counted = {run_id(run): _tally(run) for run in before}
        elif row is None and _first_runs_of_day(write, day):
            counted = {}  # nothing stored on the day before these runs: nothing to recount
        else:
            counted = await self._recount_job_day(job, day)
        for run_write in write.runs:
            run = run_write.run
            if run_began(run)[:10] == day:
                counted[run_id(run)] = _tally(run)
            else:
                counted.pop(run_id(run), None)
        entity: Entity = {
            "PartitionKey": day_partition(self.tenant_id, day),
            "RowKey": job_key(job["servicePrincipalId"], job["jobId"]),
            "servicePrincipalId": job["servicePrincipalId"],
            "jobId": job["jobId"],
            "runs": len(counted),
            "byState": json.dumps(_by_state(counted.values()), sort_keys=True),
            **{name: int64(sum(tally[index + 1] for tally in counted.values())) for index, name in enumerate(_COUNTS)},
        }
        text = json.dumps(counted, sort_keys=True, separators=(",", ":"))
        if len(text) <= PROPERTY_CHARS:  # a day of very many runs is recounted from the rows instead
            entity["countedRuns"] = text
        return entity

    async def _recount_job_day(self, job: Job, day: str) -> dict[str, list[Any]]:
        """The job's runs of `day` as its Executions rows hold them (one RowKey range query)."""
        partition = job_partition(self.tenant_id, job["servicePrincipalId"], job["jobId"])
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        # 9999-12-31 (a run dated at the end of time) has no next day: no upper bound.
        until = start + timedelta(days=1) if start.date() < date.max else None
        filter_, parameters = run_filter(since=start, until=until)
        rows = await self._query("Executions", filter_, {**parameters, "pk": partition})
        return {run_id(run): _tally(run) for run in (unpack_document(row) for row in rows)}

    async def refresh_tenant_days(self, days: Iterable[str]) -> None:
        entities = []
        for day in sorted(set(days)):
            rows = await self._query("JobDays", "PartitionKey eq @pk", {"pk": day_partition(self.tenant_id, day)})
            counts = _sum_days((rollup_row(row, day=day) for row in rows), day=day)
            entities.append(
                {
                    "PartitionKey": self.tenant_id,
                    "RowKey": day,
                    "runs": counts["runs"],
                    "byState": json.dumps(counts["byState"], sort_keys=True),
                    "countImported": int64(counts["countImported"]),
                    "countExported": int64(counts["countExported"]),
                    "countEscrowed": int64(counts["countEscrowed"]),
                }
            )
        await self._upsert_all("TenantDays", entities)

    async def first_run_day(self, on_or_after: str) -> str | None:
        """The earliest day on or after `on_or_after` that has a TenantDays row: one row read."""
        filter_, parameters = "PartitionKey eq @pk and RowKey ge @first", {"pk": self.tenant_id, "first": on_or_after}
        rows, _ = await self._read_page("TenantDays", filter_, parameters, top=1)
        return str(rows[0]["RowKey"]) if rows else None

    async def run_days(self, first_day: str | None = None, last_day: str | None = None) -> list[DayRollup]:
        """TenantDays rows of days in [first_day, last_day] (either open), oldest first, with
        `day`, `runs`, `byState` (dict) and the three counts as plain ints."""
        filter_, parameters = "PartitionKey eq @pk", {"pk": self.tenant_id}
        if first_day:
            filter_ += " and RowKey ge @first"
            parameters["first"] = first_day
        if last_day:
            filter_ += " and RowKey le @last"
            parameters["last"] = last_day
        rows = await self._query("TenantDays", filter_, parameters, select=["RowKey", "runs", "byState", *_COUNTS])
        return [rollup_row(row, day=row["RowKey"]) for row in rows]

    async def job_days(self, first_day: str, last_day: str, *, days_per_query: int = 15) -> list[JobDayRollup]:
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

        async def chunk(low: str, high: str) -> list[JobDayRollup]:
            rows = await self._query(
                "JobDays",
                "PartitionKey ge @low and PartitionKey le @high",
                {"low": day_partition(self.tenant_id, low), "high": day_partition(self.tenant_id, high)},
                select=["PartitionKey", "servicePrincipalId", "jobId", "runs", "byState", *_COUNTS],
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


def _first_runs_of_day(write: JobWrite, day: str) -> bool:
    """True when the write's runs on `day` are the job's first there: the oldest of them follows
    a known run (the newest the job's stored state holds) that began on an earlier day. The
    job's stored runs are then all older than `day`, so a missing JobDays row is this write's
    runs alone, and the recount query (one per job and new day) is spared."""
    on_day = [run_write for run_write in write.runs if run_began(run_write.run)[:10] == day]
    if not on_day or any(run_began(moved)[:10] == day for moved in write.moved_runs):
        return False
    oldest = min(on_day, key=lambda run_write: run_began(run_write.run))
    return oldest.previous is not None and run_began(oldest.previous)[:10] < day
