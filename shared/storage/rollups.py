"""`<p>JobDays` (PK tenant|UTC day, RK job key) and `<p>TenantDays` (PK tenant, RK day): runs
per day by state, with Graph's counts summed. Recounted from the rows, never incremented, so
repeated or overlapping polls converge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict

from shared.domain.model import Job
from shared.storage.documents import int64, number, unpack_document
from shared.storage.keys import day_partition, job_key, job_partition, run_filter
from shared.storage.tables import Entity, TableSet

_COUNTS = ("countImported", "countExported", "countEscrowed")


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
    async def _count_job_days(self, job: Job, days: Iterable[str]) -> list[Entity]:
        """Recount the job's runs on each day from Executions: idempotent, so a repeated or
        overlapping poll converges on the same rollup instead of counting a run twice.
        Returns the JobDays rows; they share a partition per day across jobs, so the caller
        writes them in batches."""
        partition = job_partition(self.tenant_id, job["servicePrincipalId"], job["jobId"])
        entities = []
        for day in sorted(set(days)):
            start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            # 9999-12-31 (a run dated at the end of time) has no next day: no upper bound.
            until = start + timedelta(days=1) if start.date() < date.max else None
            filter_, parameters = run_filter(since=start, until=until)
            rows = await self._query("Executions", filter_, {**parameters, "pk": partition})
            runs = [unpack_document(row) for row in rows]
            by_state: dict[str, int] = {}
            for run in runs:
                state = run.get("state") or "unknown"
                by_state[state] = by_state.get(state, 0) + 1
            entities.append(
                {
                    "PartitionKey": day_partition(self.tenant_id, day),
                    "RowKey": job_key(job["servicePrincipalId"], job["jobId"]),
                    "servicePrincipalId": job["servicePrincipalId"],
                    "jobId": job["jobId"],
                    "runs": len(runs),
                    "byState": json.dumps(by_state, sort_keys=True),
                    **{name: int64(sum(run.get(name) or 0 for run in runs)) for name in _COUNTS},
                }
            )
        return entities

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
