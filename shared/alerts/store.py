"""Table Storage for alerts: their state, mutes, the outbox and the evaluation lease.

Functions take the app's `Store` and use its table service (same account, same prefix):

- `<p>Alerts`      PK tenant; RK `{job key}|{rule}`: an alert's state (`kind` alert);
                   RK `{job key}|!job`: what alerting remembers of a job (`kind` job);
                   RK `!lease`: who is evaluating now (`kind` lease).
- `<p>AlertMutes`  PK tenant; RK `{job key}|{rule or *}`: a mute and until when.
- `<p>AlertOutbox` PK tenant; RK `{notification id}|{target}`: one notification for one
                   target and its delivery (`pending`, `retrying`, `delivered`, `failed`).

An outbox row is created only if absent (`create_entity`), never replaced: a repeated
evaluation writes the ids it wrote before and cannot reset a delivered row to pending.
docs/alerts.md has the properties and why the order of writes is safe.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.alerts.records import AlertState, JobMemory, MuteRow, Notification
from shared.alerts.rules import Evaluation
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.storage.documents import pack_document, unpack_document
from shared.storage.keys import job_key, key_part
from shared.storage.store import Store
from shared.storage.tables import upsert_entities

ALERT_TABLES = ("Alerts", "AlertMutes", "AlertOutbox")
LEASE_ROW = "!lease"
_JOB_ROW = "!job"
LEASE_SECONDS = 600  # longer than a run may take (functionTimeout is 10 minutes)
OPEN_DELIVERY = ("pending", "retrying")


@dataclass
class _Tables:
    alerts: TableClient
    mutes: TableClient
    outbox: TableClient
    ready: bool = False


_tables: weakref.WeakKeyDictionary[Store, _Tables] = weakref.WeakKeyDictionary()


def _clients(store: Store) -> _Tables:
    """This store's alert table clients. They share the store's transport (closed with it);
    they are kept beside the store, not in `store.tables`, which other code iterates."""
    found = _tables.get(store)
    if found is None:
        prefix = store.tables["Jobs"].table_name.removesuffix("Jobs")
        service = store._service
        alerts, mutes, outbox = (service.get_table_client(f"{prefix}{name}") for name in ALERT_TABLES)
        found = _Tables(alerts, mutes, outbox)
        _tables[store] = found
    return found


async def ensure_alert_tables(store: Store) -> None:
    tables = _clients(store)
    if tables.ready:
        return
    for client in (tables.alerts, tables.mutes, tables.outbox):
        try:
            await client.create_table()
        except ResourceExistsError:
            pass
    tables.ready = True


async def _query(client: TableClient, filter_: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    # The SDK finds parameters by splitting on spaces: write `( a eq @x )`, never `(a eq @x)`.
    try:
        return [dict(entity) async for entity in client.query_entities(filter_, parameters=parameters)]
    except ResourceNotFoundError:  # nothing evaluated yet
        return []


async def _delete(client: TableClient, partition: str, row_key: str) -> bool:
    try:
        await client.delete_entity(partition, row_key)
    except ResourceNotFoundError:
        return False
    return True


def alert_row_key(service_principal_id: str, job_id: str, rule: str) -> str:
    return f"{job_key(service_principal_id, job_id)}|{rule}"


# ---------------------------------------------------------------- state


@dataclass
class AlertRows:
    states: dict[tuple[str, str, str], AlertState]
    memories: dict[tuple[str, str], JobMemory]


async def load_alert_rows(store: Store) -> AlertRows:
    """Every alert state and job memory of the tenant: one partition query."""
    rows = await _query(_clients(store).alerts, "PartitionKey eq @pk", {"pk": store.tenant_id})
    result = AlertRows({}, {})
    for row in rows:
        if row.get("kind") == "alert" and row.get("document"):
            state: AlertState = unpack_document(row)
            result.states[(state["servicePrincipalId"], state["jobId"], state["rule"])] = state
        elif row.get("kind") == "job" and row.get("document"):
            memory: JobMemory = unpack_document(row)
            result.memories[(memory["servicePrincipalId"], memory["jobId"])] = memory
    return result


def _state_entity(store: Store, state: AlertState) -> dict[str, Any]:
    return {
        "PartitionKey": store.tenant_id,
        "RowKey": alert_row_key(state["servicePrincipalId"], state["jobId"], state["rule"]),
        "kind": "alert",
        "alertId": state["alertId"],
        "rule": state["rule"],
        "status": state["status"],
        "severity": state["severity"],
        "servicePrincipalId": state["servicePrincipalId"],
        "jobId": state["jobId"],
        "openedAt": state["openedAt"],
        "resolvedAt": state["resolvedAt"] or "",
        **pack_document(state),
    }


def _memory_entity(store: Store, memory: JobMemory) -> dict[str, Any]:
    return {
        "PartitionKey": store.tenant_id,
        "RowKey": f"{job_key(memory['servicePrincipalId'], memory['jobId'])}|{_JOB_ROW}",
        "kind": "job",
        "servicePrincipalId": memory["servicePrincipalId"],
        "jobId": memory["jobId"],
        **pack_document(memory),
    }


async def save_evaluation(store: Store, evaluation: Evaluation, targets: Sequence[str]) -> int:
    """Store what an evaluation decided: the outbox first, then the alert states. A crash in
    between leaves the states as they were, so the next evaluation decides the same
    notifications again, under the same ids, and finds them already queued. Returns the
    outbox rows created."""
    tables = _clients(store)
    created = await queue_notifications(store, evaluation.notifications, targets)
    entities = [_state_entity(store, state) for state in evaluation.states]
    entities += [_memory_entity(store, memory) for memory in evaluation.memories]
    # One row per key and transaction: a state written twice in one evaluation keeps the last.
    unique = {entity["RowKey"]: entity for entity in entities}
    await upsert_entities(tables.alerts, list(unique.values()))
    for sp_id, job_id in evaluation.forgotten:
        await _delete(tables.alerts, store.tenant_id, f"{job_key(sp_id, job_id)}|{_JOB_ROW}")
    return created


async def list_alerts(
    store: Store,
    *,
    status: str | None = None,
    rule: str | None = None,
    service_principal_id: str | None = None,
    job_id: str | None = None,
) -> list[AlertState]:
    filter_ = "PartitionKey eq @pk and kind eq @kind"
    parameters: dict[str, Any] = {"pk": store.tenant_id, "kind": "alert"}
    for name, value in (
        ("status", status),
        ("rule", rule),
        ("servicePrincipalId", service_principal_id),
        ("jobId", job_id),
    ):
        if value is not None:
            filter_ += f" and {name} eq @{name}"
            parameters[name] = value
    rows = await _query(_clients(store).alerts, filter_, parameters)
    return [unpack_document(row) for row in rows if row.get("document")]


# ---------------------------------------------------------------- mutes


def _mute_row_key(mute_sp: str, mute_job: str, rule: str | None) -> str:
    return f"{job_key(mute_sp, mute_job)}|{rule or '*'}"


async def load_mutes(store: Store) -> list[MuteRow]:
    rows = await _query(_clients(store).mutes, "PartitionKey eq @pk", {"pk": store.tenant_id})
    return [unpack_document(row) for row in rows if row.get("document")]


async def save_mute(store: Store, mute: MuteRow) -> None:
    await ensure_alert_tables(store)
    entity = {
        "PartitionKey": store.tenant_id,
        "RowKey": _mute_row_key(mute["servicePrincipalId"], mute["jobId"], mute["rule"]),
        "until": mute["until"],
        **pack_document(mute),
    }
    await _clients(store).mutes.upsert_entity(entity, mode=UpdateMode.REPLACE)


async def delete_mutes(store: Store, service_principal_id: str, job_id: str, rule: str | None) -> int:
    """Remove the job's mute of `rule`, or (rule None) every mute of the job."""
    client = _clients(store).mutes
    if rule is not None:
        return int(await _delete(client, store.tenant_id, _mute_row_key(service_principal_id, job_id, rule)))
    prefix = f"{job_key(service_principal_id, job_id)}|"
    rows = await _query(
        client,
        "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
        {"pk": store.tenant_id, "low": prefix, "high": prefix[:-1] + chr(ord("|") + 1)},
    )
    removed = 0
    for row in rows:
        removed += await _delete(client, store.tenant_id, row["RowKey"])
    return removed


async def purge_expired_mutes(store: Store, now: datetime) -> int:
    """Mutes that ended over a day ago: nothing reads them any more."""
    cutoff = isoformat_utc(now - timedelta(days=1))
    client = _clients(store).mutes
    rows = await _query(client, "PartitionKey eq @pk and until lt @cutoff", {"pk": store.tenant_id, "cutoff": cutoff})
    for row in rows:
        await _delete(client, store.tenant_id, row["RowKey"])
    return len(rows)


# ---------------------------------------------------------------- outbox


def outbox_row_key(notification_id: str, target: str) -> str:
    return f"{key_part(notification_id)}|{target}"


async def queue_notifications(store: Store, notifications: Iterable[Notification], targets: Sequence[str]) -> int:
    """One pending outbox row per notification and target, created only where absent."""
    client = _clients(store).outbox
    created = 0
    for order, notification in enumerate(notifications):
        for target in targets:
            entity = {
                "PartitionKey": store.tenant_id,
                "RowKey": outbox_row_key(notification["notificationId"], target),
                "notificationId": notification["notificationId"],
                "target": target,
                "kind": notification["kind"],
                "alertId": notification["alertId"],
                "rule": notification["rule"],
                "servicePrincipalId": notification["servicePrincipalId"],
                "jobId": notification["jobId"],
                "status": "pending",
                "createdAt": notification["at"],
                "order": order,
                "attempts": 0,
                "runs": 0,
                "nextAttemptAt": "",
                "deliveredAt": "",
                "lastError": "",
                "lastStatusCode": 0,
                **pack_document(notification),
            }
            try:
                await client.create_entity(entity)
                created += 1
            except ResourceExistsError:
                pass  # queued by an earlier evaluation of the same state
    return created


async def undelivered(store: Store) -> list[dict[str, Any]]:
    """Outbox rows still to deliver, oldest first (in the order they were decided)."""
    rows = await _query(
        _clients(store).outbox,
        "PartitionKey eq @pk and ( status eq @pending or status eq @retrying )",
        {"pk": store.tenant_id, "pending": OPEN_DELIVERY[0], "retrying": OPEN_DELIVERY[1]},
    )
    return sorted(rows, key=lambda row: (row.get("createdAt") or "", int(row.get("order") or 0), row["RowKey"]))


async def update_delivery(store: Store, row: dict[str, Any], changes: dict[str, Any]) -> None:
    """Merge delivery fields into an outbox row (under the lease: no one else writes it)."""
    entity = {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **changes}
    await _clients(store).outbox.update_entity(entity, mode=UpdateMode.MERGE)
    row.update(changes)


async def list_outbox(store: Store, *, status: str | None = None, top: int = 100) -> list[dict[str, Any]]:
    """Outbox rows newest first, without their documents' payload."""
    filter_, parameters = "PartitionKey eq @pk", {"pk": store.tenant_id}
    if status is not None:
        filter_ += " and status eq @status"
        parameters["status"] = status
    rows = await _query(_clients(store).outbox, filter_, parameters)
    rows.sort(key=lambda row: (row.get("createdAt") or "", int(row.get("order") or 0)), reverse=True)
    return rows[:top]


async def purge_outbox(store: Store, before: datetime, *, budget: int = 500) -> int:
    """Delivered and failed rows created before `before`; pending ones always stay."""
    client = _clients(store).outbox
    rows = await _query(
        client,
        "PartitionKey eq @pk and createdAt lt @before and ( status eq @delivered or status eq @failed )",
        {"pk": store.tenant_id, "before": isoformat_utc(before), "delivered": "delivered", "failed": "failed"},
    )
    for row in rows[:budget]:
        await _delete(client, store.tenant_id, row["RowKey"])
    return min(len(rows), budget)


# ---------------------------------------------------------------- lease


@dataclass(frozen=True)
class Lease:
    owner: str
    etag: str


async def acquire_lease(store: Store, *, seconds: int = LEASE_SECONDS) -> Lease | None:
    """The right to evaluate and deliver, for `seconds`; None while another run holds it.
    Optimistic concurrency (ETag) makes two runs that race for it get one winner."""
    client = _clients(store).alerts
    now = datetime.now(UTC)  # wall clock, whatever `now` an evaluation is given
    owner = str(uuid.uuid4())
    entity = {
        "PartitionKey": store.tenant_id,
        "RowKey": LEASE_ROW,
        "kind": "lease",
        "owner": owner,
        "leaseUntil": isoformat_utc(now + timedelta(seconds=seconds)),
    }
    try:
        existing = await client.get_entity(store.tenant_id, LEASE_ROW)
    except ResourceNotFoundError:
        try:
            created = await client.create_entity(entity)
        except ResourceExistsError:
            return None
        return Lease(owner, str(created["etag"]))
    until = parse_timestamp(existing.get("leaseUntil"))
    if until is not None and until > now:
        return None
    try:
        updated = await client.update_entity(
            entity,
            mode=UpdateMode.REPLACE,
            etag=existing.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except HttpResponseError:  # 412: another run took it first
        return None
    return Lease(owner, str(updated["etag"]))


async def release_lease(store: Store, lease: Lease) -> None:
    entity = {"PartitionKey": store.tenant_id, "RowKey": LEASE_ROW, "kind": "lease", "owner": "", "leaseUntil": ""}
    try:
        await _clients(store).alerts.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=lease.etag, match_condition=MatchConditions.IfNotModified
        )
    except HttpResponseError:
        pass  # expired and taken by another run: it is theirs now
