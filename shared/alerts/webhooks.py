"""Sending one notification to one webhook: signing, the POST, and its retries within a run.

Targets are secrets (their URLs carry tokens): only their kind (`teams`, `slack`, `webhook`)
is ever logged or stored; an attempt's error is a status code or an exception class name.
The generic webhook is signed: `X-Entra-Sync-Monitor-Signature: sha256=<HMAC-SHA256 of
"{timestamp}.{raw body}">`, and `verify_signature` is what a receiver does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from shared import __version__
from shared.alerts.payloads import render
from shared.alerts.records import Notification, TargetKind
from shared.alerts.settings import AlertSettings
from shared.domain.timestamps import retry_after_seconds

NOTIFICATION_ID_HEADER = "X-Entra-Sync-Monitor-Notification-Id"
SIGNATURE_HEADER = "X-Entra-Sync-Monitor-Signature"
TIMESTAMP_HEADER = "X-Entra-Sync-Monitor-Timestamp"
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 86_400  # a longer delay-seconds is not believed: back off instead


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)


def targets_of(settings: AlertSettings) -> list[Target]:
    targets: list[Target] = []
    if settings.teams_webhook_url:
        targets.append(Target("teams", settings.teams_webhook_url))
    if settings.slack_webhook_url:
        targets.append(Target("slack", settings.slack_webhook_url))
    if settings.webhook_url:
        targets.append(Target("webhook", settings.webhook_url, settings.webhook_secret))
    return targets


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `{timestamp}.{raw body}` under the shared secret."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None, tolerance: float = 300
) -> bool:
    """What a receiver does (docs/alerts.md): recompute, compare in constant time, refuse
    timestamps older or newer than `tolerance` seconds (a replayed request)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))


def request_headers(target: Target, notification_id: str, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"entra-sync-monitor/{__version__}",
        NOTIFICATION_ID_HEADER: notification_id,
    }
    if target.secret:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(target.secret, timestamp, body)
    return headers


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 4  # per notification and target in one run
    base_delay: float = 1.0  # seconds, doubled each attempt, with jitter
    max_delay: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After is waited out between runs instead
    timeout: float = 10.0  # per request
    budget_seconds: float = 120.0  # a run stops sending after this (the rest waits for the next)
    max_age: timedelta = timedelta(hours=24)
    retry_later_base: float = 60.0  # seconds before a later run retries; doubled per failed run

    def backoff(self, attempt: int) -> float:
        """Exponential with equal jitter: half fixed, half random."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int = 0
    error: str = ""  # never the URL: a status or an exception class
    retryable: bool = True
    retry_after: float | None = None


async def post_once(
    session: aiohttp.ClientSession, target: Target, notification_id: str, body: bytes, policy: DeliveryPolicy
) -> Attempt:
    headers = request_headers(target, notification_id, body)
    try:
        async with session.post(
            target.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout),
        ) as response:
            text = (await response.content.read(2048)).decode("utf-8", "replace")
            status = response.status
            retry_after = _believed_retry_after(response.headers.get("Retry-After"))
    except TimeoutError:
        return Attempt(False, error="timed out")
    except aiohttp.ClientConnectionError as error:
        return Attempt(False, error=f"connection failed ({type(error).__name__})")
    except aiohttp.ClientError as error:
        return Attempt(False, error=type(error).__name__)
    if 200 <= status < 300:
        # Teams' older connectors answer 200 with an error text when they could not post.
        if target.kind == "teams" and "failed with error" in text.lower():
            return Attempt(False, status, f"HTTP {status}: Teams could not post the message")
        return Attempt(True, status)
    retryable = status in _RETRYABLE_STATUS
    return Attempt(False, status, f"HTTP {status}", retryable, retry_after)


Sleep = Callable[[float], Awaitable[None]]


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    notification: Notification,
    policy: DeliveryPolicy,
    *,
    deadline: float,
    sleep: Sleep = asyncio.sleep,
) -> tuple[Attempt, int]:
    """POST one notification to one target with bounded retries; (last attempt, attempts)."""
    body = render(target.kind, notification)
    attempt = Attempt(False, error="not attempted")
    for number in range(1, policy.attempts + 1):
        attempt = await post_once(session, target, notification["notificationId"], body, policy)
        if attempt.ok or not attempt.retryable or number == policy.attempts:
            return attempt, number
        delay = attempt.retry_after if attempt.retry_after is not None else policy.backoff(number)
        if delay > policy.max_retry_after or time.monotonic() + delay > deadline:
            return attempt, number  # waited out between runs (nextAttemptAt)
        await sleep(delay)
    return attempt, policy.attempts


def _believed_retry_after(value: str | None) -> float | None:
    seconds = retry_after_seconds(value, now=datetime.now(UTC))
    return seconds if seconds is not None and 0 <= seconds < _MAX_RETRY_AFTER_SECONDS else None
