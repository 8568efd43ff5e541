"""Every setting the app reads, read in one place.

Settings are environment variables with the same names as the Function app's app settings.
`load_settings()` validates all of them at once and fails with a `SettingsError` that names
the setting and what it expects, so a bad configuration stops a run at its start, not deep
in a poll. `SETTINGS` is the catalogue that docs, the sample settings file and the Bicep
checks are held against.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from shared.domain.health import HealthRules

GraphAuth = Literal["managed_identity", "client_secret", "certificate", "workload_identity", "default", "none"]
GRAPH_AUTH_MODES: tuple[GraphAuth, ...] = (
    "managed_identity",
    "client_secret",
    "certificate",
    "workload_identity",
    "default",
    "none",
)

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"


@dataclass(frozen=True)
class SettingSpec:
    """What one setting means; `default` None means "no default" (required or optional)."""

    description: str
    default: str | None = None
    required: bool = False
    secret: bool = False


SETTINGS: dict[str, SettingSpec] = {
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
    "AzureWebJobsStorage__credential": SettingSpec(
        "Identity-based storage: `managedidentity` (the only value Functions accepts)."
    ),
    "AzureWebJobsStorage__clientId": SettingSpec(
        "Identity-based storage: client ID of the user-assigned managed identity."
    ),
    "TABLE_PREFIX": SettingSpec("Prefix of the data tables' names (letters and digits).", "syncmon"),
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
    "API_REQUIRED_ROLE": SettingSpec(
        "With App Service Authentication on: the app role a caller of /api/v1 must hold (empty: any signed-in caller)."
    ),
    "WEBSITE_AUTH_ENABLED": SettingSpec(
        "Set by the platform when App Service Authentication is on; only then does the API trust "
        "the X-MS-CLIENT-PRINCIPAL header and require a signed-in caller.",
        "false",
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
    auth_enabled: bool = False
    api_required_role: str | None = None
    cors_allowed_origins: tuple[str, ...] = ()
    health_max_age_seconds: int | None = None
    health_rules: HealthRules = field(default_factory=HealthRules)

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


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        default = SETTINGS[name].default
        return default
    return value.strip()


def _require(env: Mapping[str, str], name: str, why: str) -> str:
    value = _get(env, name)
    if value is None:
        raise SettingsError(f"{name} is required {why}")
    return value


def _int_setting(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    raw = _get(env, name)
    assert raw is not None  # both have defaults
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return value


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _graph_base_url(env: Mapping[str, str]) -> str:
    raw = _get(env, "GRAPH_BASE_URL")
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
    connection = _get(env, "AzureWebJobsStorage")
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
    uri = _get(env, "AzureWebJobsStorage__tableServiceUri")
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
    credential = _get(env, "AzureWebJobsStorage__credential")
    if credential is not None and credential.lower() != "managedidentity":
        raise SettingsError(f"AzureWebJobsStorage__credential must be `managedidentity`, got {credential!r}")
    return StorageSettings(
        table_service_uri=uri.rstrip("/"),
        managed_identity_client_id=_get(env, "AzureWebJobsStorage__clientId"),
    )


def _service_principal_ids(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "SERVICE_PRINCIPAL_IDS") or ""
    ids = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for sp_id in ids:
        if not _OBJECT_ID.match(sp_id):
            raise SettingsError(f"SERVICE_PRINCIPAL_IDS must be comma-separated object IDs (GUIDs), got {sp_id!r}")
    return ids


def _cors_allowed_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "CORS_ALLOWED_ORIGINS") or ""
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


def _auth_enabled(env: Mapping[str, str]) -> bool:
    raw = (_get(env, "WEBSITE_AUTH_ENABLED") or "false").lower()
    if raw not in ("true", "false"):
        raise SettingsError(f"WEBSITE_AUTH_ENABLED must be true or false, got {raw!r}")
    return raw == "true"


def _health_max_age(env: Mapping[str, str]) -> int | None:
    if _get(env, "HEALTH_MAX_AGE_SECONDS") is None:
        return None
    return _int_setting(env, "HEALTH_MAX_AGE_SECONDS", 60, 30 * 86_400)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError naming the first bad one."""
    env = os.environ if env is None else env

    tenant_id = _require(env, "AZURE_TENANT_ID", "(the tenant's GUID)")
    if not _TENANT.match(tenant_id):
        raise SettingsError(f"AZURE_TENANT_ID must be the tenant's GUID or domain, got {tenant_id!r}")

    graph_base_url = _graph_base_url(env)
    graph_auth = (_get(env, "GRAPH_AUTH") or "").lower()
    if graph_auth not in GRAPH_AUTH_MODES:
        raise SettingsError(f"GRAPH_AUTH must be one of {', '.join(GRAPH_AUTH_MODES)}, got {graph_auth!r}")
    host = urlsplit(graph_base_url).hostname or ""
    if graph_auth == "none" and not is_loopback_host(host):
        raise SettingsError(
            "GRAPH_AUTH=none sends no credentials and is only allowed when GRAPH_BASE_URL's "
            f"host is loopback (a local emulator), not {host!r}"
        )

    client_id = _get(env, "AZURE_CLIENT_ID")
    client_secret = _get(env, "AZURE_CLIENT_SECRET")
    certificate_path = _get(env, "AZURE_CLIENT_CERTIFICATE_PATH")
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

    table_prefix = _get(env, "TABLE_PREFIX") or ""
    if not _TABLE_PREFIX.match(table_prefix):
        raise SettingsError(
            f"TABLE_PREFIX must be 1-41 letters and digits starting with a letter, got {table_prefix!r}"
        )

    return Settings(
        tenant_id=tenant_id.lower(),
        graph_base_url=graph_base_url,
        graph_auth=graph_auth,
        client_id=client_id,
        client_secret=client_secret,
        client_certificate_path=certificate_path,
        client_certificate_password=_get(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
        authority_host=_get(env, "AZURE_AUTHORITY_HOST"),
        managed_identity_client_id=_get(env, "MANAGED_IDENTITY_CLIENT_ID"),
        storage=_storage(env),
        table_prefix=table_prefix,
        service_principal_ids=_service_principal_ids(env),
        graph_max_concurrency=_int_setting(env, "GRAPH_MAX_CONCURRENCY", 1, 32),
        poll_deadline_seconds=float(_int_setting(env, "POLL_DEADLINE_SECONDS", 10, 3600)),
        retention_days=_int_setting(env, "RETENTION_DAYS", 1, 36500),
        poll_schedule=_get(env, "POLL_SCHEDULE") or "",
        auth_enabled=_auth_enabled(env),
        api_required_role=_get(env, "API_REQUIRED_ROLE"),
        cors_allowed_origins=_cors_allowed_origins(env),
        health_max_age_seconds=_health_max_age(env),
        health_rules=HealthRules(
            stale_min_seconds=60 * _int_setting(env, "STALE_MIN_MINUTES", 1, 7 * 1440),
            first_cycle_warn_seconds=3600 * _number_setting(env, "FIRST_CYCLE_WARN_HOURS", 0.5, 24 * 90),
        ),
    )


# ============================================================ alerts
# Appended by the alerts feature (docs/alerts.md). Read by the alert step after each poll,
# apart from load_settings: a bad alert setting fails the alerts (visibly, in the poll record
# and the log), never the poll. Webhook URLs and the signing secret are secrets: messages name
# the setting, never its value.

ALERT_RULE_NAMES = (
    "quarantined",
    "failing",
    "stale",
    "firstCycleNotFinished",
    "escrowsNearThreshold",
    "paused",
    "objectCountDrop",
    "removed",
)

SETTINGS.update(
    {
        "ALERT_RULES": SettingSpec(
            "Alert rules that are on: `all`, `none`, or comma-separated names from "
            + ", ".join(ALERT_RULE_NAMES)
            + ".",
            "all",
        ),
        "ALERT_REMINDER_HOURS": SettingSpec(
            "An open alert is sent again as a reminder after this many hours (decimals allowed; 0: no reminders).",
            "24",
        ),
        "ALERT_QUARANTINE_REMINDER_DAYS": SettingSpec(
            "A quarantined job is also reminded each time its quarantine passes N, 2N, ... days, with the days "
            "left before Entra disables it (about 28); 0: off.",
            "7",
        ),
        "ALERT_FAILING_AFTER": SettingSpec(
            "The failing alert opens at this many successive complete failures (countSuccessiveCompleteFailures).",
            "3",
        ),
        "ALERT_OBJECT_DROP_PERCENT": SettingSpec(
            "The objectCountDrop alert opens when the synchronized object count falls by more than this percentage "
            "since the previous observation.",
            "20",
        ),
        "ALERT_OBJECT_DROP_ACCEPT_HOURS": SettingSpec(
            "An objectCountDrop alert resolves when the count recovers, or after this many hours at the lower "
            "level (accepted as the new level).",
            "72",
        ),
        "ALERT_CONFIRM_MINUTES": SettingSpec(
            "The failing and stale alerts open only after their condition has held across polls for this many "
            "minutes, and resolve only after it has stayed clear as long (0: at once).",
            "15",
        ),
        "ALERT_DELIVERY_ATTEMPTS": SettingSpec(
            "HTTP attempts per notification and target in one run (with backoff); later runs retry.", "4"
        ),
        "ALERT_DELIVERY_MAX_AGE_HOURS": SettingSpec(
            "A notification not delivered within this many hours is given up (status failed, kept visible).", "24"
        ),
        "ALERT_TEAMS_WEBHOOK_URL": SettingSpec(
            "Microsoft Teams incoming webhook or Workflows URL that receives Adaptive Cards; in Azure, a Key Vault "
            "reference.",
            secret=True,
        ),
        "ALERT_SLACK_WEBHOOK_URL": SettingSpec(
            "Slack incoming webhook URL; in Azure, a Key Vault reference.", secret=True
        ),
        "ALERT_WEBHOOK_URL": SettingSpec(
            "Any HTTPS endpoint that receives the generic JSON payload, signed with ALERT_WEBHOOK_SECRET; in Azure, "
            "a Key Vault reference.",
            secret=True,
        ),
        "ALERT_WEBHOOK_SECRET": SettingSpec(
            "Key (16 characters or more) of the HMAC-SHA256 signature of the generic webhook; in Azure, a Key Vault "
            "reference.",
            secret=True,
        ),
    }
)

# App Service leaves a Key Vault reference it could not resolve as the literal reference. An
# empty one (`SecretUri=` with nothing after it, what the Bicep sets when no secret is given)
# means "not configured"; any other is a configuration error.
_EMPTY_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(\s*(?:SecretUri\s*=\s*)?\)$", re.IGNORECASE)
_WEBHOOK_SECRET_MIN = 16


@dataclass(frozen=True)
class AlertSettings:
    rules: frozenset[str]
    reminder_hours: float
    quarantine_reminder_days: float
    failing_after: int
    object_drop_percent: float
    object_drop_accept_hours: float
    confirm_minutes: float
    delivery_attempts: int
    delivery_max_age_hours: float
    teams_webhook_url: str | None = field(default=None, repr=False)
    slack_webhook_url: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def target_kinds(self) -> tuple[str, ...]:
        """The configured targets by kind (what may be logged about them)."""
        urls = (("teams", self.teams_webhook_url), ("slack", self.slack_webhook_url), ("webhook", self.webhook_url))
        return tuple(kind for kind, url in urls if url)


def _number_setting(env: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = _get(env, name)
    assert raw is not None  # every one has a default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}")
    return value


def _alert_rules(env: Mapping[str, str]) -> frozenset[str]:
    raw = (_get(env, "ALERT_RULES") or "all").strip()
    if raw.lower() == "all":
        return frozenset(ALERT_RULE_NAMES)
    if raw.lower() == "none":
        return frozenset()
    by_lower = {name.lower(): name for name in ALERT_RULE_NAMES}
    rules = set()
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        if part.lower() not in by_lower:
            raise SettingsError(
                f"ALERT_RULES must be all, none or names from {', '.join(ALERT_RULE_NAMES)}, got {part!r}"
            )
        rules.add(by_lower[part.lower()])
    return frozenset(rules)


def _secret_value(env: Mapping[str, str], name: str) -> str | None:
    value = _get(env, name)
    if value is None or _EMPTY_KEY_VAULT_REFERENCE.match(value):
        return None
    if value.lower().startswith("@microsoft.keyvault("):
        raise SettingsError(
            f"{name} is a Key Vault reference the platform could not resolve: give the app's identity the "
            "Key Vault Secrets User role on the vault and check the secret URI (value not shown)"
        )
    return value


def _webhook_url(env: Mapping[str, str], name: str) -> str | None:
    url = _secret_value(env, name)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or not host or parts.scheme not in ("https", "http"):
        raise SettingsError(f"{name} must be an absolute https URL (value not shown)")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise SettingsError(f"{name} must use https unless its host is loopback (value not shown)")
    return url


def load_alert_settings(env: Mapping[str, str] | None = None) -> AlertSettings:
    """Read and validate the alert settings; raises SettingsError naming the first bad one."""
    env = os.environ if env is None else env
    webhook_url = _webhook_url(env, "ALERT_WEBHOOK_URL")
    webhook_secret = _secret_value(env, "ALERT_WEBHOOK_SECRET")
    if webhook_url and not webhook_secret:
        raise SettingsError("ALERT_WEBHOOK_SECRET is required with ALERT_WEBHOOK_URL (it signs every request)")
    if webhook_secret is not None and len(webhook_secret) < _WEBHOOK_SECRET_MIN:
        raise SettingsError(f"ALERT_WEBHOOK_SECRET must be at least {_WEBHOOK_SECRET_MIN} characters (value not shown)")
    return AlertSettings(
        rules=_alert_rules(env),
        reminder_hours=_number_setting(env, "ALERT_REMINDER_HOURS", 0, 8760),
        quarantine_reminder_days=_number_setting(env, "ALERT_QUARANTINE_REMINDER_DAYS", 0, 365),
        failing_after=_int_setting(env, "ALERT_FAILING_AFTER", 1, 10_000),
        object_drop_percent=_number_setting(env, "ALERT_OBJECT_DROP_PERCENT", 1, 100),
        object_drop_accept_hours=_number_setting(env, "ALERT_OBJECT_DROP_ACCEPT_HOURS", 1, 8760),
        confirm_minutes=_number_setting(env, "ALERT_CONFIRM_MINUTES", 0, 1440),
        delivery_attempts=_int_setting(env, "ALERT_DELIVERY_ATTEMPTS", 1, 10),
        delivery_max_age_hours=_number_setting(env, "ALERT_DELIVERY_MAX_AGE_HOURS", 1, 720),
        teams_webhook_url=_webhook_url(env, "ALERT_TEAMS_WEBHOOK_URL"),
        slack_webhook_url=_webhook_url(env, "ALERT_SLACK_WEBHOOK_URL"),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret if webhook_url else None,
    )
