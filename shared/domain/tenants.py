"""The tenants one deployment watches, and who may see which (docs/multitenant.md). Pure.

A `Tenant` is one row of the Tenants table (seeded from the `TENANTS` setting, managed through
`/api/v1/tenants`), or the implicit home tenant `AZURE_TENANT_ID`, watched unless a row says
otherwise. `parse_tenant` checks a tenant's JSON form wherever it comes from, so a bad
`TENANTS` entry fails the settings and a bad API body is a 400, with the same words.
`TenantAccess` maps the app roles of signed-in callers to the tenants they may see
(`API_TENANT_ROLES`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.domain.poll_record import blind_reason

TenantSource = Literal["home", "setting", "api"]

# Graph and Entra hosts of each national cloud
# (learn.microsoft.com/graph/deployments, "Microsoft Graph and Graph Explorer service root endpoints").
CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"),
    "usgov": ("https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    "usgovdod": ("https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    "china": ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"),
}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_OBJECT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_SUFFIX = re.compile(r"^[A-Z0-9_]{1,40}$")
_FIELDS = frozenset(
    {
        "tenantId",
        "displayName",
        "enabled",
        "cloud",
        "graphBaseUrl",
        "authorityHost",
        "servicePrincipalIds",
        "alertSettingsSuffix",
    }
)
MAX_PINNED = 1000
ALL_TENANTS = "*"


class TenantError(ValueError):
    """A tenant's JSON form is not one; the message names the field."""


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str = ""
    enabled: bool = True
    cloud: str | None = None  # None: the deployment's own GRAPH_BASE_URL and authority
    graph_base_url: str | None = None  # settings-only overrides of the cloud's hosts
    authority_host: str | None = None
    service_principal_ids: tuple[str, ...] = ()  # pinned; empty: discover all
    alert_settings_suffix: str | None = None  # this tenant's own alert targets (docs/alerts.md)
    source: TenantSource = "api"

    def document(self) -> dict[str, Any]:
        """The JSON form: what the API answers and the Tenants table keeps."""
        return {
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "enabled": self.enabled,
            "cloud": self.cloud,
            "graphBaseUrl": self.graph_base_url,
            "authorityHost": self.authority_host,
            "servicePrincipalIds": list(self.service_principal_ids),
            "alertSettingsSuffix": self.alert_settings_suffix,
            "source": self.source,
        }


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address: where plain http (a local emulator) is allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(value: str, name: str, *, versioned: bool) -> str:
    """An https URL (http only for loopback: a local emulator); Graph's with its version."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TenantError(f"{name} must be an absolute https URL, got {value!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise TenantError(f"{name} must use https unless its host is loopback, got {value!r}")
    if versioned and not parts.path.strip("/"):
        raise TenantError(f"{name} must include the API version (e.g. /v1.0), got {value!r}")
    return value.rstrip("/")


def _text(raw: Mapping[str, Any], key: str, where: str, limit: int = 256) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise TenantError(f"{where}{key} must be a string of at most {limit} characters")
    return value.strip() or None


def parse_tenant(raw: Any, *, endpoints: bool, source: TenantSource, where: str = "") -> Tenant:
    """A tenant from its JSON form. `endpoints`: graphBaseUrl and authorityHost are allowed (the
    TENANTS setting, which only an admin of the app sets); the API takes a `cloud` only, so no
    caller can send the app's tokens to a host of its choosing."""
    if not isinstance(raw, Mapping):
        raise TenantError(f"{where}a tenant must be a JSON object")
    unknown = sorted(set(raw) - _FIELDS - {"source"})
    if unknown:
        raise TenantError(f"{where}unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    tenant_id = raw.get("tenantId")
    if not isinstance(tenant_id, str) or not GUID.match(tenant_id):
        raise TenantError(f"{where}tenantId must be the tenant's GUID, got {tenant_id!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TenantError(f"{where}enabled must be true or false")
    cloud = _text(raw, "cloud", where)
    if cloud is not None and cloud.lower() not in CLOUDS:
        raise TenantError(f"{where}cloud must be one of {', '.join(CLOUDS)}, got {cloud!r}")
    graph_base_url = _text(raw, "graphBaseUrl", where, 2048)
    authority_host = _text(raw, "authorityHost", where, 2048)
    if (graph_base_url or authority_host) and not endpoints:
        raise TenantError(f"{where}graphBaseUrl and authorityHost can be set only in the TENANTS setting; use cloud")
    pinned = raw.get("servicePrincipalIds") or []
    if not isinstance(pinned, list) or not all(isinstance(sp, str) and _OBJECT_ID.match(sp) for sp in pinned):
        raise TenantError(f"{where}servicePrincipalIds must be a list of service principal object IDs")
    if len(pinned) > MAX_PINNED:
        raise TenantError(f"{where}servicePrincipalIds holds at most {MAX_PINNED} ids")
    suffix = _text(raw, "alertSettingsSuffix", where)
    if suffix is not None and not _SUFFIX.match(suffix):
        raise TenantError(f"{where}alertSettingsSuffix must be 1-40 upper-case letters, digits or _, got {suffix!r}")
    return Tenant(
        tenant_id=tenant_id.lower(),
        display_name=_text(raw, "displayName", where) or "",
        enabled=enabled,
        cloud=cloud.lower() if cloud else None,
        graph_base_url=check_endpoint(graph_base_url, f"{where}graphBaseUrl", versioned=True)
        if graph_base_url
        else None,
        authority_host=check_endpoint(authority_host, f"{where}authorityHost", versioned=False)
        if authority_host
        else None,
        service_principal_ids=tuple(dict.fromkeys(pinned)),
        alert_settings_suffix=suffix,
        source=source,
    )


def parse_tenants(raw: Any) -> tuple[Tenant, ...]:
    """The TENANTS setting's JSON array."""
    if not isinstance(raw, list):
        raise TenantError("must be a JSON array of tenant objects")
    tenants = tuple(
        parse_tenant(item, endpoints=True, source="setting", where=f"[{index}]: ") for index, item in enumerate(raw)
    )
    seen: set[str] = set()
    for tenant in tenants:
        if tenant.tenant_id in seen:
            raise TenantError(f"tenant {tenant.tenant_id} is listed twice")
        seen.add(tenant.tenant_id)
    return tenants


def merge_registry(home: Tenant, seeded: Iterable[Tenant], rows: Iterable[Tenant]) -> list[Tenant]:
    """Every tenant watched or once watched: the Tenants rows, then the TENANTS seed for what has
    no row yet, and the home tenant unless a row or the seed names it; home first, then by name."""
    by_id = {tenant.tenant_id: tenant for tenant in seeded}
    by_id.update({tenant.tenant_id: tenant for tenant in rows})
    by_id.setdefault(home.tenant_id, home)
    return sorted(
        by_id.values(), key=lambda t: (t.tenant_id != home.tenant_id, (t.display_name or t.tenant_id).lower())
    )


@dataclass(frozen=True)
class TenantAccess:
    """API_TENANT_ROLES: app role -> the tenant ids it may see (`*`: every one)."""

    grants: tuple[tuple[str, tuple[str, ...]], ...]

    def allows(self, roles: Iterable[str], tenant_id: str) -> bool:
        granted = dict(self.grants)
        return any(ALL_TENANTS in granted.get(role, ()) or tenant_id in granted.get(role, ()) for role in roles)

    def sees_all(self, roles: Iterable[str]) -> bool:
        granted = dict(self.grants)
        return any(ALL_TENANTS in granted.get(role, ()) for role in roles)


def parse_tenant_access(raw: Any) -> TenantAccess:
    if not isinstance(raw, Mapping) or not raw:
        raise TenantError('must be a JSON object such as {"Monitor.Reader": "*", "Fabrikam.Reader": ["<tenant id>"]}')
    grants: list[tuple[str, tuple[str, ...]]] = []
    for role, tenants in raw.items():
        if not isinstance(role, str) or not role.strip():
            raise TenantError("each key must be an app role's value")
        listed = [tenants] if tenants == ALL_TENANTS else tenants
        if not isinstance(listed, list) or not all(
            isinstance(t, str) and (t == ALL_TENANTS or GUID.match(t)) for t in listed
        ):
            raise TenantError(f'{role}: must be "*" or a list of tenant GUIDs')
        grants.append((role.strip(), tuple(t.lower() for t in listed)))
    return TenantAccess(tuple(grants))


TenantState = Literal[
    "healthy", "degraded", "consentMissing", "signInFailed", "throttled", "failing", "stale", "notPolled", "disabled"
]
# Entra's answers to a token request for a tenant where the app is not (or no longer) consented
# or present: AADSTS65001 consent, 700016 app not found in the directory, 7000229 no service
# principal, 500011 resource principal not found.
_NO_CONSENT = re.compile(r"AADSTS(65001|700016|7000229|500011)\b")
_CONSENT_KINDS = frozenset({"graphUnauthorized", "servicePrincipalsForbidden"})


def tenant_state(
    record: Mapping[str, Any] | None, *, enabled: bool, age_seconds: float | None, max_age: float
) -> TenantState:
    """What a tenant's last poll says of it, for /api/v1/tenants: a tenant whose consent is
    missing or revoked reads as such, not as a generic failure."""
    if not enabled:
        return "disabled"
    if record is None:
        return "notPolled"
    errors = [e for e in record.get("errors") or [] if isinstance(e, Mapping)]
    kinds = {str(e.get("kind")) for e in errors}
    refused = [e for e in errors if e.get("kind") == "graphRead" and e.get("status") in (401, 403)]
    if kinds & _CONSENT_KINDS or any(
        e.get("kind") == "graphToken" and _NO_CONSENT.search(str(e.get("message"))) for e in errors
    ):
        return "consentMissing"
    if blind_reason(record) is not None or (
        refused and record.get("status") == "failed" and not record.get("jobsRead")
    ):
        return "consentMissing"  # every read refused (403 as the health check counts, or 401): taken back
    if "graphToken" in kinds:
        return "signInFailed"
    graph: Mapping[str, Any] = record.get("graph") or {}
    throttled = (
        "graphThrottled" in kinds
        or any(e.get("status") == 429 for e in errors)
        or bool(graph.get("throttledPastDeadline"))
    )
    if throttled:  # reads left undone for Graph's throttling (a discovery's sweep too)
        return "throttled"
    if record.get("status") == "failed":
        return "failing"
    if age_seconds is not None and age_seconds > max_age:
        return "stale"
    return "degraded" if record.get("status") == "partial" else "healthy"
