"""How the Graph SDK gets its token: the credential for `GRAPH_AUTH` (credentials.py), wrapped
so that a failure to get a token says so (GraphTokenError) without leaking a secret, and
asked only for Graph's own host and scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider

from shared.graph.errors import GraphTokenError
from shared.settings import Settings

if TYPE_CHECKING:
    from types import TracebackType

    from azure.core.credentials import AccessToken
    from azure.core.credentials_async import AsyncTokenCredential


class _ExplainedCredential:
    """The credential, with any failure to get a token turned into GraphTokenError: kiota lets
    the credential's own exception through, which does not say that Graph was never asked."""

    def __init__(self, credential: AsyncTokenCredential, secrets: Sequence[str | None]) -> None:
        self._credential = credential
        self._secrets = [secret for secret in secrets if secret]

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return await self._credential.get_token(*scopes, **kwargs)
        except Exception as error:  # ClientAuthenticationError, CredentialUnavailableError, network
            detail = (str(error).strip().splitlines() or [""])[0][:300]
            for secret in self._secrets:
                detail = detail.replace(secret, "***")
            message = f"could not get a token for Microsoft Graph ({', '.join(scopes)}): {type(error).__name__}"
            raise GraphTokenError(f"{message}: {detail}" if detail else message) from error

    async def close(self) -> None:
        await self._credential.close()

    async def __aenter__(self) -> _ExplainedCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def auth_provider(settings: Settings, credential: AsyncTokenCredential | None) -> AuthenticationProvider:
    if credential is None:  # GRAPH_AUTH=none, allowed for loopback emulators only
        return AnonymousAuthenticationProvider()
    secrets = (settings.client_secret, settings.client_certificate_password)
    # allowed_hosts holds the bare host name: kiota compares it with the request URL's hostname.
    return AzureIdentityAuthenticationProvider(
        _ExplainedCredential(credential, secrets), scopes=[settings.graph_scope], allowed_hosts=[settings.graph_host]
    )
