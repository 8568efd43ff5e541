"""What every API route asks for, as FastAPI dependencies: the settings (read once per
request), the caller check, the tenant (`?tenant=`, among those the caller may see), its
settings and store, the current minute, and the pages of a list.

FastAPI solves each dependency once per request, so `SettingsDep`, `StoreDep` and the caller
check share one reading of the settings, the same one the CORS middleware made
(`http.request_settings`). A bad setting answers 503 on every route but `/api/health`
(which says `misconfigured` instead); the setting is named in the log only, since nobody
has been authorized yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, TypeGuard, TypeVar

from fastapi import Depends, HTTPException, Query, Request

from shared.api.auth import PRINCIPAL_HEADER, AccessDenied, AccessPolicy, Caller, authorize
from shared.api.http import request_settings, without_function_key
from shared.api.paging import ContinuationError, issue, redeem
from shared.domain.tenants import Tenant
from shared.settings import Settings, SettingsError
from shared.storage.store import Store, open_store
from shared.tenants import registry

API_PREFIX = "/api/v1"
log = logging.getLogger("entra_sync_monitor.api")
Position = TypeVar("Position")


async def get_deployment_settings(request: Request) -> Settings:
    try:
        return request_settings(request.scope)
    except SettingsError as error:
        # Answered before anyone is authorized (the check itself needs the settings): no details
        # for the caller, whoever it is; the log names the setting.
        log.error("the app is misconfigured: %s", error)
        raise HTTPException(503, "The app is misconfigured: its log names the setting to fix") from None


DeploymentSettingsDep = Annotated[Settings, Depends(get_deployment_settings)]


def _check(request: Request, settings: Settings, *, write: bool) -> Caller:
    policy = AccessPolicy(
        sign_in=settings.auth_enabled,
        read_role=settings.api_required_role,
        write_role=settings.api_write_role,
        key_only_writes=settings.api_key_only_writes,
    )
    try:
        return authorize(policy, request.headers.get(PRINCIPAL_HEADER), write=write)
    except AccessDenied as denied:
        headers = {"WWW-Authenticate": 'Bearer realm="App Service Authentication"'} if denied.status == 401 else None
        raise HTTPException(denied.status, denied.detail, headers=headers) from None


async def require_caller(request: Request, settings: DeploymentSettingsDep) -> Caller:
    """The read check of /api/v1 (docs/api.md, "Who may call it")."""
    return _check(request, settings, write=False)


async def require_writer(request: Request, settings: DeploymentSettingsDep) -> Caller:
    """The write check (mutes, job actions): the read check, then the write role."""
    return _check(request, settings, write=True)


CallerDep = Annotated[Caller, Depends(require_caller)]
WriterDep = Annotated[Caller, Depends(require_writer)]


def may_see(settings: Settings, caller: Caller, tenant_id: str) -> bool:
    """API_TENANT_ROLES, with sign-in on: the caller's roles must grant the tenant."""
    if not settings.auth_enabled or settings.tenant_access is None:
        return True
    roles = caller.principal.roles if caller.principal is not None else frozenset()
    return settings.tenant_access.allows(roles, tenant_id)


def sees_every_tenant(settings: Settings, caller: Caller) -> bool:
    if not settings.auth_enabled or settings.tenant_access is None:
        return True
    return caller.principal is not None and settings.tenant_access.sees_all(caller.principal.roles)


async def visible_tenants(settings: Settings, caller: Caller) -> list[Tenant]:
    tenants, _ = await registry(settings)
    return [tenant for tenant in tenants if may_see(settings, caller, tenant.tenant_id)]


NOT_FOUND = "No such tenant is watched here, or it is not yours to see"


async def get_tenant(
    settings: DeploymentSettingsDep,
    caller: CallerDep,
    tenant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="The tenant (its GUID); without it, AZURE_TENANT_ID's, or the only tenant the caller "
            "may see. GET /api/v1/tenants lists them",
        ),
    ] = None,
) -> Tenant:
    """The tenant a request is about. One the caller may not see is a 404 like one that does
    not exist, so that no caller learns which tenants are watched."""
    visible = await visible_tenants(settings, caller)
    if tenant is None:
        home = next((t for t in visible if t.tenant_id == settings.tenant_id), None)
        if home is not None or len(visible) == 1:
            return home or visible[0]
        if not visible:
            raise HTTPException(404, NOT_FOUND)
        raise HTTPException(400, "tenant is required: GET /api/v1/tenants lists the tenants you may see")
    return visible_tenant(visible, tenant)


def visible_tenant(visible: list[Tenant], tenant_id: str) -> Tenant:
    """The tenant of that id among those the caller may see; else 404, as for one not watched."""
    found = next((t for t in visible if t.tenant_id == tenant_id.strip().lower()), None)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


TenantDep = Annotated[Tenant, Depends(get_tenant)]


async def get_settings(settings: DeploymentSettingsDep, tenant: TenantDep) -> Settings:
    """The settings as the request's tenant has them (its id, cloud, alert targets)."""
    return settings.for_tenant(tenant)


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_store(settings: SettingsDep) -> Store:
    return open_store(settings)


StoreDep = Annotated[Store, Depends(get_store)]


def minute(now: datetime | None = None) -> datetime:
    """Now to the minute: answers (and so their ETags) hold still within a minute."""
    return (now or datetime.now(UTC)).replace(second=0, microsecond=0)


async def this_minute() -> datetime:
    return minute()  # looked up when called, so a test can hold the minute still


Minute = Annotated[datetime, Depends(this_minute)]


class Pages:
    """Continuation of one list endpoint (docs/api.md, "Paging"): where a page starts, from a
    token this deployment signed for this endpoint and query, and the link to the next one."""

    def __init__(self, request: Request, store: StoreDep) -> None:
        self.request = request
        self.store = store

    async def resume(
        self,
        endpoint: str,
        query: Mapping[str, object],
        continuation: str | None,
        valid: Callable[[object], TypeGuard[Position]],
    ) -> Position | None:
        """The position the token carries (None without one); a forged, moved or malformed
        token is a 400."""
        if continuation is None:
            return None
        position = redeem(await self.store.api_signing_key(), endpoint, query, continuation)
        if not valid(position):
            raise ContinuationError
        return position

    async def next_link(
        self, endpoint: str, query: Mapping[str, object], position: object, **pinned: object
    ) -> str | None:
        """This URL, less the function key (`?code=`), with a signed token for the page at
        `position` (and `pinned` parameters); None when there is no next page (no position)."""
        if position is None:
            return None
        token = issue(await self.store.api_signing_key(), endpoint, query, position)
        return str(without_function_key(self.request.url).include_query_params(**pinned, continuation=token))


PagesDep = Annotated[Pages, Depends()]
