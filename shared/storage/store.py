"""Azure Table Storage: the `Store` of one tenant's tables, and the process's one instance.

`Store` is composed of one class per table family, each a subclass of `TableSet` (clients,
creation, parameterized reads, batched writes; tables.py) in its own module:

- jobs.py       `<p>Jobs`: each job's current state, or a removed job's tombstone.
- runs.py       `<p>Executions` and `<p>RunsByTime`: every run once, by job and by day.
- rollups.py    `<p>JobDays` and `<p>TenantDays`: runs per day, each row keeping the runs it counts.
- events.py     `<p>Events`: each job's timeline.
- polls.py      `<p>Polls`: a record of every poll.
- principals.py `<p>ServicePrincipals`: discovery's memory.
- api_keys.py   `<p>ApiKeys`: the API's continuation-signing key.
- work_items.py `<p>WorkItems`: the parts of a poll fanned out through the work queue.
- provisioning_errors.py `<p>ProvisioningErrors`, `<p>ProvisioningErrorDays`: error groups
  from the provisioning logs.
- tenants.py    `<p>Tenants`: the tenants the deployment watches (the one table of no tenant).

Key formulas are in keys.py, property encodings in documents.py, and docs/tables.md has the
keys, properties and the queries each serves. Every key is derived from Graph's ids, so
repeating or overlapping polls write the same entities; every filter is parameterized.
This module adds the one write that spans families: a poll's job changes, in a safe order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from azure.data.tables.aio import TableServiceClient

from shared.domain.changes import JobChanges, JobWrite
from shared.domain.model import Execution
from shared.process_cache import ProcessCache
from shared.settings import Settings
from shared.storage.api_keys import ApiKeysTable
from shared.storage.events import EventsTable
from shared.storage.job_actions import JobActionsTable
from shared.storage.jobs import JobsTable
from shared.storage.keys import job_key
from shared.storage.polls import PollsTable
from shared.storage.principals import PrincipalsTable
from shared.storage.provisioning_errors import ProvisioningErrorsTables
from shared.storage.rollups import RollupsTables
from shared.storage.runs import RunsTables
from shared.storage.tables import Entity, table_service
from shared.storage.tenants import TenantsTable
from shared.storage.work_items import WorkItemsTable

_STORE_CONCURRENCY = 8  # jobs whose runs are written at once


def _ignore(count: int) -> None:
    pass


class Store(
    JobsTable,
    RunsTables,
    RollupsTables,
    EventsTable,
    PollsTable,
    PrincipalsTable,
    ApiKeysTable,
    JobActionsTable,
    WorkItemsTable,
    ProvisioningErrorsTables,
    TenantsTable,
):
    """The tables of one tenant. Create with `open_store`; one per process."""

    async def save_job_changes(self, changes: JobChanges, *, on_runs_stored: Callable[[int], None] = _ignore) -> None:
        """Write what a poll found changed, in the order that makes a poll safe to repeat or
        crash: each job's runs (Executions, then RunsByTime), their days' rollups (JobDays,
        then TenantDays), the transitions (Events), and last the jobs' current state and the
        tombstones of removed jobs. A crash before the last step leaves a job looking
        unchanged, so the next poll writes the same rows under the same keys again.
        Rows that share a partition across jobs (RunsByTime, JobDays) go in batches of 100,
        not one call per job; JobDays rows are read one day partition at a time
        (`save_job_days`), not recounted from Executions per job. `on_runs_stored` hears
        each job's run count once stored."""
        limit = asyncio.Semaphore(_STORE_CONCURRENCY)
        by_time: list[Entity] = []
        stored_before: dict[tuple[str, str], list[Execution]] = {}

        async def store_runs(write: JobWrite) -> None:
            async with limit:
                rows, before = await self._save_executions(write)
                by_time.extend(rows)
                key = job_key(write.job["servicePrincipalId"], write.job["jobId"])
                stored_before.update({(key, day): runs for day, runs in before.items()})
                if write.moved_runs:
                    await self._delete_runs(write.job, write.moved_runs)
                on_runs_stored(len(write.runs))

        with_runs = [write for write in changes.writes if write.runs]
        await asyncio.gather(*(store_runs(write) for write in with_runs))
        await self._upsert_all("RunsByTime", by_time)
        await self.save_job_days(with_runs, stored_before)
        days = {day for write in with_runs for day in write.days}
        if days:
            await self.refresh_tenant_days(days)
        await self.save_events(changes.events)
        # Current state last: only now are these jobs' runs and events known to be stored.
        # One tenant partition: the states and tombstones go in transactions of 100.
        await self._upsert_all(
            "Jobs",
            [self.job_entity(write.job) for write in changes.writes]
            + [self.tombstone_entity(j["servicePrincipalId"], j["jobId"], changes.removed_at) for j in changes.removed],
        )


_stores = ProcessCache[Store]()
_services = ProcessCache[TableServiceClient]()


def open_store(settings: Settings) -> Store:
    """The process's store of the settings' tenant, created on first use inside the running
    event loop; the stores of every tenant share one service client (one transport)."""

    def create() -> Store:
        service = _services.get(settings.storage, lambda: table_service(settings.storage))
        return Store(service, settings.table_prefix, settings.tenant_id, owns_service=False)

    return _stores.get((settings.storage, settings.table_prefix, settings.tenant_id), create)


async def close_store() -> None:
    await _stores.close()
    await _services.close()
