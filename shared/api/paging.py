"""Continuation tokens: opaque to clients, signed, and bound to the query they continue.

A token is `base64url(payload).base64url(mac)`. The payload holds only where the next page
starts (a RowKey, a day, a sort key); the MAC is HMAC-SHA256, truncated to 128 bits, over the
endpoint, the query's filters and the payload, under the deployment's own random key
(`Store.api_signing_key`). So a token a client edited, cut short, or took from another job,
filter or endpoint fails the check and is answered 400 instead of paging something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

_VERSION = 2
_MAC_BYTES = 16
_DOMAIN = b"entra-sync-monitor/continuation"
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ContinuationError(ValueError):
    """The token was not issued by this deployment for this query."""

    def __init__(self) -> None:
        super().__init__(
            "continuation is not a token this API issued for this query (changed, cut short, or taken "
            "from another query): start again without it"
        )


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise ContinuationError
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ContinuationError from None


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(key: bytes, endpoint: str, query: Mapping[str, object], payload: str) -> bytes:
    message = b"\n".join((_DOMAIN, endpoint.encode(), _canonical(query), payload.encode()))
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(key: bytes, endpoint: str, query: Mapping[str, object], position: object) -> str:
    """A token for the page of `endpoint` + `query` that starts at `position` (JSON-able)."""
    payload = _encode(_canonical({"v": _VERSION, "p": position}))
    return f"{payload}.{_encode(_mac(key, endpoint, query, payload))}"


def redeem(key: bytes, endpoint: str, query: Mapping[str, object], token: str) -> object:
    """The position a token holds; ContinuationError unless this deployment issued it for
    exactly this endpoint and query."""
    payload, dot, mac = token.partition(".")
    if not dot:
        raise ContinuationError
    given = _decode(mac)
    if not hmac.compare_digest(given, _mac(key, endpoint, query, payload)):
        raise ContinuationError
    try:
        data = json.loads(_decode(payload))
    except ValueError:
        raise ContinuationError from None
    if not isinstance(data, dict) or data.get("v") != _VERSION or "p" not in data:
        raise ContinuationError
    return data["p"]
