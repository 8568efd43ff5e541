"""Tenants the emulator serves: static (a dict served verbatim) and living (computed from a clock).

Both answer the same questions for the Graph surface: the service principals in a stable
order, one by id, and the raw job JSON of one of them at a given instant. Service principal
dicts are served without their `jobs` key; jobs of a static tenant are served exactly as given,
so tests can inject odd or malformed payloads.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .runs import JobProfile, materialise_job

# servicePrincipal properties of Graph v1.0 (plus navigation names), accepted in $select even
# when a tenant's dicts lack them: Graph answers null for those, and 400 for unknown names.
SERVICE_PRINCIPAL_PROPERTIES = (
    "id",
    "deletedDateTime",
    "accountEnabled",
    "addIns",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "applicationTemplateId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "customSecurityAttributes",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "homepage",
    "info",
    "keyCredentials",
    "loginUrl",
    "logoutUrl",
    "notes",
    "notificationEmailAddresses",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "verifiedPublisher",
    "synchronization",
    "owners",
    "memberOf",
    "appRoleAssignments",
    "appRoleAssignedTo",
    "oauth2PermissionGrants",
    "createdObjects",
    "ownedObjects",
    "transitiveMemberOf",
    "federatedIdentityCredentials",
    "remoteDesktopSecurityConfiguration",
)


class TenantView(Protocol):
    """What the Graph surface needs from a tenant."""

    tenant_id: str

    def service_principals(self) -> Sequence[Mapping[str, Any]]: ...

    def find(self, sp_id: str) -> int | None: ...

    def jobs(self, index: int, now: float) -> Any: ...

    def snapshot(self, now: float) -> dict[str, Any]: ...

    def property_names(self) -> Mapping[str, str]: ...


class TenantError(ValueError):
    """A tenant dict that cannot be served (the control API answers 400 with this message)."""


def _index(sps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, sp in enumerate(sps):
        # Directory object ids are GUIDs, matched case-insensitively like Graph does.
        index.setdefault(str(sp["id"]), i)
        index.setdefault(str(sp["id"]).lower(), i)
    return index


def _property_names(sps: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    names = {name.lower(): name for name in SERVICE_PRINCIPAL_PROPERTIES}
    for sp in sps:
        for key in sp:
            if key != "jobs":
                names.setdefault(key.lower(), key)
    return names


class StaticTenant:
    """A tenant dict served verbatim (jobs included)."""

    def __init__(self, tenant: Mapping[str, Any]) -> None:
        if not isinstance(tenant, Mapping):
            raise TenantError("a tenant is a JSON object")
        raw_sps = tenant.get("servicePrincipals", [])
        if not isinstance(raw_sps, list):
            raise TenantError("servicePrincipals must be a list")
        for sp in raw_sps:
            if not isinstance(sp, Mapping) or not isinstance(sp.get("id"), str) or not sp["id"]:
                raise TenantError("every service principal needs a non-empty string id")
        events = tenant.get("provisioningEvents", [])
        if not isinstance(events, list) or not all(isinstance(event, Mapping) for event in events):
            raise TenantError("provisioningEvents must be a list of objects")
        self._raw = copy.deepcopy(dict(tenant))
        # provisioningObjectSummary events served by /auditLogs/provisioning as given
        self.provisioning_events: list[Mapping[str, Any]] = self._raw.get("provisioningEvents", [])
        self.tenant_id = str(self._raw.get("tenantId", ""))
        self._sps = [{k: v for k, v in sp.items() if k != "jobs"} for sp in self._raw.get("servicePrincipals", [])]
        self._jobs = [sp.get("jobs", []) for sp in self._raw.get("servicePrincipals", [])]
        self._index = _index(self._sps)
        self._names = _property_names(self._sps)

    def service_principals(self) -> Sequence[Mapping[str, Any]]:
        return self._sps

    def find(self, sp_id: str) -> int | None:
        return self._index.get(sp_id, self._index.get(sp_id.lower()))

    def jobs(self, index: int, now: float) -> Any:
        return self._jobs[index]

    def snapshot(self, now: float) -> dict[str, Any]:
        return copy.deepcopy(self._raw)

    def property_names(self) -> Mapping[str, str]:
        return self._names


class LivingTenant:
    """A tenant whose jobs are computed from profiles at the requested instant.

    `profiles_for(i)` gives the job profiles of service principal i; it is called lazily (a
    generated tenant of 10,000 service principals builds only the profiles someone asks for).
    `spec` says how to rebuild the tenant elsewhere (the control API of another process).
    """

    def __init__(
        self,
        tenant_id: str,
        service_principals: list[dict[str, Any]],
        profiles_for: Callable[[int], tuple[JobProfile, ...]],
        spec: Mapping[str, Any],
        built_at: int = 0,
    ) -> None:
        self.tenant_id = tenant_id
        self.built_at = built_at  # epoch seconds the timelines are anchored at
        self._sps = service_principals
        self._profiles_for = profiles_for
        self._profiles: dict[int, tuple[JobProfile, ...]] = {}
        self._lock = threading.Lock()
        self._index = _index(service_principals)
        self._names = _property_names(service_principals[:50])
        self.spec = dict(spec)

    def profiles(self, index: int) -> tuple[JobProfile, ...]:
        with self._lock:
            found = self._profiles.get(index)
            if found is None:
                found = self._profiles[index] = self._profiles_for(index)
            return found

    def service_principals(self) -> Sequence[Mapping[str, Any]]:
        return self._sps

    def find(self, sp_id: str) -> int | None:
        return self._index.get(sp_id, self._index.get(sp_id.lower()))

    def jobs(self, index: int, now: float) -> list[dict[str, Any]]:
        return [materialise_job(profile, now) for profile in self.profiles(index)]

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "servicePrincipals": [{**sp, "jobs": self.jobs(i, now)} for i, sp in enumerate(self._sps)],
        }

    def property_names(self) -> Mapping[str, str]:
        return self._names


Tenant = Mapping[str, Any] | LivingTenant


def as_view(tenant: Tenant) -> TenantView:
    if isinstance(tenant, LivingTenant):
        return tenant
    return StaticTenant(tenant)
