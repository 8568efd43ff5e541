"""Retention: history older than RETENTION_DAYS leaves the tables, in bounded batches.

Runs and poll records go; the daily rollups and the job timelines (events) stay, so
summaries over long windows keep working. A run that cannot finish within its budget
continues on the next schedule.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings, load_settings
from shared.storage.store import Store, open_store

log = logging.getLogger("entra_sync_monitor.retention")

DELETE_BUDGET = 20_000  # rows per run: well inside the function timeout


async def apply_retention(
    settings: Settings, *, now: datetime | None = None, store: Store | None = None, budget: int = DELETE_BUDGET
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    store = store or open_store(settings)
    await store.ensure_tables()
    runs, finished = await store.purge_runs_before(cutoff.date().isoformat(), budget=budget)
    polls = await store.purge_polls_before(isoformat_utc(cutoff), budget=max(0, budget - runs))
    parts = await store.purge_item_parts_before(isoformat_utc(cutoff), budget=max(0, budget - runs - polls))
    # The provisioning logs' error groups (personal data in samples mode) are kept as the runs.
    errors = await store.purge_error_hours_before(
        cutoff.date().isoformat(), budget=max(0, budget - runs - polls - parts)
    )
    result = {
        "cutoff": isoformat_utc(cutoff),
        "retentionDays": settings.retention_days,
        "runsDeleted": runs,
        "pollRecordsDeleted": polls,
        "workItemPartsDeleted": parts,
        "errorHoursDeleted": errors,
        "finished": finished,
    }
    log.info("retention %s", json.dumps(result, separators=(",", ":")))
    return result


async def run_retention() -> dict[str, Any]:
    """Every tenant's history ages out, that of a disabled tenant too."""
    from shared.tenants import only_home, registry

    settings = load_settings()
    tenants, _ = await registry(settings)
    if only_home(settings, tenants):
        return await apply_retention(settings)
    results = []
    for tenant in tenants:  # one by one: the delete budget is per tenant and run
        results.append({"tenantId": tenant.tenant_id, **await apply_retention(settings.for_tenant(tenant))})
    return {"tenants": results}
