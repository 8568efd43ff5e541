"""What every API route asks for, as FastAPI dependencies: the settings (read once per
request), the store, the caller check, the current minute, and the pages of a list.

FastAPI solves each dependency once per request, so `SettingsDep`, `StoreDep` and the caller
check share one reading of the settings, the same one the CORS middleware made
(`http.request_settings`). A bad setting answers 503 on every route but `/api/health`
(which says `misconfigured` instead); the setting is named in the log only, since nobody
has been authorized yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, TypeGuard, TypeVar

from fastapi import Depends, HTTPException, Request

from shared.api.auth import PRINCIPAL_HEADER, AccessDenied, AccessPolicy, Caller, authorize
from shared.api.http import request_settings, without_function_key
from shared.api.paging import ContinuationError, issue, redeem
from shared.settings import Settings, SettingsError
from shared.storage.store import Store, open_store

API_PREFIX = "/api/v1"
log = logging.getLogger("entra_sync_monitor.api")
Position = TypeVar("Position")


async def get_settings(request: Request) -> Settings:
    try:
        return request_settings(request.scope)
    except SettingsError as error:
        # Answered before anyone is authorized (the check itself needs the settings): no details
        # for the caller, whoever it is; the log names the setting.
        log.error("the app is misconfigured: %s", error)
        raise HTTPException(503, "The app is misconfigured: its log names the setting to fix") from None


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_store(settings: SettingsDep) -> Store:
    return open_store(settings)


StoreDep = Annotated[Store, Depends(get_store)]


def _check(request: Request, settings: Settings, *, write: bool) -> Caller:
    policy = AccessPolicy(
        sign_in=settings.auth_enabled,
        read_role=settings.api_required_role,
        write_role=settings.api_write_role,
        key_only_writes=settings.api_key_only_writes,
    )
    try:
        return authorize(policy, request.headers.get(PRINCIPAL_HEADER), write=write)
    except AccessDenied as denied:
        headers = {"WWW-Authenticate": 'Bearer realm="App Service Authentication"'} if denied.status == 401 else None
        raise HTTPException(denied.status, denied.detail, headers=headers) from None


async def require_caller(request: Request, settings: SettingsDep) -> Caller:
    """The read check of /api/v1 (docs/api.md, "Who may call it")."""
    return _check(request, settings, write=False)


async def require_writer(request: Request, settings: SettingsDep) -> Caller:
    """The write check (mutes, job actions): the read check, then the write role."""
    return _check(request, settings, write=True)


WriterDep = Annotated[Caller, Depends(require_writer)]


def minute(now: datetime | None = None) -> datetime:
    """Now to the minute: answers (and so their ETags) hold still within a minute."""
    return (now or datetime.now(UTC)).replace(second=0, microsecond=0)


async def this_minute() -> datetime:
    return minute()  # looked up when called, so a test can hold the minute still


Minute = Annotated[datetime, Depends(this_minute)]


class Pages:
    """Continuation of one list endpoint (docs/api.md, "Paging"): where a page starts, from a
    token this deployment signed for this endpoint and query, and the link to the next one."""

    def __init__(self, request: Request, store: StoreDep) -> None:
        self.request = request
        self.store = store

    async def resume(
        self,
        endpoint: str,
        query: Mapping[str, object],
        continuation: str | None,
        valid: Callable[[object], TypeGuard[Position]],
    ) -> Position | None:
        """The position the token carries (None without one); a forged, moved or malformed
        token is a 400."""
        if continuation is None:
            return None
        position = redeem(await self.store.api_signing_key(), endpoint, query, continuation)
        if not valid(position):
            raise ContinuationError
        return position

    async def next_link(
        self, endpoint: str, query: Mapping[str, object], position: object, **pinned: object
    ) -> str | None:
        """This URL, less the function key (`?code=`), with a signed token for the page at
        `position` (and `pinned` parameters); None when there is no next page (no position)."""
        if position is None:
            return None
        token = issue(await self.store.api_signing_key(), endpoint, query, position)
        return str(without_function_key(self.request.url).include_query_params(**pinned, continuation=token))


PagesDep = Annotated[Pages, Depends()]
