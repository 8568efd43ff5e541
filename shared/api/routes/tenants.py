"""The tenants: `GET /api/v1/tenants` (each tenant the caller may see, with its state, last
poll and job counts), `GET /api/v1/tenants/summary` (all of them at once), `GET`, `PUT`,
`PATCH` and `DELETE /api/v1/tenants/{tenantId}`. Writes need the write check and a caller
who sees every tenant (API_TENANT_ROLES `*`), since a tenant added is one more tenant the app
reads with its consent. docs/multitenant.md is the reader's guide.

A tenant the caller may not see answers 404, as one that is not watched: no caller learns
which tenants a deployment watches from its answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response

from shared.api.auth import Caller
from shared.api.current import current_jobs, each_tenant, tenant_state_now
from shared.api.deps import (
    NOT_FOUND,
    CallerDep,
    DeploymentSettingsDep,
    Minute,
    WriterDep,
    sees_every_tenant,
    visible_tenant,
    visible_tenants,
)
from shared.api.models import (
    Tenant as TenantModel,
)
from shared.api.models import (
    TenantBody,
    TenantList,
    TenantPatch,
    TenantsSummary,
)
from shared.api.params import problems
from shared.api.views import count_by, quarantined_jobs
from shared.domain.tenants import GUID, Tenant, TenantError, parse_tenant
from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings
from shared.storage.store import open_store
from shared.tenants import forget_registry, registry

router = APIRouter(tags=["tenants"])
audit_log = logging.getLogger("entra_sync_monitor.audit")

TenantId = Annotated[str, Path(min_length=36, max_length=36, description="The tenant's GUID")]
_QUARANTINED_KEPT = 50


async def _describe(settings: Settings, tenant: Tenant, audit: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The tenant with its state, last poll and job counts, from its own partitions."""
    own = settings.for_tenant(tenant)
    store = open_store(own)
    jobs, last = await asyncio.gather(current_jobs(store, now, own), store.last_poll())
    last_poll = None
    if last is not None:
        errors = last.get("errors") or []
        last_poll = {
            "pollId": last["pollId"],
            "status": last["status"],
            "startedAt": last["startedAt"],
            "endedAt": last.get("endedAt"),
            "errorCount": last.get("errorCount") or 0,
            "errorsByKind": last.get("errorsByKind") or {},
            "firstError": str(errors[0].get("message"))[:500] if errors and isinstance(errors[0], dict) else None,
        }
    return {
        **tenant.document(),
        "graphHost": own.graph_host,
        **{key: audit.get(key) for key in ("updatedAt", "updatedBy")},
        "state": tenant_state_now(settings, tenant, last, now),
        "lastPoll": last_poll,
        "jobs": {
            "total": len(jobs),
            "byHealth": count_by(job["health"] for job in jobs),
            "byStatusCode": count_by(job["statusCode"] or "unknown" for job in jobs),
            "quarantined": sum(1 for job in jobs if job["health"] == "quarantined"),
        },
        "_quarantined": [{**q, "tenantId": tenant.tenant_id} for q in quarantined_jobs(jobs, now)],
    }


async def _describe_all(settings: Settings, caller: Caller, now: datetime) -> list[dict[str, Any]]:
    _, audit = await registry(settings)

    async def describe(tenant: Tenant) -> dict[str, Any]:
        return await _describe(settings, tenant, audit.get(tenant.tenant_id, {}), now)

    return await each_tenant(await visible_tenants(settings, caller), describe)


@router.get(
    "/tenants",
    response_model=TenantList,
    responses=problems(401, 403, 503),
    operation_id="listTenants",
    summary="List the tenants you may see, with their state",
)
async def list_tenants(settings: DeploymentSettingsDep, caller: CallerDep, now: Minute) -> dict[str, Any]:
    """Every tenant watched (or disabled) that the caller's roles grant: its configuration,
    its state from its last poll (consentMissing when Graph or Entra refused the app), the
    last poll, and its jobs counted by health and status code."""
    described = await _describe_all(settings, caller, now)
    return {"value": described, "count": len(described)}


@router.get(
    "/tenants/summary",
    response_model=TenantsSummary,
    responses=problems(401, 403, 503),
    operation_id="getTenantsSummary",
    summary="Summarize every tenant you may see",
)
async def tenants_summary(settings: DeploymentSettingsDep, caller: CallerDep, now: Minute) -> dict[str, Any]:
    """Across tenants: how many are in each state, their jobs by health and status code, the
    tenants that need attention, and the jobs quarantined now (with their tenant)."""
    described = await _describe_all(settings, caller, now)
    by_health: dict[str, int] = {}
    by_code: dict[str, int] = {}
    for tenant in described:
        for key, value in tenant["jobs"]["byHealth"].items():
            by_health[key] = by_health.get(key, 0) + value
        for key, value in tenant["jobs"]["byStatusCode"].items():
            by_code[key] = by_code.get(key, 0) + value
    quarantined = [q for tenant in described for q in tenant["_quarantined"]]
    quarantined.sort(key=lambda q: -(q.get("secondsInQuarantine") or 0))
    return {
        "tenants": {"count": len(described), "byState": count_by(t["state"] for t in described)},
        "jobs": {
            "total": sum(t["jobs"]["total"] for t in described),
            "byHealth": by_health,
            "byStatusCode": by_code,
            "quarantined": len(quarantined),
        },
        "attention": [t for t in described if t["state"] not in ("healthy", "disabled")],
        "quarantinedJobs": quarantined[:_QUARANTINED_KEPT],
    }


async def _visible(settings: Settings, caller: Caller, tenant_id: str) -> tuple[Tenant, dict[str, Any]]:
    found = visible_tenant(await visible_tenants(settings, caller), tenant_id)
    _, audit = await registry(settings)  # read once: the registry is cached
    return found, audit.get(found.tenant_id, {})


@router.get(
    "/tenants/{tenantId}",
    response_model=TenantModel,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="getTenant",
    summary="Get one tenant with its state",
)
async def get_tenant(tenantId: TenantId, settings: DeploymentSettingsDep, caller: CallerDep, now: Minute) -> Any:
    tenant, audit = await _visible(settings, caller, tenantId)
    return await _describe(settings, tenant, audit, now)


def _require_all(settings: Settings, caller: Caller) -> None:
    # A writer limited to some tenants may not add, change or remove tenants: 404 for all of
    # them, so the answer says nothing of which exist.
    if not sees_every_tenant(settings, caller):
        raise HTTPException(404, NOT_FOUND)


def _check_id(tenant_id: str) -> str:
    if not GUID.match(tenant_id):
        raise HTTPException(400, f"tenantId must be the tenant's GUID, got {tenant_id!r}")
    return tenant_id.lower()


async def _save(
    settings: Settings, caller: Caller, tenant: Tenant, action: str, reason: str | None, before: Tenant | None
) -> dict[str, Any]:
    if tenant.enabled and not settings.reaches(tenant.tenant_id):
        raise HTTPException(
            400,
            f"GRAPH_AUTH={settings.graph_auth} gets tokens for AZURE_TENANT_ID only, so this tenant could not be "
            "read: use GRAPH_AUTH=workload_identity with a multi-tenant app (docs/multitenant.md)",
        )
    now = isoformat_utc(datetime.now(UTC))
    actor = caller.audit()
    await open_store(settings).save_tenant(tenant, updated_at=now, updated_by=actor["name"] or actor["objectId"])
    forget_registry(settings)
    _audit(action, tenant, actor, now, reason, before)
    _, audit = await registry(settings)
    return await _describe(settings, tenant, audit.get(tenant.tenant_id, {}), datetime.now(UTC))


def _audit(action: str, tenant: Tenant, actor: Any, at: str, reason: str | None, before: Tenant | None = None) -> None:
    line = {
        "action": action,
        "at": at,
        "tenantId": tenant.tenant_id,
        "actor": actor,
        "reason": reason,
        "current": tenant.document(),
        "before": before.document() if before else None,
    }
    audit_log.info("audit %s", json.dumps(line, separators=(",", ":"), default=str))


def _tenant_of(document: dict[str, Any], before: Tenant | None) -> Tenant:
    # Hosts set by the TENANTS setting stay: the API cannot set them, so a PUT does not drop them.
    if before is not None:
        document = {**document, "graphBaseUrl": before.graph_base_url, "authorityHost": before.authority_host}
    try:
        return parse_tenant(document, endpoints=True, source="api" if before is None else _source(before))
    except TenantError as error:
        raise HTTPException(400, str(error)) from None


def _source(before: Tenant) -> Any:
    return "api" if before.source == "home" else before.source


@router.put(
    "/tenants/{tenantId}",
    response_model=TenantModel,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="putTenant",
    summary="Add a tenant, or replace one's configuration",
    status_code=200,
)
async def put_tenant(
    tenantId: TenantId,
    body: TenantBody,
    settings: DeploymentSettingsDep,
    caller: WriterDep,
    response: Response,
) -> Any:
    """Watch this tenant (201), or replace what is set of it (200). Its admin must have
    consented to the app first (docs/multitenant.md); until then it shows as consentMissing."""
    _require_all(settings, caller)
    tenant_id = _check_id(tenantId)
    tenants, _ = await registry(settings, fresh=True)
    before = next((t for t in tenants if t.tenant_id == tenant_id), None)
    # One the TENANTS setting names, added again after its removal: as the setting has it.
    seeded = next((t for t in settings.tenants if t.tenant_id == tenant_id), None)
    document = {"tenantId": tenant_id, **body.model_dump(exclude={"reason"})}
    tenant = _tenant_of(document, before or seeded)
    if before is None:
        response.status_code = 201
    return await _save(settings, caller, tenant, "tenantPut", body.reason, before)


@router.patch(
    "/tenants/{tenantId}",
    response_model=TenantModel,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="patchTenant",
    summary="Change some of a tenant's configuration (e.g. enabled)",
)
async def patch_tenant(
    tenantId: TenantId,
    body: TenantPatch,
    settings: DeploymentSettingsDep,
    caller: WriterDep,
) -> Any:
    _require_all(settings, caller)
    tenant_id = _check_id(tenantId)
    tenants, _ = await registry(settings, fresh=True)
    before = next((t for t in tenants if t.tenant_id == tenant_id), None)
    if before is None:
        raise HTTPException(404, NOT_FOUND)
    changes = {key: value for key, value in body.model_dump(exclude={"reason"}).items() if key in body.model_fields_set}
    document = {key: value for key, value in before.document().items() if key != "source"}
    tenant = _tenant_of({**document, **changes}, before)
    return await _save(settings, caller, tenant, "tenantPatch", body.reason, before)


@router.delete(
    "/tenants/{tenantId}",
    status_code=204,
    responses=problems(400, 401, 403, 404, 503),
    operation_id="deleteTenant",
    summary="Stop watching a tenant (its history stays until retention)",
)
async def delete_tenant(tenantId: TenantId, settings: DeploymentSettingsDep, caller: WriterDep) -> Response:
    """Removes the tenant's row: it is no longer polled or listed. Its stored history stays and
    ages out with RETENTION_DAYS; adding it again shows it. The home tenant cannot be removed
    (its row, if any, goes, and it is watched as AZURE_TENANT_ID again): disable it instead."""
    _require_all(settings, caller)
    tenant_id = _check_id(tenantId)
    tenants, _ = await registry(settings, fresh=True)
    before = next((t for t in tenants if t.tenant_id == tenant_id), None)
    if before is None:
        raise HTTPException(404, NOT_FOUND)
    # A tenant of the TENANTS setting keeps a tombstone, or the seed would bring it back.
    seeded = any(t.tenant_id == tenant_id for t in settings.tenants)
    await open_store(settings).delete_tenant(tenant_id, tombstone=seeded, at=isoformat_utc(datetime.now(UTC)))
    forget_registry(settings)
    _audit("tenantDelete", before, caller.audit(), isoformat_utc(datetime.now(UTC)), None)
    return Response(status_code=204)
