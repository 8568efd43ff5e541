"""The monitor's own health: is polling keeping up?

Served at `/api/health`, by the API and by an anonymous function (so platform health checks
need no key); the answer says nothing about the tenant: no ids, names or job counts, only
when the last successful poll ended, how old that may be, and the last poll's status and
error counts. 200 while a successful (or partial) poll ended within the allowed age, 503
otherwise; 503 `blind` too when the last poll was refused every read (HTTP 403 on every
service principal's jobs, or on the service principals themselves): such a poll "succeeds"
while seeing nothing, and `reason` names the Graph permission to grant.

The allowed age is `HEALTH_MAX_AGE_SECONDS`, or else two intervals of `POLL_SCHEDULE` plus
`POLL_DEADLINE_SECONDS`: one missed or failed poll is tolerated, two are not. The interval
is the longest gap between two firings of the schedule (`shared.domain.schedule`: NCRONTAB or
`hh:mm:ss`); an expression it cannot read counts as hourly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared import __version__
from shared.domain.poll_record import PollSummary, blind_reason
from shared.domain.schedule import schedule_interval_seconds
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.settings import Settings, SettingsError, load_settings
from shared.storage.store import open_store

log = logging.getLogger("entra_sync_monitor.api")

FALLBACK_INTERVAL_SECONDS = 3600.0


def max_poll_age_seconds(settings: Settings) -> float:
    if settings.health_max_age_seconds is not None:
        return float(settings.health_max_age_seconds)
    try:
        interval = schedule_interval_seconds(settings.poll_schedule)
    except ValueError:
        interval = FALLBACK_INTERVAL_SECONDS
    return 2 * interval + settings.poll_deadline_seconds


def _ended(record: Mapping[str, Any]) -> datetime | None:
    return parse_timestamp(record.get("endedAt")) or parse_timestamp(record.get("startedAt"))


async def _last_polls(settings: Settings) -> tuple[PollSummary | None, dict[str, Any] | None, bool]:
    """The last poll and the last successful one; with several tenants, the newest of each
    over the enabled tenants (the monitor runs while any tenant is polled), the last poll a
    failed or partial one when any tenant's is, and blind only when every tenant is."""
    from shared.tenants import only_home, watched_tenants

    tenants = await watched_tenants(settings)
    if only_home(settings, tenants) or not tenants:
        store = open_store(settings)
        last, last_ok = await asyncio.gather(store.last_poll(), store.last_successful_poll())
        return last, last_ok, True
    stores = [open_store(settings.for_tenant(tenant)) for tenant in tenants]
    lasts = [poll for poll in await asyncio.gather(*(store.last_poll() for store in stores)) if poll is not None]
    oks = [poll for poll in await asyncio.gather(*(store.last_successful_poll() for store in stores)) if poll]
    troubled = [poll for poll in lasts if poll.get("status") != "succeeded"]
    newest = max(troubled or lasts, key=lambda poll: str(poll.get("startedAt")), default=None)
    last_ok = max(oks, key=lambda poll: str(poll.get("endedAt")), default=None)
    every_blind = len(lasts) == len(tenants) and all(blind_reason(poll) for poll in lasts)
    return newest, last_ok, every_blind


async def monitor_health(
    now: datetime | None = None, *, settings: Callable[[], Settings] = load_settings
) -> tuple[int, dict[str, object]]:
    """(HTTP status, body) of the health check; never raises. `settings` reads them (the API
    passes the request's, read once per request)."""
    now = now or datetime.now(UTC)
    body: dict[str, object] = {
        "status": "healthy",
        "checkedAt": isoformat_utc(now),
        "maxAgeSeconds": None,
        "lastSuccessfulPollAt": None,
        "lastSuccessfulPollAgeSeconds": None,
        "lastPoll": None,
        "version": __version__,
    }
    try:
        loaded = settings()
    except SettingsError:
        return 503, {**body, "status": "misconfigured"}  # the message may hold a setting's value: not shown
    max_age = max_poll_age_seconds(loaded)
    body["maxAgeSeconds"] = max_age
    try:
        last, last_ok, every_blind = await _last_polls(loaded)
    except Exception:  # any failure to read is the answer: storage is not usable
        log.exception("health check could not read the Polls table")
        return 503, {**body, "status": "storageUnavailable"}
    if last is not None:
        body["lastPoll"] = {
            "status": str(last.get("status")),
            "startedAt": str(last.get("startedAt")),
            "endedAt": last.get("endedAt"),
            "errorCount": int(last.get("errorCount") or 0),
            "errorsByKind": {str(k): int(v) for k, v in (last.get("errorsByKind") or {}).items()},
            "workItemsPoisoned": int((last.get("work") or {}).get("itemsPoisoned") or 0),
            "provisioningLogs": (last.get("provisioningLogs") or {}).get("status"),
        }
        # Blind is failing, not degraded: a monitor that can read nothing reports no trouble.
        if every_blind and (reason := blind_reason(last)) is not None:
            return 503, {**body, "status": "blind", "reason": reason}
    ended = _ended(last_ok) if last_ok is not None else None
    if ended is None:
        return 503, {**body, "status": "neverPolled" if last is None else "stale"}
    age = max(0.0, (now - ended).total_seconds())
    body["lastSuccessfulPollAt"] = isoformat_utc(ended)
    body["lastSuccessfulPollAgeSeconds"] = round(age, 1)
    if age > max_age:
        return 503, {**body, "status": "stale"}
    if last is not None and last.get("status") != "succeeded":
        return 200, {**body, "status": "degraded"}
    return 200, body
