"""Who may call /api/v1 when App Service Authentication is on.

The Functions host already demands a function key for every call. When App Service
Authentication (Easy Auth) is on, the platform sets `WEBSITE_AUTH_ENABLED=true`, signs the
caller in, strips any client-sent `X-MS-CLIENT-PRINCIPAL` and passes its own: base64 JSON
with the caller's `claims` (`[{"typ", "val"}]`). Only then is the header trusted; with
authentication off it is ignored, whatever it says, because anyone could have sent it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

PRINCIPAL_HEADER = "x-ms-client-principal"
ROLE_CLAIM_TYPES = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_MAX_HEADER = 64 * 1024


@dataclass(frozen=True)
class Principal:
    auth_type: str | None
    roles: frozenset[str]


class AccessDenied(Exception):
    """401 (no usable principal) or 403 (signed in, but without the required role)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def read_principal(header: str) -> Principal | None:
    """The principal in an X-MS-CLIENT-PRINCIPAL value; None when it cannot be read."""
    if len(header) > _MAX_HEADER:
        return None
    text = header.strip()
    try:
        altchars = b"-_" if ("-" in text or "_" in text) else None
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        return None
    role_types = set(ROLE_CLAIM_TYPES)
    if isinstance(data.get("role_typ"), str):
        role_types.add(data["role_typ"])
    roles = frozenset(
        claim["val"]
        for claim in data["claims"]
        if isinstance(claim, dict) and claim.get("typ") in role_types and isinstance(claim.get("val"), str)
    )
    auth_type = data.get("auth_typ")
    return Principal(auth_type if isinstance(auth_type, str) else None, roles)


def authorize(*, auth_enabled: bool, required_role: str | None, header: str | None) -> Principal | None:
    """The caller's principal, or AccessDenied; None (anyone with the key) when auth is off."""
    if not auth_enabled:
        return None
    if not header:
        raise AccessDenied(
            401,
            "App Service Authentication is on and the request carries no signed-in caller: sign in "
            "(or send an Entra access token for this app) and call again",
        )
    principal = read_principal(header)
    if principal is None:
        raise AccessDenied(401, "the X-MS-CLIENT-PRINCIPAL header from App Service Authentication could not be read")
    if required_role and required_role not in principal.roles:
        raise AccessDenied(
            403,
            f"the caller does not hold the app role {required_role!r} that API_REQUIRED_ROLE requires: "
            "have an administrator assign it to you (or your app) on this app's enterprise application",
        )
    return principal
