"""Everything one tenant of the emulator holds: its data, clock, faults, traffic counters,
the job actions taken and the bearer token it expects (None: any request is let in).

Shared by the request handlers (event loop thread) and in-process tests (other threads), so
every swap happens under a lock; tenants themselves are immutable once built.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .actions import JobActions
from .clock import Clock
from .demo import DEMO_TENANT_ID, demo_tenant
from .faults import FaultConfig
from .generated import generated_tenant
from .provisioning import ProvisioningLog
from .stats import Stats
from .tenant import StaticTenant, Tenant, TenantError, TenantView, as_view


def check_token(token: Any) -> str | None:
    if token is not None and (not isinstance(token, str) or not token or token != token.strip() or " " in token):
        raise TenantError("token must be null or a non-empty string without spaces")
    return token


def _int(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TenantError(f"{key} must be an integer")
    return value


class EmulatorState:
    """`tenant_id` is the id a prefixed tenant is served under (None for the default tenant):
    the demo and generated tenants it builds carry it, so their ids are its own. `token`, when
    set, is the bearer token every top-level Graph request must carry."""

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        latency_ms: int = 0,
        frozen_clock: bool = False,
        token: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.clock = Clock(frozen=frozen_clock)
        self.latency_ms = latency_ms  # base latency, kept when faults are cleared
        self.stats = Stats()
        self.tenant_id = tenant_id
        self.token = check_token(token)
        self._faults = FaultConfig()
        default = demo_tenant(tenant_id=tenant_id or DEMO_TENANT_ID) if tenant is None else tenant
        self._tenant: TenantView = as_view(default)
        self._provisioning: ProvisioningLog | None = None
        self.actions = JobActions()  # restart, pause, start: their effects on the jobs served

    @property
    def tenant(self) -> TenantView:
        with self._lock:
            return self._tenant

    def set_tenant(self, tenant: Tenant) -> None:
        view = as_view(tenant)  # validates before swapping
        with self._lock:
            self._tenant = view
            self._provisioning = None
        self.actions.clear()  # a new tenant starts with no actions taken

    @property
    def provisioning(self) -> ProvisioningLog:
        """The tenant's provisioning events (`/auditLogs/provisioning`), built on first use."""
        with self._lock:
            if self._provisioning is None:
                raw = self._tenant.provisioning_events if isinstance(self._tenant, StaticTenant) else None
                self._provisioning = ProvisioningLog(self._tenant, raw)
            return self._provisioning

    def set_demo_tenant(self, seed: int = 1, tenant_id: str | None = None) -> None:
        tenant_id = tenant_id or self.tenant_id or DEMO_TENANT_ID
        self.set_tenant(demo_tenant(seed, now=self.clock.now(), tenant_id=tenant_id))

    def set_generated_tenant(
        self,
        service_principals: int,
        job_ratio: float = 0.3,
        seed: int = 1,
        failure_events: int = 0,
        tenant_id: str | None = None,
    ) -> None:
        tenant = generated_tenant(
            service_principals,
            job_ratio,
            seed,
            now=self.clock.now(),
            failure_events=failure_events,
            tenant_id=tenant_id or self.tenant_id,
        )
        self.set_tenant(tenant)

    def set_spec(self, spec: Mapping[str, Any]) -> None:
        """A living tenant from its spec (`LivingTenant.spec`), built on this state's clock."""
        kind = spec.get("kind")
        tenant_id = spec.get("tenantId")
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise TenantError("tenantId must be a string")
        if kind == "demo":
            self.set_demo_tenant(_int(spec, "seed", 1), tenant_id)
        elif kind == "generated":
            ratio = spec.get("jobRatio", 0.3)
            if isinstance(ratio, bool) or not isinstance(ratio, int | float):
                raise TenantError("jobRatio must be a number")
            self.set_generated_tenant(
                _int(spec, "servicePrincipals", 1000),
                float(ratio),
                _int(spec, "seed", 1),
                _int(spec, "failureEvents", 0),
                tenant_id,
            )
        else:
            raise TenantError(f"kind must be demo or generated, got {kind!r}")

    def set_token(self, token: str | None) -> None:
        self.token = check_token(token)

    def snapshot(self) -> dict[str, Any]:
        """The tenant as served right now, jobs materialised: the ground truth for tests."""
        snapshot = self.tenant.snapshot(self.clock.now())
        for sp in snapshot.get("servicePrincipals", []):
            if isinstance(sp, dict) and isinstance(sp.get("jobs"), list):
                sp["jobs"] = [self.actions.apply(str(sp.get("id", "")), job) for job in sp["jobs"]]
        return snapshot

    @property
    def faults(self) -> FaultConfig:
        with self._lock:
            return self._faults

    def set_faults(self, raw: Any) -> FaultConfig:
        config = FaultConfig.parse(raw)
        with self._lock:
            self._faults = config
        return config

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = FaultConfig()
