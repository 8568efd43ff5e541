"""Settings are read in one place and a bad one fails fast, naming the setting."""

from __future__ import annotations

import pytest

from shared.settings import SETTINGS, SettingsError, load_settings
from tests.support.paths import ROOT

TENANT = "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
BASE = {"AZURE_TENANT_ID": TENANT, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_defaults_are_production_safe() -> None:
    settings = load_settings(BASE)
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_auth == "managed_identity"
    assert settings.graph_scope == "https://graph.microsoft.com/.default"
    assert settings.table_prefix == "syncmon"
    assert settings.graph_max_concurrency == 4
    assert settings.service_principal_ids == ()


def test_national_cloud_scope_follows_the_graph_host() -> None:
    settings = load_settings({**BASE, "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/"})
    assert settings.graph_base_url == "https://graph.microsoft.us/v1.0"
    assert settings.graph_scope == "https://graph.microsoft.us/.default"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"AZURE_TENANT_ID": ""}, "AZURE_TENANT_ID"),
        ({"AZURE_TENANT_ID": "contoso/onmicrosoft#com"}, "AZURE_TENANT_ID"),
        ({"GRAPH_AUTH": "password"}, "GRAPH_AUTH"),
        ({"GRAPH_BASE_URL": "graph.microsoft.com"}, "GRAPH_BASE_URL"),
        ({"GRAPH_BASE_URL": "https://graph.microsoft.com"}, "GRAPH_BASE_URL"),
        ({"GRAPH_BASE_URL": "http://graph.example.com/v1.0"}, "GRAPH_BASE_URL"),
        ({"GRAPH_AUTH": "client_secret"}, "AZURE_CLIENT_ID"),
        ({"GRAPH_AUTH": "client_secret", "AZURE_CLIENT_ID": TENANT}, "AZURE_CLIENT_SECRET"),
        (
            {"GRAPH_AUTH": "certificate", "AZURE_CLIENT_ID": TENANT, "AZURE_CLIENT_CERTIFICATE_PATH": "/nope.pem"},
            "AZURE_CLIENT_CERTIFICATE_PATH",
        ),
        ({"AzureWebJobsStorage": ""}, "AzureWebJobsStorage"),
        ({"AzureWebJobsStorage": "garbage"}, "AzureWebJobsStorage"),
        (
            {"AzureWebJobsStorage": "", "AzureWebJobsStorage__tableServiceUri": "not a url"},
            "AzureWebJobsStorage__tableServiceUri",
        ),
        ({"SERVICE_PRINCIPAL_IDS": "abc/def"}, "SERVICE_PRINCIPAL_IDS"),
        ({"SERVICE_PRINCIPAL_IDS": "a b"}, "SERVICE_PRINCIPAL_IDS"),
        ({"TABLE_PREFIX": "my-tables"}, "TABLE_PREFIX"),
        ({"GRAPH_MAX_CONCURRENCY": "0"}, "GRAPH_MAX_CONCURRENCY"),
        ({"GRAPH_MAX_CONCURRENCY": "four"}, "GRAPH_MAX_CONCURRENCY"),
        ({"POLL_DEADLINE_SECONDS": "-5"}, "POLL_DEADLINE_SECONDS"),
    ],
)
def test_a_bad_setting_is_named_in_the_error(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **overrides})
    assert str(caught.value).startswith(named)


def test_graph_auth_none_is_refused_for_a_remote_host() -> None:
    with pytest.raises(SettingsError, match="GRAPH_AUTH=none"):
        load_settings({**BASE, "GRAPH_AUTH": "none", "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0"})
    settings = load_settings({**BASE, "GRAPH_AUTH": "none", "GRAPH_BASE_URL": "http://127.0.0.1:8080/v1.0"})
    assert settings.graph_auth == "none"


def test_a_storage_connection_string_is_never_echoed() -> None:
    secret = "DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0;"  # no AccountName/TableEndpoint
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "AzureWebJobsStorage": secret})
    assert "c2VjcmV0" not in str(caught.value)


def test_identity_based_storage() -> None:
    settings = load_settings(
        {
            "AZURE_TENANT_ID": TENANT,
            "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
        }
    )
    assert settings.storage.connection_string is None
    assert settings.storage.table_service_uri == "https://acct.table.core.windows.net"
    assert settings.storage.managed_identity_client_id == "11111111-2222-3333-4444-555555555555"


def test_pinned_service_principals_are_parsed_and_deduplicated() -> None:
    ids = "11111111-2222-3333-4444-555555555555, 11111111-2222-3333-4444-555555555555,,"
    assert load_settings({**BASE, "SERVICE_PRINCIPAL_IDS": ids}).service_principal_ids == (
        "11111111-2222-3333-4444-555555555555",
    )


def test_secrets_are_not_in_the_settings_repr() -> None:
    settings = load_settings(
        {**BASE, "GRAPH_AUTH": "client_secret", "AZURE_CLIENT_ID": TENANT, "AZURE_CLIENT_SECRET": "s3cr3t-value"}
    )
    assert "s3cr3t-value" not in repr(settings)
    assert "UseDevelopmentStorage" not in repr(settings)


def test_the_sample_settings_file_lists_every_setting() -> None:
    import json

    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    identity_storage = {name for name in SETTINGS if name.startswith("AzureWebJobsStorage__")}
    assert set(SETTINGS) - identity_storage <= set(sample)
    for name, spec in SETTINGS.items():
        if spec.secret and name in sample and name != "AzureWebJobsStorage":
            assert sample[name] == "", f"{name} must have no value in the sample"


def test_the_readme_documents_every_setting() -> None:

    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS if f"`{name}`" not in readme and name.split("__")[0] + "__" not in readme]
    assert missing == []


def test_the_work_queue_is_named_after_the_tables_unless_set() -> None:
    assert load_settings(BASE).work_queue_name == "syncmon-work"
    assert load_settings({**BASE, "TABLE_PREFIX": "Contoso2"}).work_queue_name == "contoso2-work"
    assert load_settings({**BASE, "TABLE_PREFIX": "Contoso2", "WORK_QUEUE_NAME": "q-1"}).work_queue_name == "q-1"
    with pytest.raises(SettingsError, match="WORK_QUEUE_NAME"):
        load_settings({**BASE, "WORK_QUEUE_NAME": "Bad_Name"})
    with pytest.raises(SettingsError, match="PROVISIONING_LOGS"):
        load_settings({**BASE, "PROVISIONING_LOGS": "everything"})
