"""Each GRAPH_AUTH mode gets its azure-identity credential, scoped to the Graph host in use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from devtools.graph_emulator import EmulatorServer
from shared.graph.credentials import build_credential
from shared.settings import load_settings

TENANT = "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9"
CLIENT = "11111111-2222-3333-4444-555555555555"
BASE = {"AZURE_TENANT_ID": TENANT, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
SECRET = "t0ken-test-Secret~0123456789"


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
    from shared.graph.reader import GraphReader

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


# ------------------------------------------------------------ tokens whatever the port


class FakeCredential:
    """An AsyncTokenCredential that hands out a known token (or fails), noting the scopes asked."""

    def __init__(self, token: str = "test-token-42", error: Exception | None = None) -> None:
        self.token, self.error = token, error
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("base_url", "host", "scope"),
    [
        ("https://graph.microsoft.com:443/v1.0", "graph.microsoft.com", "https://graph.microsoft.com/.default"),
        (
            "https://Graph-Proxy.contoso.com:8443/v1.0",
            "graph-proxy.contoso.com",
            "https://graph-proxy.contoso.com/.default",
        ),
        ("http://[::1]:8080/v1.0", "::1", "http://[::1]/.default"),
    ],
)
async def test_a_base_url_with_a_port_still_gets_a_token_and_a_port_free_scope(
    base_url: str, host: str, scope: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation

    from shared.graph import reader as graph

    credential = FakeCredential()
    monkeypatch.setattr(graph, "build_credential", lambda settings: credential)
    settings = load_settings({**BASE, "GRAPH_BASE_URL": base_url})
    assert (settings.graph_host, settings.graph_scope) == (host, scope)
    reader = graph.GraphReader(settings)
    request = RequestInformation(Method.POST)
    request.url = f"{base_url}/$batch"
    await reader._adapter._authentication_provider.authenticate_request(request)  # kiota's own provider
    assert request.headers.get("authorization") == {"Bearer test-token-42"}
    assert credential.scopes == [(scope,)]
    await reader.close()


@pytest.fixture
def with_credential(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """GRAPH_AUTH=client_secret against the emulator on its loopback port."""
    monkeypatch.setenv("GRAPH_AUTH", "client_secret")
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    yield


@pytest.mark.usefixtures("with_credential")
async def test_every_graph_request_carries_the_token_when_the_base_url_names_a_port(
    demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.graph import reader as graph
    from shared.poll import poll_tenant

    credential = FakeCredential()
    monkeypatch.setattr(graph, "build_credential", lambda settings: credential)
    settings = load_settings()
    assert urlsplit(settings.graph_base_url).port  # e.g. http://127.0.0.1:41234/v1.0
    record = await poll_tenant(settings, trigger="test")  # a discovery: list, then $batch
    assert record["status"] == "succeeded" and record["jobsRead"] > 0
    stats = demo_emulator.stats()
    assert stats["requests"] >= 2 and stats["batchRequests"] >= 1
    assert stats["authorizationValues"] == {"Bearer test-token-42": stats["requests"]}
    assert {scopes for scopes in credential.scopes} == {("http://127.0.0.1/.default",)}


@pytest.mark.usefixtures("with_credential")
@pytest.mark.parametrize(
    "error",
    [
        ClientAuthenticationError(f"AADSTS7000215: Invalid client secret provided: {SECRET}"),
        CredentialUnavailableError("ManagedIdentityCredential authentication unavailable, no response from IMDS"),
    ],
    ids=["refused", "unavailable"],
)
async def test_no_token_fails_the_poll_saying_so(
    demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    from shared.graph import reader as graph
    from shared.poll import PollFailedError, poll_tenant

    monkeypatch.setattr(graph, "build_credential", lambda settings: FakeCredential(error=error))
    with pytest.raises(PollFailedError, match=r"^could not get a token for Microsoft Graph") as failed:
        await poll_tenant(load_settings(), trigger="test")
    record = failed.value.record
    assert record["status"] == "failed" and record["errorsByKind"] == {"graphToken": 1}
    assert type(error).__name__ in record["errors"][0]["message"]
    assert SECRET not in str(record) and SECRET not in str(failed.value)
    assert demo_emulator.stats()["requests"] == 0  # nothing went out without a token


@pytest.mark.usefixtures("with_credential")
async def test_a_token_endpoint_that_cannot_be_reached_fails_the_poll_saying_so(
    demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.azurite import free_port
    from shared.poll import PollFailedError, poll_tenant

    # The real ClientSecretCredential, its authority a loopback port nobody listens on.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", f"https://127.0.0.1:{free_port()}")
    with pytest.raises(PollFailedError, match=r"^could not get a token for Microsoft Graph") as failed:
        await poll_tenant(load_settings(), trigger="test")
    assert failed.value.record["errorsByKind"] == {"graphToken": 1}
    assert SECRET not in str(failed.value.record)
    assert demo_emulator.stats()["requests"] == 0
