"""The Graph credential for each GRAPH_AUTH mode (async azure-identity credentials).

Managed identity is the default: no secret exists anywhere. `workload_identity` signs in as an
app registration whose federated credential is the Function app's managed identity, so a
multi-tenant or separately governed app registration needs no secret either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

# The audience Entra expects for a managed identity token used as a federated assertion, per
# cloud ("Configure an application to trust a managed identity", learn.microsoft.com): the
# deployment's own, as a federated credential cannot cross clouds.
_TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 (a scope, not a secret)
_TOKEN_EXCHANGE_SCOPES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov/.default",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina/.default",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina/.default",
}


def token_exchange_scope(authority_host: str | None) -> str:
    host = (urlsplit(authority_host).hostname or authority_host if authority_host else "") or ""
    return _TOKEN_EXCHANGE_SCOPES.get(host.lower(), _TOKEN_EXCHANGE_SCOPE)


def build_credential(settings: Settings) -> AsyncTokenCredential | None:
    """None for GRAPH_AUTH=none (loopback emulators only, enforced by the settings)."""
    from azure.identity import (
        ManagedIdentityCredential as SyncManagedIdentityCredential,
    )
    from azure.identity.aio import (
        CertificateCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
    )

    authority = {"authority": settings.authority_host} if settings.authority_host else {}
    mode = settings.graph_auth
    if mode == "none":
        return None
    if mode == "managed_identity":
        return ManagedIdentityCredential(client_id=settings.client_id)
    if mode == "default":
        return DefaultAzureCredential(**authority)
    assert settings.client_id is not None  # load_settings requires it for the modes below
    if mode == "client_secret":
        assert settings.client_secret is not None
        return ClientSecretCredential(settings.tenant_id, settings.client_id, settings.client_secret, **authority)
    if mode == "certificate":
        assert settings.client_certificate_path is not None
        password = settings.client_certificate_password
        return CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            certificate_path=settings.client_certificate_path,
            password=password.encode() if password else None,
            **authority,
        )
    if mode == "workload_identity":
        identity = SyncManagedIdentityCredential(client_id=settings.managed_identity_client_id)

        scope = token_exchange_scope(settings.authority_host)

        def managed_identity_assertion() -> str:
            return identity.get_token(scope).token

        return ClientAssertionCredential(
            settings.tenant_id, settings.client_id, managed_identity_assertion, **authority
        )
    raise ValueError(f"unknown GRAPH_AUTH {mode!r}")
