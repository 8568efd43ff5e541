"""The app's settings: environment variables named like the Function app's app settings.

`load_settings()` validates the core ones at once and fails with a `SettingsError` naming the
setting and what it expects, so a bad configuration stops a run at its start. `SETTINGS`, the
catalogue docs, the sample settings file and the Bicep checks are held against, joins
`CORE_SETTINGS` with the alerts' own (`shared.alerts.settings`); it is built on first use, as
the alerts package imports this module.

One file, over 400 lines, on purpose: it is the catalogue of every core setting with its
parser, and the docs, the sample settings file and the Bicep tests join that one list.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from shared.domain.health import HealthRules
from shared.domain.provisioning_logs import ProvisioningLogsMode
from shared.domain.tenants import (
    CLOUDS,
    Tenant,
    TenantAccess,
    TenantError,
    is_loopback_host,
    parse_tenant_access,
    parse_tenants,
)

GraphAuth = Literal["managed_identity", "client_secret", "certificate", "workload_identity", "default", "none"]
GRAPH_AUTH_MODES: tuple[GraphAuth, ...] = get_args(GraphAuth)
# A managed identity (or whatever DefaultAzureCredential finds) gets tokens of its own tenant
# only: used for another, Graph would answer with the home tenant's data.
HOME_ONLY_AUTH: frozenset[str] = frozenset({"managed_identity", "default"})

_N = TypeVar("_N", int, float)

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"


@dataclass(frozen=True)
class SettingSpec:
    """What one setting means; `default` None means "no default" (required or optional)."""

    description: str
    default: str | None = None
    required: bool = False
    secret: bool = False


Catalogue = Mapping[str, SettingSpec]


CORE_SETTINGS: Catalogue = {
    "AZURE_TENANT_ID": SettingSpec(
        "The Entra tenant (GUID) whose jobs are watched; labels every stored record.",
        required=True,
    ),
    "GRAPH_BASE_URL": SettingSpec(
        "Microsoft Graph root including the version (national clouds: their own host).",
        DEFAULT_GRAPH_BASE_URL,
    ),
    "GRAPH_AUTH": SettingSpec(
        "How the app signs in to Graph: " + " | ".join(GRAPH_AUTH_MODES) + ".",
        "managed_identity",
    ),
    "AZURE_CLIENT_ID": SettingSpec(
        "Client ID of the user-assigned managed identity, or of the app registration "
        "(client_secret, certificate, workload_identity)."
    ),
    "AZURE_CLIENT_SECRET": SettingSpec(
        "Client secret of the app registration (GRAPH_AUTH=client_secret); in Azure, a Key Vault reference.",
        secret=True,
    ),
    "AZURE_CLIENT_CERTIFICATE_PATH": SettingSpec(
        "PEM or PKCS12 certificate of the app registration (GRAPH_AUTH=certificate)."
    ),
    "AZURE_CLIENT_CERTIFICATE_PASSWORD": SettingSpec("Password of that certificate, if any.", secret=True),
    "AZURE_AUTHORITY_HOST": SettingSpec("Entra authority for national clouds, e.g. https://login.microsoftonline.us."),
    "MANAGED_IDENTITY_CLIENT_ID": SettingSpec(
        "GRAPH_AUTH=workload_identity: client ID of the managed identity that is the app "
        "registration's federated credential (empty: system-assigned)."
    ),
    "AzureWebJobsStorage": SettingSpec(
        "Storage connection string for the data tables (`UseDevelopmentStorage=true` for "
        "Azurite on its default port, or one with `TableEndpoint=`).",
        secret=True,
    ),
    "AzureWebJobsStorage__tableServiceUri": SettingSpec(
        "Identity-based storage: the Table service URI (used when AzureWebJobsStorage is unset)."
    ),
    "AzureWebJobsStorage__queueServiceUri": SettingSpec(
        "Identity-based storage: the Queue service URI of the work queue (unset: polls never fan out)."
    ),
    "AzureWebJobsStorage__credential": SettingSpec(
        "Identity-based storage: `managedidentity` (the only value Functions accepts)."
    ),
    "AzureWebJobsStorage__clientId": SettingSpec(
        "Identity-based storage: client ID of the user-assigned managed identity."
    ),
    "TABLE_PREFIX": SettingSpec("Prefix of the data tables' names (letters and digits).", "syncmon"),
    "TENANTS": SettingSpec(
        "More tenants to watch, as a JSON array seeding the Tenants table (docs/multitenant.md): objects with "
        "tenantId (GUID), displayName, enabled, cloud (global | usgov | usgovdod | china), optional graphBaseUrl "
        "and authorityHost, servicePrincipalIds and alertSettingsSuffix. Unset: only AZURE_TENANT_ID."
    ),
    "API_TENANT_ROLES": SettingSpec(
        "With sign-in on: which tenants each app role may see, as a JSON object "
        '{"<role>": ["<tenant id>", ...] or "*"}; a caller sees the union of its roles\' tenants. '
        "Unset: every caller sees every tenant."
    ),
    "SERVICE_PRINCIPAL_IDS": SettingSpec("Comma-separated service principal object IDs to watch; empty: discover all."),
    "POLL_SCHEDULE": SettingSpec("NCRONTAB schedule of the poll timer (read by the Functions host).", "0 */5 * * * *"),
    "DISCOVERY_SCHEDULE": SettingSpec(
        "NCRONTAB schedule of discovery: every service principal is read to find new and removed "
        "jobs (read by the Functions host).",
        "0 0 * * * *",
    ),
    "RETENTION_SCHEDULE": SettingSpec(
        "NCRONTAB schedule of the retention run (read by the Functions host).", "0 30 3 * * *"
    ),
    "RETENTION_DAYS": SettingSpec(
        "Runs and poll records older than this many days are deleted; rollups and events stay.", "400"
    ),
    "GRAPH_MAX_CONCURRENCY": SettingSpec(
        "How many Graph requests ($batch calls) a poll has in flight at once (1-32).", "4"
    ),
    "POLL_DEADLINE_SECONDS": SettingSpec(
        "A poll stops reading Graph after this many seconds (below the function timeout).",
        "480",
    ),
    "WORK_QUEUE_NAME": SettingSpec(
        "Storage queue of the poll's work items, in the app's storage account (poison queue: `<name>-poison`); "
        "unset: `<TABLE_PREFIX>-work`, in lower case.",
        "syncmon-work",
    ),
    "WORK_INLINE_MAX_PRINCIPALS": SettingSpec(
        "A poll that reads at most this many service principals does its work in the timer run; "
        "a larger one is fanned out as work items through WORK_QUEUE_NAME (0: always).",
        "2000",
    ),
    "WORK_ITEM_PRINCIPALS": SettingSpec("Service principals per work item (1-200).", "200"),
    "PROVISIONING_LOGS": SettingSpec(
        "Per-object errors from Graph's provisioning logs: off | counts (error groups per job and hour) | "
        "samples (also up to PROVISIONING_LOG_SAMPLES example objects per group). Needs AuditLog.Read.All "
        "and Directory.Read.All.",
        "off",
    ),
    "PROVISIONING_LOG_SAMPLES": SettingSpec(
        "Example objects kept per error group and hour in samples mode (1-50).", "5"
    ),
    "PROVISIONING_LOG_PAGES": SettingSpec(
        "Provisioning log pages a poll reads at most (1-1000); a backlog is caught up over later polls.", "20"
    ),
    "API_REQUIRED_ROLE": SettingSpec(
        "The app role a caller of /api/v1 must hold to read (empty: any signed-in caller); needs sign-in on."
    ),
    "API_WRITE_ROLE": SettingSpec(
        "The app role a caller must hold to write (mute, unmute); empty: no signed-in caller may write. "
        "Needs sign-in on."
    ),
    "API_KEY_ONLY_WRITES": SettingSpec(
        "true: without sign-in, anyone with the function key may write (mute, unmute). Off by default.", "false"
    ),
    "ACTIONS_ENABLED": SettingSpec(
        "true: operator actions (restart, pause, start a job) through the API, for callers with the "
        "write role; needs the Graph permission Synchronization.ReadWrite.All. Off by default.",
        "false",
    ),
    "API_SIGN_IN_ENABLED": SettingSpec(
        "true: App Service Authentication is on (infra/ sets it with the sign-in it deploys, since Flex "
        "Consumption need not set WEBSITE_AUTH_ENABLED). Only with sign-in on is the X-MS-CLIENT-PRINCIPAL "
        "header trusted and a signed-in caller required.",
        "false",
    ),
    "WEBSITE_AUTH_ENABLED": SettingSpec(
        "Injected by App Service when App Service Authentication is on; never set it yourself.",
    ),
    "CORS_ALLOWED_ORIGINS": SettingSpec(
        "Comma-separated origins (https://portal.contoso.com) browsers may call the API from, "
        "or `*`; empty: no CORS headers."
    ),
    "STALE_MIN_MINUTES": SettingSpec(
        "A job is stale when no run ended and no progress was observed within 3 schedule intervals, "
        "but never within fewer than this many minutes (cloud sync runs every 2 minutes).",
        "30",
    ),
    "FIRST_CYCLE_WARN_HOURS": SettingSpec(
        "An active job whose first cycle has not finished after this many hours gets a warning and the "
        "firstCycleNotFinished alert (decimals allowed).",
        "24",
    ),
    "HEALTH_MAX_AGE_SECONDS": SettingSpec(
        "GET /api/health answers 503 when the last successful poll ended longer ago than this; "
        "empty: two POLL_SCHEDULE intervals plus POLL_DEADLINE_SECONDS."
    ),
}

# Tenant: its GUID or a verified domain (azure-identity accepts both).
_TENANT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$")
# Object IDs are GUIDs in Entra; anything safe in a URL path segment is accepted.
_OBJECT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,40}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class StorageSettings:
    """Where the data tables live: a connection string, or a service URI with an identity."""

    connection_string: str | None = field(default=None, repr=False)
    table_service_uri: str | None = None
    queue_service_uri: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class Settings:
    tenant_id: str
    graph_base_url: str
    graph_auth: GraphAuth
    client_id: str | None
    client_secret: str | None = field(repr=False)
    client_certificate_path: str | None
    client_certificate_password: str | None = field(repr=False)
    authority_host: str | None
    managed_identity_client_id: str | None
    storage: StorageSettings
    table_prefix: str
    service_principal_ids: tuple[str, ...]
    graph_max_concurrency: int
    poll_deadline_seconds: float
    retention_days: int
    # The HTTP API's own (defaults keep Settings(...) calls that predate them working).
    poll_schedule: str = "0 */5 * * * *"
    auth_enabled: bool = False  # sign-in (App Service Authentication) is on
    api_required_role: str | None = None
    api_write_role: str | None = None
    api_key_only_writes: bool = False
    actions_enabled: bool = False
    cors_allowed_origins: tuple[str, ...] = ()
    health_max_age_seconds: int | None = None
    health_rules: HealthRules = field(default_factory=HealthRules)
    work_queue_name: str = "syncmon-work"
    work_inline_max_principals: int = 2000
    work_item_principals: int = 200
    provisioning_logs: ProvisioningLogsMode = "off"
    provisioning_log_samples: int = 5
    provisioning_log_pages: int = 20
    tenants: tuple[Tenant, ...] = ()  # the TENANTS seed
    tenant_access: TenantAccess | None = None  # API_TENANT_ROLES
    home_tenant_id: str = ""  # AZURE_TENANT_ID, also in the settings of another tenant
    alert_settings_suffix: str | None = None  # the tenant's own alert targets
    # A Retry-After longer than this is not waited out: those reads are left to the next poll
    # (None: waited up to the poll's deadline). Set for the tenants of a deployment that polls
    # several, so that one throttled tenant does not hold a worker long (shared/tenant_polls.py).
    graph_retry_wait_max_seconds: float | None = None

    def for_tenant(self, tenant: Tenant) -> Settings:
        """These settings as one tenant's poll and API use them: its id, its cloud's (or its
        own) Graph root and authority, its pinned service principals, its alert targets."""
        home = self.home_tenant_id or self.tenant_id
        graph, authority = self.graph_base_url, self.authority_host
        if tenant.cloud:
            graph, authority = CLOUDS[tenant.cloud]
            graph = f"{graph.rsplit('/', 1)[0]}/{self.graph_base_url.rsplit('/', 1)[1]}"  # keep our API version
        pinned = tenant.service_principal_ids
        if tenant.tenant_id == home and not pinned:  # the home tenant's pins, unless its row has its own
            pinned = self.service_principal_ids
        return dataclasses.replace(
            self,
            tenant_id=tenant.tenant_id,
            home_tenant_id=home,
            graph_base_url=tenant.graph_base_url or graph,
            authority_host=tenant.authority_host or authority,
            service_principal_ids=pinned,
            alert_settings_suffix=tenant.alert_settings_suffix,
        )

    def reaches(self, tenant_id: str) -> bool:
        """Whether GRAPH_AUTH can get a token for that tenant (see HOME_ONLY_AUTH)."""
        return self.graph_auth not in HOME_ONLY_AUTH or tenant_id == (self.home_tenant_id or self.tenant_id)

    @property
    def graph_host(self) -> str:
        """The bare host name, lower case, no port: kiota's allowed-hosts check compares the
        request URL's hostname with it, so `host:port` would match nothing and no token be sent."""
        return (urlsplit(self.graph_base_url).hostname or "").lower()

    @property
    def graph_scope(self) -> str:
        """Token scope derived from the Graph host, so national clouds need no extra setting.
        Never with a port: Entra rejects `.default` scopes that carry one."""
        host = self.graph_host
        return f"{urlsplit(self.graph_base_url).scheme}://{f'[{host}]' if ':' in host else host}/.default"


def read_setting(env: Mapping[str, str], name: str, catalogue: Catalogue = CORE_SETTINGS) -> str | None:
    """The setting's value, stripped; its catalogue default when unset or blank."""
    value = env.get(name)
    if value is None or not value.strip():
        return catalogue[name].default
    return value.strip()


def _require(env: Mapping[str, str], name: str, why: str) -> str:
    value = read_setting(env, name)
    if value is None:
        raise SettingsError(f"{name} is required {why}")
    return value


def read_int(env: Mapping[str, str], name: str, low: int, high: int, catalogue: Catalogue = CORE_SETTINGS) -> int:
    """A whole-number setting within [low, high] (its default when unset)."""
    return _read_ranged(env, name, catalogue, int, low, high, f"a whole number from {low} to {high}")


def read_number(
    env: Mapping[str, str], name: str, low: float, high: float, catalogue: Catalogue = CORE_SETTINGS
) -> float:
    """A decimal setting within [low, high] (its default when unset); refuses nan."""
    return _read_ranged(env, name, catalogue, float, low, high, f"a number from {low:g} to {high:g}")


def _read_ranged(
    env: Mapping[str, str], name: str, catalogue: Catalogue, parse: Callable[[str], _N], low: _N, high: _N, what: str
) -> _N:
    raw = read_setting(env, name, catalogue)
    assert raw is not None  # every ranged setting has a default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be {what}, got {raw!r}")
    return value


def _graph_base_url(env: Mapping[str, str]) -> str:
    raw = read_setting(env, "GRAPH_BASE_URL")
    assert raw is not None
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"GRAPH_BASE_URL must be an absolute URL such as {DEFAULT_GRAPH_BASE_URL}, got {raw!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(f"GRAPH_BASE_URL must use https unless its host is loopback, got {raw!r}")
    if not parts.path.strip("/"):
        raise SettingsError(f"GRAPH_BASE_URL must include the API version (e.g. /v1.0), got {raw!r}")
    return raw.rstrip("/")


def _storage(env: Mapping[str, str]) -> StorageSettings:
    connection = read_setting(env, "AzureWebJobsStorage")
    if connection:
        if connection != "UseDevelopmentStorage=true" and not (
            "TableEndpoint=" in connection or "AccountName=" in connection
        ):
            # The value is a secret: never echo it.
            raise SettingsError(
                "AzureWebJobsStorage must be `UseDevelopmentStorage=true` or a storage "
                "connection string with AccountName= or TableEndpoint= (value not shown)"
            )
        return StorageSettings(connection_string=connection)
    uri = read_setting(env, "AzureWebJobsStorage__tableServiceUri")
    if not uri:
        raise SettingsError(
            "AzureWebJobsStorage is required: a connection string, or identity-based "
            "AzureWebJobsStorage__tableServiceUri with AzureWebJobsStorage__credential"
        )
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(
            "AzureWebJobsStorage__tableServiceUri must be a URL such as "
            f"https://<account>.table.core.windows.net, got {uri!r}"
        )
    credential = read_setting(env, "AzureWebJobsStorage__credential")
    if credential is not None and credential.lower() != "managedidentity":
        raise SettingsError(f"AzureWebJobsStorage__credential must be `managedidentity`, got {credential!r}")
    queue_uri = read_setting(env, "AzureWebJobsStorage__queueServiceUri")
    if queue_uri and urlsplit(queue_uri).scheme not in ("https", "http"):
        raise SettingsError(
            "AzureWebJobsStorage__queueServiceUri must be a URL such as "
            f"https://<account>.queue.core.windows.net, got {queue_uri!r}"
        )
    return StorageSettings(
        table_service_uri=uri.rstrip("/"),
        queue_service_uri=queue_uri.rstrip("/") if queue_uri else None,
        managed_identity_client_id=read_setting(env, "AzureWebJobsStorage__clientId"),
    )


def _service_principal_ids(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = read_setting(env, "SERVICE_PRINCIPAL_IDS") or ""
    ids = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for sp_id in ids:
        if not _OBJECT_ID.match(sp_id):
            raise SettingsError(f"SERVICE_PRINCIPAL_IDS must be comma-separated object IDs (GUIDs), got {sp_id!r}")
    return ids


_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,47}[a-z0-9]$")


def _work_queue_name(env: Mapping[str, str], table_prefix: str) -> str:
    # Unset: the tables' prefix names it, so two deployments that share a storage account
    # (and so need their own TABLE_PREFIX) never share a queue either.
    name = read_setting(env, "WORK_QUEUE_NAME") if (env.get("WORK_QUEUE_NAME") or "").strip() else None
    name = name or f"{table_prefix.lower()}-work"
    # 3-63 characters is Azure's rule; 49 leave room for the host's `-poison` suffix, twice
    # (the poison queue's own trigger has a poison queue too).
    if not _QUEUE_NAME.match(name):
        raise SettingsError(
            "WORK_QUEUE_NAME must be 3-49 lower-case letters, digits and single hyphens, "
            f"starting and ending with a letter or digit, got {name!r}"
        )
    return name


def _provisioning_logs(env: Mapping[str, str]) -> ProvisioningLogsMode:
    mode = (read_setting(env, "PROVISIONING_LOGS") or "").lower()
    for known in get_args(ProvisioningLogsMode):
        if mode == known:
            return known
    raise SettingsError(f"PROVISIONING_LOGS must be one of off, counts, samples, got {mode!r}")


def _cors_allowed_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = read_setting(env, "CORS_ALLOWED_ORIGINS") or ""
    origins = tuple(dict.fromkeys(part.strip().rstrip("/") for part in raw.split(",") if part.strip()))
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
            raise SettingsError(
                f"CORS_ALLOWED_ORIGINS must be comma-separated origins such as https://portal.contoso.com "
                f"(scheme and host, no path), or *, got {origin!r}"
            )
    return origins


def read_bool(env: Mapping[str, str], name: str) -> bool | None:
    """true or false (any case); None when unset and without a default."""
    raw = read_setting(env, name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def _auth_enabled(env: Mapping[str, str]) -> bool:
    """Sign-in is on when the platform or the deployment says so; when they disagree, the
    caller's header cannot be trusted and the app refuses to start serving (fails closed)."""
    platform, deployment = read_bool(env, "WEBSITE_AUTH_ENABLED"), read_bool(env, "API_SIGN_IN_ENABLED")
    if platform is False and deployment:
        raise SettingsError(
            "API_SIGN_IN_ENABLED is true but the platform says App Service Authentication is off "
            "(WEBSITE_AUTH_ENABLED=false): turn sign-in on, or set API_SIGN_IN_ENABLED to false"
        )
    return bool(platform or deployment)


def _health_max_age(env: Mapping[str, str]) -> int | None:
    if read_setting(env, "HEALTH_MAX_AGE_SECONDS") is None:
        return None
    return read_int(env, "HEALTH_MAX_AGE_SECONDS", 60, 30 * 86_400)


def _json_setting(env: Mapping[str, str], name: str) -> Any:
    raw = read_setting(env, name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{name} must be JSON ({error.msg} at character {error.pos})") from None


def _tenants(env: Mapping[str, str], home: str, graph_auth: str) -> tuple[Tenant, ...]:
    raw = _json_setting(env, "TENANTS")
    if raw is None:
        return ()
    try:
        tenants = parse_tenants(raw)
    except TenantError as error:
        raise SettingsError(f"TENANTS {error}") from None
    others = [t.tenant_id for t in tenants if t.enabled and t.tenant_id != home]
    if others and graph_auth in HOME_ONLY_AUTH:
        raise SettingsError(
            f"TENANTS names other tenants ({', '.join(others[:3])}) but GRAPH_AUTH={graph_auth} gets tokens for "
            "AZURE_TENANT_ID only: use GRAPH_AUTH=workload_identity with a multi-tenant app (docs/multitenant.md)"
        )
    return tenants


def _tenant_access(env: Mapping[str, str]) -> TenantAccess | None:
    raw = _json_setting(env, "API_TENANT_ROLES")
    if raw is None:
        return None
    try:
        return parse_tenant_access(raw)
    except TenantError as error:
        raise SettingsError(f"API_TENANT_ROLES {error}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError naming the first bad one."""
    env = os.environ if env is None else env

    tenant_id = _require(env, "AZURE_TENANT_ID", "(the tenant's GUID)")
    if not _TENANT.match(tenant_id):
        raise SettingsError(f"AZURE_TENANT_ID must be the tenant's GUID or domain, got {tenant_id!r}")

    graph_base_url = _graph_base_url(env)
    graph_auth = (read_setting(env, "GRAPH_AUTH") or "").lower()
    if graph_auth not in GRAPH_AUTH_MODES:
        raise SettingsError(f"GRAPH_AUTH must be one of {', '.join(GRAPH_AUTH_MODES)}, got {graph_auth!r}")
    host = urlsplit(graph_base_url).hostname or ""
    if graph_auth == "none" and not is_loopback_host(host):
        raise SettingsError(
            "GRAPH_AUTH=none sends no credentials and is only allowed when GRAPH_BASE_URL's "
            f"host is loopback (a local emulator), not {host!r}"
        )

    client_id = read_setting(env, "AZURE_CLIENT_ID")
    client_secret = read_setting(env, "AZURE_CLIENT_SECRET")
    certificate_path = read_setting(env, "AZURE_CLIENT_CERTIFICATE_PATH")
    if graph_auth in ("client_secret", "certificate", "workload_identity") and not client_id:
        raise SettingsError(
            f"AZURE_CLIENT_ID is required with GRAPH_AUTH={graph_auth} (the app registration's client ID)"
        )
    if graph_auth == "client_secret" and not client_secret:
        raise SettingsError("AZURE_CLIENT_SECRET is required with GRAPH_AUTH=client_secret")
    if graph_auth == "certificate":
        if not certificate_path:
            raise SettingsError("AZURE_CLIENT_CERTIFICATE_PATH is required with GRAPH_AUTH=certificate")
        if not os.path.isfile(certificate_path):
            raise SettingsError(f"AZURE_CLIENT_CERTIFICATE_PATH must name a readable file, got {certificate_path!r}")

    table_prefix = read_setting(env, "TABLE_PREFIX") or ""
    if not _TABLE_PREFIX.match(table_prefix):
        raise SettingsError(
            f"TABLE_PREFIX must be 1-41 letters and digits starting with a letter, got {table_prefix!r}"
        )

    return Settings(
        tenant_id=tenant_id.lower(),
        home_tenant_id=tenant_id.lower(),
        tenants=_tenants(env, tenant_id.lower(), graph_auth),
        tenant_access=_tenant_access(env),
        graph_base_url=graph_base_url,
        graph_auth=graph_auth,
        client_id=client_id,
        client_secret=client_secret,
        client_certificate_path=certificate_path,
        client_certificate_password=read_setting(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
        authority_host=read_setting(env, "AZURE_AUTHORITY_HOST"),
        managed_identity_client_id=read_setting(env, "MANAGED_IDENTITY_CLIENT_ID"),
        storage=_storage(env),
        table_prefix=table_prefix,
        service_principal_ids=_service_principal_ids(env),
        graph_max_concurrency=read_int(env, "GRAPH_MAX_CONCURRENCY", 1, 32),
        poll_deadline_seconds=float(read_int(env, "POLL_DEADLINE_SECONDS", 10, 3600)),
        retention_days=read_int(env, "RETENTION_DAYS", 1, 36500),
        poll_schedule=read_setting(env, "POLL_SCHEDULE") or "",
        auth_enabled=_auth_enabled(env),
        api_required_role=read_setting(env, "API_REQUIRED_ROLE"),
        api_write_role=read_setting(env, "API_WRITE_ROLE"),
        api_key_only_writes=bool(read_bool(env, "API_KEY_ONLY_WRITES")),
        actions_enabled=bool(read_bool(env, "ACTIONS_ENABLED")),
        cors_allowed_origins=_cors_allowed_origins(env),
        health_max_age_seconds=_health_max_age(env),
        work_queue_name=_work_queue_name(env, table_prefix),
        work_inline_max_principals=read_int(env, "WORK_INLINE_MAX_PRINCIPALS", 0, 1_000_000),
        work_item_principals=read_int(env, "WORK_ITEM_PRINCIPALS", 1, 200),
        provisioning_logs=_provisioning_logs(env),
        provisioning_log_samples=read_int(env, "PROVISIONING_LOG_SAMPLES", 1, 50),
        provisioning_log_pages=read_int(env, "PROVISIONING_LOG_PAGES", 1, 1000),
        health_rules=HealthRules(
            stale_min_seconds=60 * read_int(env, "STALE_MIN_MINUTES", 1, 7 * 1440),
            first_cycle_warn_seconds=3600 * read_number(env, "FIRST_CYCLE_WARN_HOURS", 0.5, 24 * 90),
        ),
    )


def __getattr__(name: str) -> dict[str, SettingSpec]:
    """`SETTINGS`: every setting the app reads, core and alerts, in one catalogue."""
    if name == "SETTINGS":
        from shared.alerts.settings import ALERT_SETTINGS

        return {**CORE_SETTINGS, **ALERT_SETTINGS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
