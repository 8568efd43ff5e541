"""The tenant registry: which tenants this deployment watches, and the settings of each.

The home tenant (`AZURE_TENANT_ID`) is always in it, unless a Tenants row for it says
otherwise; the `TENANTS` setting seeds rows that do not exist yet (once per process); the
rows themselves are managed through `/api/v1/tenants`. With neither, the registry is the home
tenant alone and everything behaves as it did before tenants existed: its keys, its settings.
The registry is read again at most every `REGISTRY_TTL_SECONDS` per process, and at once
after this process changed it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from shared.domain.tenants import Tenant, merge_registry
from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings
from shared.storage.store import open_store

REGISTRY_TTL_SECONDS = 15.0

_seeded: set[tuple[Any, ...]] = set()
_cached: dict[tuple[Any, ...], tuple[float, list[Tenant], dict[str, dict[str, Any]]]] = {}


def home_tenant(settings: Settings) -> Tenant:
    return Tenant(settings.home_tenant_id or settings.tenant_id, source="home")


def _key(settings: Settings) -> tuple[Any, ...]:
    return (settings.storage, settings.table_prefix, settings.home_tenant_id or settings.tenant_id, settings.tenants)


async def registry(settings: Settings, *, fresh: bool = False) -> tuple[list[Tenant], dict[str, dict[str, Any]]]:
    """Every tenant watched or once watched (enabled or not), home first; and each row's audit
    fields (updatedAt, updatedBy) by tenant id."""
    key = _key(settings)
    cached = _cached.get(key)
    if cached is not None and not fresh and time.monotonic() - cached[0] < REGISTRY_TTL_SECONDS:
        return cached[1], cached[2]
    store = open_store(settings)
    if key not in _seeded:
        now = isoformat_utc(datetime.now(UTC))
        for tenant in settings.tenants:
            await store.seed_tenant(tenant, updated_at=now)
        _seeded.add(key)
    rows, removed = await store.tenant_rows()
    seeded = [tenant for tenant in settings.tenants if tenant.tenant_id not in removed]
    tenants = merge_registry(home_tenant(settings), seeded, [tenant for tenant, _ in rows])
    audit = {tenant.tenant_id: fields for tenant, fields in rows}
    _cached[key] = (time.monotonic(), tenants, audit)
    return tenants, audit


def forget_registry(settings: Settings) -> None:
    """After a change by this process: the next read is fresh."""
    _cached.pop(_key(settings), None)


async def watched_tenants(settings: Settings) -> list[Tenant]:
    """The enabled tenants."""
    tenants, _ = await registry(settings)
    return [tenant for tenant in tenants if tenant.enabled]


async def find_tenant(settings: Settings, tenant_id: str) -> Tenant | None:
    tenants, _ = await registry(settings)
    return next((tenant for tenant in tenants if tenant.tenant_id == tenant_id.lower()), None)


def only_home(settings: Settings, tenants: list[Tenant]) -> bool:
    """The registry is the implicit home tenant alone: the single-tenant deployment of old."""
    return len(tenants) == 1 and tenants[0] == home_tenant(settings)
