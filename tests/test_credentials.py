"""Each GRAPH_AUTH mode gets its azure-identity credential, scoped to the Graph host in use."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from shared.credentials import build_credential
from shared.settings import load_settings

TENANT = "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
CLIENT = "11111111-2222-3333-4444-555555555555"
BASE = {"AZURE_TENANT_ID": TENANT, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


@pytest.fixture
def certificate(tmp_path: Path) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-sync-monitor-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return str(path)


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        ({}, ManagedIdentityCredential),
        ({"AZURE_CLIENT_ID": CLIENT}, ManagedIdentityCredential),
        ({"GRAPH_AUTH": "default"}, DefaultAzureCredential),
        (
            {"GRAPH_AUTH": "client_secret", "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": "x"},
            ClientSecretCredential,
        ),
        ({"GRAPH_AUTH": "workload_identity", "AZURE_CLIENT_ID": CLIENT}, ClientAssertionCredential),
    ],
)
async def test_each_mode_gets_its_credential(settings: dict[str, str], kind: type) -> None:
    credential = build_credential(load_settings({**BASE, **settings}))
    assert isinstance(credential, kind)
    await credential.close()  # type: ignore[union-attr]


async def test_certificate_mode(certificate: str) -> None:
    settings = {"GRAPH_AUTH": "certificate", "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_CERTIFICATE_PATH": certificate}
    credential = build_credential(load_settings({**BASE, **settings}))
    assert isinstance(credential, CertificateCredential)
    await credential.close()


def test_none_mode_has_no_credential() -> None:
    settings = load_settings({**BASE, "GRAPH_AUTH": "none", "GRAPH_BASE_URL": "http://localhost:8080/v1.0"})
    assert build_credential(settings) is None


async def test_the_graph_client_asks_for_the_national_cloud_scope() -> None:
    from shared.graph import GraphReader

    settings = load_settings(
        {
            **BASE,
            "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0",
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us",
        }
    )
    reader = GraphReader(settings)
    provider = reader._adapter._authentication_provider  # the SDK's Azure identity provider
    token_provider = provider.access_token_provider
    assert token_provider._scopes == ["https://graph.microsoft.us/.default"]
    assert token_provider.get_allowed_hosts_validator().get_allowed_hosts() == ["graph.microsoft.us"]
    await reader.close()
