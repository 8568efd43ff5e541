"""Tenants as configuration, pure: the TENANTS and API_TENANT_ROLES settings, each tenant's own
settings (cloud, authority, pinned service principals), and a tenant's state from its last poll."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.tenants import Tenant, TenantError, merge_registry, parse_tenant, tenant_state
from shared.graph.credentials import build_credential, token_exchange_scope
from shared.settings import SettingsError, load_settings

HOME = "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
FABRIKAM = "11111111-2222-3333-4444-555555555555"
NORTHWIND = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
BASE = {
    "AZURE_TENANT_ID": HOME,
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "GRAPH_AUTH": "workload_identity",
    "AZURE_CLIENT_ID": "99999999-8888-7777-6666-555555555555",
}


def settings_with(tenants: list[dict[str, Any]], **env: str) -> Any:
    return load_settings({**BASE, "TENANTS": json.dumps(tenants), **env})


def test_no_tenants_is_the_single_tenant_deployment_of_old() -> None:
    settings = load_settings(BASE)
    assert settings.tenants == () and settings.tenant_access is None
    home = Tenant(HOME, source="home")
    assert merge_registry(home, (), ()) == [home]
    assert settings.for_tenant(home) == settings  # the same keys, Graph root and pinned principals


def test_a_tenant_gets_its_clouds_hosts_its_own_pins_and_alert_targets() -> None:
    settings = settings_with(
        [
            {
                "tenantId": FABRIKAM.upper(),
                "displayName": "Fabrikam",
                "cloud": "usgov",
                "servicePrincipalIds": ["sp-1"],
            },
            {"tenantId": NORTHWIND, "alertSettingsSuffix": "NORTHWIND"},
        ],
        SERVICE_PRINCIPAL_IDS="home-sp",
    )
    fabrikam, northwind = settings.tenants
    own = settings.for_tenant(fabrikam)
    assert own.tenant_id == FABRIKAM  # lower-cased: every key is
    assert (own.graph_base_url, own.authority_host) == (
        "https://graph.microsoft.us/v1.0",
        "https://login.microsoftonline.us",
    )
    assert own.graph_scope == "https://graph.microsoft.us/.default"
    assert own.service_principal_ids == ("sp-1",)  # not the home tenant's pins
    assert own.home_tenant_id == HOME
    assert settings.for_tenant(northwind).graph_base_url == settings.graph_base_url  # no cloud: the deployment's
    assert settings.for_tenant(northwind).alert_settings_suffix == "NORTHWIND"
    assert settings.for_tenant(northwind).service_principal_ids == ()


async def test_each_tenant_signs_in_at_its_own_authority_with_the_same_app() -> None:
    settings = settings_with([{"tenantId": FABRIKAM, "cloud": "usgov"}])
    credential = build_credential(settings.for_tenant(settings.tenants[0]))
    assert type(credential).__name__ == "ClientAssertionCredential"
    client = credential._client  # type: ignore[union-attr]
    assert client._tenant_id == FABRIKAM
    assert "login.microsoftonline.us" in client._authority
    await credential.close()  # type: ignore[union-attr]
    # The managed identity's token is asked for the audience of the deployment's cloud.
    assert token_exchange_scope("https://login.microsoftonline.us") == "api://AzureADTokenExchangeUSGov/.default"
    assert token_exchange_scope(None) == "api://AzureADTokenExchange/.default"


@pytest.mark.parametrize(
    ("tenants", "words"),
    [
        ("not json", "TENANTS must be JSON"),
        ('{"tenantId": "x"}', "JSON array"),
        ('[{"tenantId": "contoso.com"}]', "tenantId must be the tenant's GUID"),
        (f'[{{"tenantId": "{FABRIKAM}", "cloud": "mars"}}]', "cloud must be one of global, usgov, usgovdod, china"),
        (f'[{{"tenantId": "{FABRIKAM}", "colour": "blue"}}]', "unknown field(s): colour"),
        (f'[{{"tenantId": "{FABRIKAM}", "graphBaseUrl": "http://graph.example.com/v1.0"}}]', "https"),
        (f'[{{"tenantId": "{FABRIKAM}", "enabled": "yes"}}]', "enabled must be true or false"),
        (f'[{{"tenantId": "{FABRIKAM}"}}, {{"tenantId": "{FABRIKAM.upper()}"}}]', "listed twice"),
        (f'[{{"tenantId": "{FABRIKAM}", "alertSettingsSuffix": "a b"}}]', "alertSettingsSuffix"),
    ],
)
def test_a_bad_tenants_setting_fails_fast_naming_it(tenants: str, words: str) -> None:
    with pytest.raises(SettingsError, match="TENANTS") as raised:
        load_settings({**BASE, "TENANTS": tenants})
    assert words in str(raised.value)


def test_a_managed_identity_cannot_watch_another_tenant() -> None:
    # Its token is its own tenant's: used for another, Graph would answer with the home tenant's data.
    env = {**BASE, "GRAPH_AUTH": "managed_identity"}
    with pytest.raises(SettingsError, match="GRAPH_AUTH=managed_identity gets tokens for AZURE_TENANT_ID only"):
        load_settings({**env, "TENANTS": json.dumps([{"tenantId": FABRIKAM}])})
    # The home tenant itself, or another that is disabled, is fine.
    load_settings({**env, "TENANTS": json.dumps([{"tenantId": HOME, "displayName": "Home"}])})
    settings = load_settings({**env, "TENANTS": json.dumps([{"tenantId": FABRIKAM, "enabled": False}])})
    assert not settings.reaches(FABRIKAM) and settings.reaches(HOME)


def test_the_api_cannot_point_a_tenant_at_a_host_of_its_choosing() -> None:
    body = {"tenantId": FABRIKAM, "graphBaseUrl": "https://evil.example.com/v1.0"}
    with pytest.raises(TenantError, match="only in the TENANTS setting"):
        parse_tenant(body, endpoints=False, source="api")


@pytest.mark.parametrize(
    ("roles", "bad"),
    [('{"Reader": "all"}', '"*" or a list'), ('{"Reader": ["contoso.com"]}', "tenant GUIDs"), ("[]", "JSON object")],
)
def test_a_bad_api_tenant_roles_setting_fails_fast(roles: str, bad: str) -> None:
    with pytest.raises(SettingsError, match="API_TENANT_ROLES") as raised:
        load_settings({**BASE, "API_TENANT_ROLES": roles})
    assert bad in str(raised.value)


def test_roles_grant_tenants() -> None:
    access = load_settings(
        {**BASE, "API_TENANT_ROLES": json.dumps({"All": "*", "Fab": [FABRIKAM.upper()]})}
    ).tenant_access
    assert access is not None
    assert access.allows(["Fab"], FABRIKAM) and not access.allows(["Fab"], HOME)
    assert access.allows(["Other", "All"], NORTHWIND) and access.sees_all(["All"])
    assert not access.allows([], HOME) and not access.sees_all(["Fab"])


def record(status: str = "succeeded", *errors: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"status": status, "errors": list(errors), "jobReads": 3, "jobsRead": 3, **fields}


@pytest.mark.parametrize(
    ("last", "state"),
    [
        (None, "notPolled"),
        (record(), "healthy"),
        (record("partial", {"kind": "graphRead", "status": 500}), "degraded"),
        (record("failed", {"kind": "servicePrincipalsForbidden", "status": 403}), "consentMissing"),
        (record("failed", {"kind": "graphUnauthorized", "status": 401}), "consentMissing"),
        (
            record("failed", {"kind": "graphToken", "message": "AADSTS7000229: The client application is missing"}),
            "consentMissing",
        ),
        (record("failed", {"kind": "graphToken", "message": "ClientAuthenticationError: timeout"}), "signInFailed"),
        (
            record("partial", jobReads=4, jobsRead=0, forbiddenReads={"jobs": 4, "servicePrincipals": 0}),
            "consentMissing",
        ),
        (record("failed", {"kind": "graphRead", "status": 401}, jobsRead=0), "consentMissing"),
        (record("partial", unfinishedServicePrincipals=["sp"], graph={"throttledPastDeadline": 2}), "throttled"),
        (record("succeeded", graph={"throttledPastDeadline": 10}), "throttled"),
        (record("failed", {"kind": "graphThrottled", "status": 429}), "throttled"),
        (record("failed", {"kind": "graphRead", "status": 429}, jobsRead=0), "throttled"),
        (record("succeeded", graph={"throttledPastDeadline": 0}), "healthy"),
        (record("failed", {"kind": "pollFailed", "message": "storage"}), "failing"),
    ],
)
def test_a_tenants_state_says_why_from_its_last_poll(last: dict[str, Any] | None, state: str) -> None:
    assert tenant_state(last, enabled=True, age_seconds=60, max_age=900) == state


def test_a_disabled_or_silent_tenant() -> None:
    assert tenant_state(record(), enabled=False, age_seconds=60, max_age=900) == "disabled"
    assert tenant_state(record(), enabled=True, age_seconds=3600, max_age=900) == "stale"


def test_a_tenant_with_its_own_alert_targets_alerts_there_only() -> None:
    from shared.alerts.settings import load_alert_settings

    env = {
        "ALERT_TEAMS_WEBHOOK_URL": "https://contoso.webhook.office.com/global",
        "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/global",
        "ALERT_TEAMS_WEBHOOK_URL_FABRIKAM": "https://fabrikam.webhook.office.com/own",
        "ALERT_REMINDER_HOURS": "12",
    }
    everyone = load_alert_settings(env)
    fabrikam = load_alert_settings(env, tenant_suffix="FABRIKAM")
    assert everyone.teams_webhook_url == "https://contoso.webhook.office.com/global"
    assert fabrikam.teams_webhook_url == "https://fabrikam.webhook.office.com/own"
    assert fabrikam.slack_webhook_url is None  # its own targets replace the global ones, all of them
    assert fabrikam.reminder_hours == everyone.reminder_hours == 12  # the rules stay the deployment's
    with pytest.raises(SettingsError, match="_FABRIKAM") as raised:
        load_alert_settings(
            {**env, "ALERT_WEBHOOK_URL_FABRIKAM": "https://hook.fabrikam.com"}, tenant_suffix="FABRIKAM"
        )
    assert "ALERT_WEBHOOK_SECRET" in str(raised.value)
