"""The alert settings: their catalogue and `load_alert_settings`.

Read by the alert step after each poll, apart from `load_settings`: a bad alert setting fails
the alerts (visibly, in the poll record and the log), never the poll. Webhook URLs and the
signing secret are secrets: messages name the setting, never its value. `shared.settings`
joins `ALERT_SETTINGS` with its own catalogue into `SETTINGS`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.alerts.records import RULES, RuleName, TargetKind
from shared.settings import (
    Catalogue,
    SettingsError,
    SettingSpec,
    is_loopback_host,
    read_int,
    read_number,
    read_setting,
)

ALERT_RULE_NAMES: tuple[RuleName, ...] = RULES

ALERT_SETTINGS: Catalogue = {
    "ALERT_RULES": SettingSpec(
        "Alert rules that are on: `all`, `none`, or comma-separated names from " + ", ".join(ALERT_RULE_NAMES) + ".",
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
    "ALERT_SLACK_WEBHOOK_URL": SettingSpec("Slack incoming webhook URL; in Azure, a Key Vault reference.", secret=True),
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

# App Service leaves a Key Vault reference it could not resolve as the literal reference. An
# empty one (`SecretUri=` with nothing after it, what the Bicep sets when no secret is given)
# means "not configured"; any other is a configuration error.
_EMPTY_KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(\s*(?:SecretUri\s*=\s*)?\)$", re.IGNORECASE)
_WEBHOOK_SECRET_MIN = 16


@dataclass(frozen=True)
class AlertSettings:
    rules: frozenset[RuleName]
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
    def target_kinds(self) -> tuple[TargetKind, ...]:
        """The configured targets by kind (what may be logged about them)."""
        urls: tuple[tuple[TargetKind, str | None], ...] = (
            ("teams", self.teams_webhook_url),
            ("slack", self.slack_webhook_url),
            ("webhook", self.webhook_url),
        )
        return tuple(kind for kind, url in urls if url)


def _alert_rules(env: Mapping[str, str]) -> frozenset[RuleName]:
    raw = (read_setting(env, "ALERT_RULES", ALERT_SETTINGS) or "all").strip()
    if raw.lower() == "all":
        return frozenset(ALERT_RULE_NAMES)
    if raw.lower() == "none":
        return frozenset()
    by_lower = {name.lower(): name for name in ALERT_RULE_NAMES}
    rules: set[RuleName] = set()
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        if part.lower() not in by_lower:
            raise SettingsError(
                f"ALERT_RULES must be all, none or names from {', '.join(ALERT_RULE_NAMES)}, got {part!r}"
            )
        rules.add(by_lower[part.lower()])
    return frozenset(rules)


def _secret_value(env: Mapping[str, str], name: str) -> str | None:
    value = read_setting(env, name, ALERT_SETTINGS)
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


# Where alerts go: a tenant with an `alertSettingsSuffix` S has its own, in `<name>_S`.
ALERT_TARGET_SETTINGS = (
    "ALERT_TEAMS_WEBHOOK_URL",
    "ALERT_SLACK_WEBHOOK_URL",
    "ALERT_WEBHOOK_URL",
    "ALERT_WEBHOOK_SECRET",
)


def _routed(env: Mapping[str, str], suffix: str) -> dict[str, str]:
    """The settings as one tenant's alerts read them: its own targets only (none set: none)."""
    routed = {name: value for name, value in env.items() if name not in ALERT_TARGET_SETTINGS}
    for name in ALERT_TARGET_SETTINGS:
        if f"{name}_{suffix}" in env:
            routed[name] = env[f"{name}_{suffix}"]
    return routed


def load_alert_settings(env: Mapping[str, str] | None = None, *, tenant_suffix: str | None = None) -> AlertSettings:
    """Read and validate the alert settings; raises SettingsError naming the first bad one.
    `tenant_suffix`: a tenant's `alertSettingsSuffix`, whose targets replace the global ones."""
    env = os.environ if env is None else env
    if tenant_suffix:
        try:
            return load_alert_settings(_routed(env, tenant_suffix))
        except SettingsError as error:
            raise SettingsError(f"{error} (this tenant's own: the setting's name ends in _{tenant_suffix})") from None
    webhook_url = _webhook_url(env, "ALERT_WEBHOOK_URL")
    webhook_secret = _secret_value(env, "ALERT_WEBHOOK_SECRET")
    if webhook_url and not webhook_secret:
        raise SettingsError("ALERT_WEBHOOK_SECRET is required with ALERT_WEBHOOK_URL (it signs every request)")
    if webhook_secret is not None and len(webhook_secret) < _WEBHOOK_SECRET_MIN:
        raise SettingsError(f"ALERT_WEBHOOK_SECRET must be at least {_WEBHOOK_SECRET_MIN} characters (value not shown)")
    return AlertSettings(
        rules=_alert_rules(env),
        reminder_hours=read_number(env, "ALERT_REMINDER_HOURS", 0, 8760, ALERT_SETTINGS),
        quarantine_reminder_days=read_number(env, "ALERT_QUARANTINE_REMINDER_DAYS", 0, 365, ALERT_SETTINGS),
        failing_after=read_int(env, "ALERT_FAILING_AFTER", 1, 10_000, ALERT_SETTINGS),
        object_drop_percent=read_number(env, "ALERT_OBJECT_DROP_PERCENT", 1, 100, ALERT_SETTINGS),
        object_drop_accept_hours=read_number(env, "ALERT_OBJECT_DROP_ACCEPT_HOURS", 1, 8760, ALERT_SETTINGS),
        confirm_minutes=read_number(env, "ALERT_CONFIRM_MINUTES", 0, 1440, ALERT_SETTINGS),
        delivery_attempts=read_int(env, "ALERT_DELIVERY_ATTEMPTS", 1, 10, ALERT_SETTINGS),
        delivery_max_age_hours=read_number(env, "ALERT_DELIVERY_MAX_AGE_HOURS", 1, 720, ALERT_SETTINGS),
        teams_webhook_url=_webhook_url(env, "ALERT_TEAMS_WEBHOOK_URL"),
        slack_webhook_url=_webhook_url(env, "ALERT_SLACK_WEBHOOK_URL"),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret if webhook_url else None,
    )
