"""Everything one emulator holds: the tenant, the clock, the faults and the traffic counters.

Shared by the request handlers (event loop thread) and in-process tests (other threads), so
every swap happens under a lock; tenants themselves are immutable once built.
"""

from __future__ import annotations

import threading
from typing import Any

from .actions import JobActions
from .clock import Clock
from .demo import demo_tenant
from .faults import FaultConfig
from .generated import generated_tenant
from .provisioning import ProvisioningLog
from .stats import Stats
from .tenant import StaticTenant, Tenant, TenantView, as_view


class EmulatorState:
    def __init__(self, tenant: Tenant | None = None, *, latency_ms: int = 0, frozen_clock: bool = False) -> None:
        self._lock = threading.Lock()
        self.clock = Clock(frozen=frozen_clock)
        self.latency_ms = latency_ms  # base latency, kept when faults are cleared
        self.stats = Stats()
        self._faults = FaultConfig()
        self._tenant: TenantView = as_view(tenant if tenant is not None else demo_tenant())
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

    def set_demo_tenant(self, seed: int = 1) -> None:
        self.set_tenant(demo_tenant(seed, now=self.clock.now()))

    def set_generated_tenant(
        self, service_principals: int, job_ratio: float = 0.3, seed: int = 1, failure_events: int = 0
    ) -> None:
        self.set_tenant(
            generated_tenant(service_principals, job_ratio, seed, now=self.clock.now(), failure_events=failure_events)
        )

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
