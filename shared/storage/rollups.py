"""`<p>JobDays` (PK tenant|UTC day, RK job key) and `<p>TenantDays` (PK tenant, RK day): runs
per day by state, with Graph's counts summed. Recounted from the rows, never incremented, so
repeated or overlapping polls converge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.domain.model import Job
from shared.storage.documents import int64, number, unpack_document
from shared.storage.keys import day_partition, job_key, job_partition, run_filter
from shared.storage.tables import Entity, TableSet

_COUNTS = ("countImported", "countExported", "countEscrowed")


@dataclass(frozen=True)
class DayCounts:
    runs: int
    by_state: dict[str, int]
    imported: int
    exported: int
    escrowed: int


def _sum_days(rows: Iterable[Entity]) -> DayCounts:
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


def rollup_row(row: Entity, *, day: str) -> dict[str, Any]:
    """A JobDays or TenantDays row as plain values (Int64 counts arrive as EntityProperty)."""
    return {
        "day": day,
        "runs": int(row.get("runs") or 0),
        "byState": {state: int(count) for state, count in json.loads(row.get("byState") or "{}").items()},
        **{name: number(row.get(name)) for name in _COUNTS},
    }


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
            filter_, parameters = run_filter(since=start, until=start + timedelta(days=1))
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
            counts = _sum_days({**row, **{k: number(row.get(k)) for k in _COUNTS}} for row in rows)
            entities.append(
                {
                    "PartitionKey": self.tenant_id,
                    "RowKey": day,
                    "runs": counts.runs,
                    "byState": json.dumps(counts.by_state, sort_keys=True),
                    "countImported": int64(counts.imported),
                    "countExported": int64(counts.exported),
                    "countEscrowed": int64(counts.escrowed),
                }
            )
        await self._upsert_all("TenantDays", entities)

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
        rows = await self._query("TenantDays", filter_, parameters, select=["RowKey", "runs", "byState", *_COUNTS])
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
