"""Who may call /api/v1, and who did each write.

The Functions host already demands a function key for every call. Sign-in (App Service
Authentication, "Easy Auth") is on when the platform says so (`WEBSITE_AUTH_ENABLED=true`, which
App Service injects) or the deployment does (`API_SIGN_IN_ENABLED=true`, which infra/ sets with
the authsettingsV2 resource it deploys: Flex Consumption is not documented to inject the
platform variable, so the app does not depend on it). With sign-in on, the platform signs the
caller in, strips any client-sent `X-MS-CLIENT-PRINCIPAL` and passes its own: base64 JSON with
the caller's `claims` (`[{"typ", "val"}]`). Only then is the header trusted; with sign-in off it
is ignored, whatever it says, because anyone could have sent it.

- Reading needs `API_REQUIRED_ROLE` when it is set; writing (mutes, job actions) needs
  `API_WRITE_ROLE`, and is off while that is not set.
- Without sign-in, reading needs only the key, and writing is off unless `API_KEY_ONLY_WRITES`
  is true. A role that is set while sign-in is off fails closed: every call gets a 503 naming
  the settings, never a silent pass.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from shared.domain.model import Actor

PRINCIPAL_HEADER = "x-ms-client-principal"
ROLE_CLAIM_TYPES = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_MAX_HEADER = 64 * 1024


NAME_CLAIM_TYPES = ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "preferred_username")
OBJECT_ID_CLAIM_TYPES = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
FUNCTION_KEY = "function key"


@dataclass(frozen=True)
class Principal:
    auth_type: str | None
    roles: frozenset[str]
    name: str | None = None
    object_id: str | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """The settings the check reads (shared.settings.Settings holds them)."""

    sign_in: bool
    read_role: str | None = None
    write_role: str | None = None
    key_only_writes: bool = False


@dataclass(frozen=True)
class Caller:
    """Who made a call: a signed-in principal, or whoever holds the function key."""

    principal: Principal | None = None

    def audit(self) -> Actor:
        """Who, as the audit trail keeps it (the job's timeline and the audit log line)."""
        if self.principal is None:
            return {"name": FUNCTION_KEY, "objectId": None, "via": "functionKey"}
        return {"name": self.principal.name, "objectId": self.principal.object_id, "via": "signIn"}


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
    values = {claim["typ"]: claim["val"] for claim in data["claims"] if _is_claim(claim)}
    name_types = (data["name_typ"], *NAME_CLAIM_TYPES) if isinstance(data.get("name_typ"), str) else NAME_CLAIM_TYPES
    auth_type = data.get("auth_typ")
    return Principal(
        auth_type if isinstance(auth_type, str) else None,
        roles,
        name=next((values[t] for t in name_types if values.get(t)), None),
        object_id=next((values[t] for t in OBJECT_ID_CLAIM_TYPES if values.get(t)), None),
    )


def _is_claim(claim: object) -> bool:
    return isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str)


def authorize(policy: AccessPolicy, header: str | None, *, write: bool = False) -> Caller:
    """The caller, or AccessDenied (401, 403, or 503 when the settings cannot be honoured)."""
    if not policy.sign_in:
        roles = [
            name
            for name, role in (("API_REQUIRED_ROLE", policy.read_role), ("API_WRITE_ROLE", policy.write_role))
            if role
        ]
        if roles:
            raise AccessDenied(
                503,
                f"{' and '.join(roles)} {'is' if len(roles) == 1 else 'are'} set but sign-in is off, so no caller's "
                "roles can be known and every call is refused: turn App Service Authentication on (with "
                "API_SIGN_IN_ENABLED=true where the platform does not set WEBSITE_AUTH_ENABLED), "
                "or empty the role settings",
            )
        if write and not policy.key_only_writes:
            raise AccessDenied(
                403,
                "writes are off: sign-in (App Service Authentication) is not on, and API_KEY_ONLY_WRITES is not true "
                "(set it to let anyone with the function key write)",
            )
        return Caller()
    if not header:
        raise AccessDenied(
            401,
            "App Service Authentication is on and the request carries no signed-in caller: sign in "
            "(or send an Entra access token for this app) and call again",
        )
    principal = read_principal(header)
    if principal is None:
        raise AccessDenied(401, "the X-MS-CLIENT-PRINCIPAL header from App Service Authentication could not be read")
    if policy.read_role and policy.read_role not in principal.roles:
        raise AccessDenied(
            403,
            f"the caller does not hold the app role {policy.read_role!r} that API_REQUIRED_ROLE requires: "
            "have an administrator assign it to you (or your app) on this app's enterprise application",
        )
    if write and not policy.write_role:
        raise AccessDenied(403, "writes are off: API_WRITE_ROLE names no app role, so no caller may write")
    if write and policy.write_role not in principal.roles:
        raise AccessDenied(
            403,
            f"the caller does not hold the app role {policy.write_role!r} that API_WRITE_ROLE requires to write: "
            "have an administrator assign it to you (or your app) on this app's enterprise application",
        )
    return Caller(principal)
