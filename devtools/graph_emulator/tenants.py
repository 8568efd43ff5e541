"""The tenants one emulator serves: the default one at the root, more under a prefix of their id.

The default tenant answers at `/v1.0`, `/beta` and `/_emulator`; every other tenant at
`/{tenantId}/v1.0`, `/{tenantId}/beta` and `/{tenantId}/_emulator`, with its own
`EmulatorState` (data, clock, faults, stats, actions and token). Tenant ids are lower-case
GUIDs, so a prefix never reads as a version (`v1.0`, `beta`) or as `_emulator`; a prefix no
tenant holds is answered as Graph answers an unknown version.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from .state import EmulatorState
from .tenant import LivingTenant, Tenant, TenantError

TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise TenantError(f"a tenant id is a lower-case GUID, got {tenant_id!r}")
    return tenant_id


def serve(state: EmulatorState, tenant: Tenant | Mapping[str, Any]) -> None:
    """Put `tenant` in `state`. A living tenant, or a spec `{"kind": "demo" | "generated", ...}`,
    is (re)built for the state's own tenant id on its own clock, so two tenants built from the
    same spec never share ids; a static tenant dict is served verbatim."""
    spec = tenant.spec if isinstance(tenant, LivingTenant) else tenant
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind is None:
        state.set_tenant(tenant)
        return
    if isinstance(tenant, LivingTenant) and tenant.tenant_id == state.tenant_id:
        state.set_tenant(tenant)  # already built for this tenant: keep it as given
        return
    state.set_spec(spec)


class TenantRegistry:
    """The default state and the prefixed ones, by tenant id; safe to change while serving."""

    def __init__(self, default: EmulatorState) -> None:
        self.default = default
        self._lock = threading.Lock()
        self._states: dict[str, EmulatorState] = {}

    def check(self, tenant_id: str) -> str:
        """A tenant id that may be registered: a lower-case GUID, not the default tenant's."""
        check_tenant_id(tenant_id)
        if tenant_id == self.default.tenant.tenant_id:
            raise TenantError(f"{tenant_id} is the default tenant, served at the root")
        return tenant_id

    def add(self, tenant_id: str, state: EmulatorState) -> EmulatorState:
        """Serve `state` under `/{tenant_id}`, replacing whatever was there."""
        self.check(tenant_id)
        with self._lock:
            self._states[tenant_id] = state
        return state

    def get(self, tenant_id: str) -> EmulatorState | None:
        with self._lock:
            return self._states.get(tenant_id)

    def remove(self, tenant_id: str) -> bool:
        with self._lock:
            return self._states.pop(tenant_id, None) is not None

    def states(self) -> dict[str, EmulatorState]:
        """The prefixed tenants' states, in registration order (a copy)."""
        with self._lock:
            return dict(self._states)
