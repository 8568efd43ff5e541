"""`<p>Executions` (PK tenant|job key, RK inverted timeBegan|activityIdentifier: every run once,
newest first) and `<p>RunsByTime` (PK tenant|UTC day, RK inverted timeBegan|job key|
activityIdentifier: the same runs by day, for tenant-wide windows). Written and deleted together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.domain.changes import JobWrite, with_derived_figures
from shared.domain.model import Execution, Job
from shared.domain.normalize import run_began, run_id
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import (
    day_partition,
    execution_row_key,
    job_partition,
    run_filter,
    run_row_key,
    runs_by_time_keys,
)
from shared.storage.tables import Entity, TableSet


class StoredRuns(NamedTuple):
    previous: Execution | None  # the stored run just before the one asked about
    by_day: dict[str, list[Execution]]  # the runs stored on each day asked about


class RunsTables(TableSet):
    async def _stored_runs_of(self, partition: str, run: Execution, days: set[str]) -> StoredRuns:
        """One query of the job's stored runs, newest first, from the end of the latest of `days`
        until both the run just before `run` and the start of the earliest day are passed:
        `run`'s predecessor, and the runs stored on each of `days` (a new JobDays row is counted
        from them, sparing a second query of the same rows)."""
        last = datetime.fromisoformat(max(days)).replace(tzinfo=UTC)
        # 9999-12-31 (a run dated at the end of time) has no next day: no upper bound.
        end = last + timedelta(days=1) if last.date() < date.max else None
        filter_, parameters = run_filter(since=None, until=end)
        parameters["pk"] = partition
        after, earliest = execution_row_key(run), min(days)
        found = StoredRuns(None, {day: [] for day in days})
        try:
            async for row in self.tables["Executions"].query_entities(filter_, parameters=parameters):
                stored: Execution = unpack_document(row)
                day = run_began(stored)[:10]
                if day in found.by_day:
                    found.by_day[day].append(stored)
                if found.previous is None and row["RowKey"] > after:
                    found = found._replace(previous=stored)
                if found.previous is not None and day < earliest:
                    break
        except ResourceNotFoundError:
            pass
        return found

    async def _save_executions(self, write: JobWrite) -> tuple[list[Entity], dict[str, list[Execution]]]:
        """Store new or changed runs in Executions, with their derived figures (a run with no
        known predecessor is compared with the stored run before it). Returns their RunsByTime
        rows, which share partitions across jobs: the caller writes them in batches; and, when
        the stored runs had to be read for a predecessor, the runs stored before this write on
        each of the write's days."""
        job = write.job
        partition = job_partition(self.tenant_id, job["servicePrincipalId"], job["jobId"])
        stored: list[Execution] = []
        before: dict[str, list[Execution]] = {}
        for run_write in write.runs:
            previous = run_write.previous
            if previous is None:
                found = await self._stored_runs_of(partition, run_write.run, write.days)
                previous, before = found.previous, before or found.by_day
            stored.append(with_derived_figures(run_write.run, previous))
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
            day, row_key = runs_by_time_keys(
                self.tenant_id, job["servicePrincipalId"], job["jobId"], run_began(run), run_id(run)
            )
            by_time.append(
                {"PartitionKey": day, "RowKey": row_key, "servicePrincipalName": job["servicePrincipalName"], **common}
            )
        await self._upsert_all("Executions", executions)
        return by_time, before

    async def _delete_runs(self, job: Job, runs: Sequence[Execution]) -> None:
        partition = job_partition(self.tenant_id, job["servicePrincipalId"], job["jobId"])
        for run in runs:
            await self.tables["Executions"].delete_entity(partition, execution_row_key(run))
            await self.tables["RunsByTime"].delete_entity(
                *runs_by_time_keys(self.tenant_id, job["servicePrincipalId"], job["jobId"], run_began(run), run_id(run))
            )

    async def purge_runs_before(self, cutoff_day: str, *, budget: int) -> tuple[int, bool]:
        """Delete stored runs (Executions and RunsByTime rows) of days before `cutoff_day`,
        at most `budget` runs per call; rollups and events stay. Returns (runs deleted,
        finished). Days already purged are marked in TenantDays, so later calls skip them."""
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
                {"pk": day_partition(self.tenant_id, day)},
                select=["PartitionKey", "RowKey", "servicePrincipalId", "jobId", "timeBegan", "activityIdentifier"],
            )
            batch = rows[:remaining]
            for row in batch:
                partition = job_partition(self.tenant_id, row["servicePrincipalId"], row["jobId"])
                row_key = run_row_key(row["timeBegan"], row["activityIdentifier"])
                await self.tables["Executions"].delete_entity(partition, row_key)
            await self._delete_all("RunsByTime", batch)
            deleted += len(batch)
            if len(rows) > len(batch):
                return deleted, False
            await self.tables["TenantDays"].upsert_entity(
                {"PartitionKey": self.tenant_id, "RowKey": day, "purged": True}, mode=UpdateMode.MERGE
            )
        return deleted, True

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
        parameters["pk"] = job_partition(self.tenant_id, service_principal_id, job_id)
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
        parameters["pk"] = day_partition(self.tenant_id, day)
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
