"""HTTP mechanics of the API: problem responses, ETags and 304s, CORS from a setting, CSV.

- Every GET answered 200 under `/api/v1/` and `/api/openapi.json` gets a strong `ETag` (the
  SHA-256 of its body) and `Cache-Control: private, max-age=30`; a request whose
  `If-None-Match` names that ETag (or `*`) gets 304 with no body. Errors get `no-store`.
- CORS headers only for the origins in `CORS_ALLOWED_ORIGINS` (read per request, so a changed
  setting needs no restart); none when it is empty.
- The settings are read once per request (`request_settings`): whoever asks first, this
  middleware or a route's dependency, loads them, and the rest of the request reuses them (or
  the SettingsError, which the route answers as a 503, naming the setting in the log only).
- CSV is the JSON page's `value` flattened, one run per row, with a header row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.domain.model import EXECUTION_COUNTS
from shared.settings import Settings, SettingsError, load_settings

PROBLEM_JSON = "application/problem+json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CACHE_CONTROL = "private, max-age=30"
CONDITIONAL_PATHS = ("/api/v1/", "/api/openapi.json", "/api/docs")
# The query parameter the Functions host takes the function key from, in any case (as it reads it).
FUNCTION_KEY_PARAMETER = "code"
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "if-none-match", "x-functions-key")
CORS_EXPOSE_HEADERS = ("etag", "link", "retry-after")

EXECUTION_COLUMNS = (
    "activityIdentifier",
    "state",
    "timeBegan",
    "timeEnded",
    "durationSeconds",
    *EXECUTION_COUNTS,
    "exportSuccessRatio",
    "escrowDelta",
)
JOB_COLUMNS = ("servicePrincipalId", "servicePrincipalName", "jobId")
ERROR_COLUMNS = ("errorCode", "errorMessage", "errorTenantActionable")
# What a spreadsheet may read a cell as a formula by: these characters first, in any Unicode
# form NFKC folds to them (full-width ＝＋－＠, small ﹦﹢﹣), and the minus sign.
_FORMULA_START = frozenset("=+-@\u2212")

_SETTINGS = "entra_sync_monitor.settings"  # the request's settings, in the scope's state


def request_settings(scope: Scope) -> Settings:
    """The settings for this request, loaded on the first call and reused by the later ones of
    the same request (the scope's `state`, which Starlette's `request.state` reads too); a bad
    setting raises the same SettingsError to every caller."""
    state = scope.setdefault("state", {})
    loaded = state.get(_SETTINGS)
    if loaded is None:
        try:
            loaded = load_settings()
        except SettingsError as error:
            loaded = error
        state[_SETTINGS] = loaded
    if isinstance(loaded, SettingsError):
        raise loaded
    return loaded


PROBLEM_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem response (`extensions`: members of its own, e.g. Graph's answer)."""
    body = {"type": "about:blank", "title": PROBLEM_TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update(extensions or {})
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match uses."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(","))


class ConditionalGetMiddleware:
    """ETag, Cache-Control and 304 for GETs (bodies are bounded pages, so buffering is fine)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        conditional = path.startswith(CONDITIONAL_PATHS)
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._finish(scope, start, b"".join(chunks), send, conditional)

        await self.app(scope, receive, buffered)

    @staticmethod
    async def _finish(scope: Scope, start: Message, body: bytes, send: Send, conditional: bool) -> None:
        headers = MutableHeaders(scope=start)
        status: int = start["status"]
        if status >= 400:
            headers.setdefault("cache-control", "no-store")
        elif status == 200 and conditional:
            etag = headers.setdefault("etag", etag_of(body))
            headers.setdefault("cache-control", CACHE_CONTROL)
            headers.add_vary_header("Accept")
            if_none_match = Headers(scope=scope).get("if-none-match")
            if if_none_match is not None and etag_matches(if_none_match, etag):
                kept = [
                    (name, value)
                    for name, value in start["headers"]
                    if name.lower() not in (b"content-length", b"content-type")
                ]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
        await send(start)
        await send({"type": "http.response.body", "body": body})


class SettingsCorsMiddleware:
    """Starlette's CORSMiddleware for the origins CORS_ALLOWED_ORIGINS names right now."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handlers: dict[tuple[str, ...], ASGIApp] = {}

    def _handler(self, origins: tuple[str, ...]) -> ASGIApp:
        if origins not in self._handlers:
            self._handlers[origins] = CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST"],  # POST: muting alerts
                allow_headers=list(CORS_ALLOW_HEADERS),
                expose_headers=list(CORS_EXPOSE_HEADERS),
                max_age=600,
            )
        return self._handlers[origins]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origins: tuple[str, ...] = ()
        if scope["type"] == "http":
            try:
                origins = request_settings(scope).cors_allowed_origins
            except SettingsError:
                origins = ()  # the request itself answers 503 naming the setting
        await (self._handler(origins) if origins else self.app)(scope, receive, send)


def without_function_key(url: URL) -> URL:
    """`url` less the function key: a URL the API hands out (`nextLink`, CSV `Link`) never
    carries the caller's key on, whichever way the caller sent it."""
    kept = [
        (name, value)
        for name, value in parse_qsl(url.query, keep_blank_values=True)
        if name.lower() != FUNCTION_KEY_PARAMETER
    ]
    return url.replace(query=urlencode(kept))


def csv_page(body: str, filename: str, next_link: str | None) -> Response:
    """A CSV page: inline, with the next page in a `Link` header (as JSON pages' `nextLink`)."""
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    if next_link:
        headers["Link"] = f'<{next_link}>; rel="next"'
    return Response(body, media_type=CSV_MEDIA_TYPE, headers=headers)


def wants_csv(format_: str | None, accept: str | None) -> bool:
    """`format` decides; without it, an Accept that prefers text/csv over JSON."""
    if format_ is not None:
        return format_ == "csv"
    if not accept:
        return False
    csv_q = json_q = 0.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in ("text/csv", "text/*"):
            csv_q = max(csv_q, q)
        elif media in ("application/json", "application/*"):
            json_q = max(json_q, q)
    return csv_q > 0 and csv_q > json_q


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell a spreadsheet could read as a formula is text here: Graph's error messages come
    # from target systems, which are not to be trusted with a spreadsheet.
    if isinstance(value, str) and may_be_formula(text):
        return "'" + text
    return text


def may_be_formula(text: str) -> bool:
    """True when `text` starts with a formula character (=, +, -, @ or a Unicode form of one) or
    with whitespace or a control character (tab, CR, LF, ...), behind which a spreadsheet that
    trims the cell would find one. Numbers that are strings ("-3") are defused too: a CSV cell
    is text to us."""
    if not text:
        return False
    first = text[0]
    return first.isspace() or not first.isprintable() or unicodedata.normalize("NFKC", first)[:1] in _FORMULA_START


def executions_csv(rows: Iterable[Mapping[str, Any]], *, with_job: bool) -> str:
    columns = (JOB_COLUMNS if with_job else ()) + EXECUTION_COLUMNS + ERROR_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        error = row.get("error") or {}
        values = [row.get(column) for column in (JOB_COLUMNS if with_job else ()) + EXECUTION_COLUMNS]
        values += [error.get("code"), error.get("message"), error.get("tenantActionable")]
        writer.writerow([cell(value) for value in values])
    return buffer.getvalue()
