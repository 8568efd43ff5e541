"""Which service principals a poll reads, and what a discovery remembers of them.

- Pinned (`SERVICE_PRINCIPAL_IDS`): those, always; no discovery.
- A regular poll: the principals discovery found with jobs, the last poll's unfinished first.
- A discovery (the discover timer, and every poll until a first full sweep ends): every
  service principal is listed, then read in the sweep's order (shared/domain/sweep.py) until
  the poll's deadline: principals with jobs, new ones, then onwards from the sweep's cursor.
  What it learned is kept even when the deadline ends it, and the cursor carries the sweep
  over to the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.domain.model import ServicePrincipal
from shared.domain.normalize import normalize_service_principal
from shared.domain.poll_record import PollRecord, PollSummary
from shared.domain.sweep import SweepState, advance, left_in_sweep, sweep_order
from shared.domain.timestamps import isoformat_utc
from shared.graph.types import ItemResult, JobsReader
from shared.settings import Settings
from shared.storage.principals import KnownPrincipal
from shared.storage.store import Store


@dataclass
class Scope:
    """What one poll reads, in order, and what a discovery needs to remember it."""

    principals: list[ServicePrincipal]
    discovery: bool = False
    # The principals the poll must read (with jobs, or pinned); the rest is the sweep's.
    must_read: set[str] = field(default_factory=set)
    known: dict[str, KnownPrincipal] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)  # a discovery: every id, sorted
    sweep: SweepState = field(default_factory=SweepState)


async def _pinned(settings: Settings, reader: JobsReader, record: PollRecord, deadline: float) -> Scope:
    found = await reader.get_service_principals(settings.service_principal_ids, deadline=deadline)
    principals: list[ServicePrincipal] = []
    for sp_id in settings.service_principal_ids:
        result = found.get(sp_id)
        sp = normalize_service_principal(result.body) if result is not None and result.ok else None
        if sp is None:
            status = result.status if result is not None else 0
            code = result.error_code if result is not None else "NotRead"
            record.error("servicePrincipal", f"HTTP {status} {code}", servicePrincipalId=sp_id, status=status)
            if status in (401, 403, 404):
                continue  # gone or hidden: its jobs cannot be read either
            sp = {"id": sp_id, "appId": None, "displayName": None}
        principals.append(sp)
    return Scope(principals, must_read={sp["id"] for sp in principals})


async def poll_scope(
    settings: Settings,
    reader: JobsReader,
    store: Store,
    record: PollRecord,
    discover: bool,
    last: PollSummary | None,
    deadline: float,
) -> Scope:
    """The principals this poll reads, in the order it reads them (see the module's notes)."""
    if settings.service_principal_ids:
        return await _pinned(settings, reader, record, deadline)
    known, sweep = await store.load_principals()
    with_jobs = {sp_id: row for sp_id, row in known.items() if (row["jobCount"] or 0) > 0}
    unfinished = last.get("unfinishedServicePrincipals", []) if last is not None else []
    first = list(dict.fromkeys([sp_id for sp_id in unfinished if sp_id in with_jobs] + sorted(with_jobs)))
    principals: list[ServicePrincipal] = [
        {"id": sp_id, "appId": with_jobs[sp_id]["appId"], "displayName": with_jobs[sp_id]["displayName"]}
        for sp_id in first
    ]
    if not discover and sweep.completed_at is not None:
        return Scope(principals, must_read=set(first), known=known)
    listed = {
        sp["id"]: sp for item in await reader.list_service_principals() if (sp := normalize_service_principal(item))
    }
    ids = sorted(listed)
    first = [sp_id for sp_id in first if sp_id in listed]  # a principal gone is not read
    principals = [listed[sp_id] for sp_id in first + sweep_order(ids, known, set(first), sweep.cursor)]
    return Scope(principals, True, set(first), known, ids, sweep)


async def remember(store: Store, scope: Scope, results: dict[str, ItemResult], record: PollRecord) -> None:
    """A discovery's memory: each listed principal, with its job count once answered (written
    only where changed), principals no longer listed forgotten, and the sweep moved on past
    what was answered. A principal listed for the first time is remembered at once, unread:
    the next run tells it, as new, from the rest of the sweep."""
    changed: list[KnownPrincipal] = []
    for sp in scope.principals:
        result = results.get(sp["id"])
        before = scope.known.get(sp["id"])
        if result is not None and result.ok:
            row: KnownPrincipal = {**sp, "jobCount": len(result.body or [])}
        elif before is None:
            row = {**sp, "jobCount": None}
        else:
            continue  # keep what was known; the sweep comes back to it
        if before != row:  # new, or its name or job count changed
            changed.append(row)
    listed = set(scope.listed)
    gone = [sp_id for sp_id in scope.known if sp_id not in listed]
    sweep = advance(scope.sweep, scope.listed, results, isoformat_utc(record.started_at))
    await store.save_principals(changed, remove=gone, sweep=sweep if sweep != scope.sweep else None)
    record.sweep = {
        "principalsListed": len(scope.listed),
        "principalsRead": sum(1 for sp in scope.principals if sp["id"] in results),
        "principalsLeft": left_in_sweep(sweep, scope.listed),
        "sweepStartedAt": sweep.started_at,
        "lastFullSweepAt": sweep.completed_at,
    }
