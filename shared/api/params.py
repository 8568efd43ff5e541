"""What the API's routes declare and read from a request: their path and query parameters,
the problems they document, and the times and states those parameters carry.

Times (`from`, `to`) are RFC 3339 date-times or dates (midnight UTC) and read to aware UTC
datetimes; `instant_text` writes them back canonically, so continuation tokens bind to the
instant, not to its spelling. States keep Graph's spelling for the ones it documents.
docs/api.md ("Times", "Paging") is the reader's guide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Path, Query
from pydantic import Field

from shared.api.models import Problem

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# synchronizationTaskExecution.state as Graph documents it, and the sentinel Graph answers in
# place of a member added after the client's contract (evolvable enums).
RUN_STATES = ("Succeeded", "Failed", "EntryLevelErrors", "unknownFutureValue")
KNOWN_STATES = {state.lower(): state for state in RUN_STATES}
_INSTANT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2}))?$")
_PROBLEM_TEXT = {
    400: "A parameter is malformed; `detail` names it",
    401: "App Service Authentication is on and there is no signed-in caller",
    403: "The caller lacks the app role API_REQUIRED_ROLE names",
    404: "No such job, or no such tenant (one the caller may not see is not found either)",
    409: "A request with this requestId is being handled, or the id was used for another action",
    429: "This job had an action less than a minute ago; Retry-After says when to try again",
    502: "Graph failed or did not answer; the same request (same requestId) may be sent again",
    503: "The app is misconfigured or its storage is unreachable; `detail` says which",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (FastAPI's `responses`)."""
    return {status: {"model": Problem, "description": _PROBLEM_TEXT[status]} for status in statuses}


ServicePrincipalId = Annotated[str, Path(min_length=1, max_length=100, description="Service principal object ID")]
JobId = Annotated[str, Path(min_length=1, max_length=400, description="synchronizationJob id")]
Top = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page (1-1000)")]
Continuation = Annotated[
    str | None,
    Query(max_length=4096, description="Opaque; only ever from a previous page's nextLink"),
]
Since = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=128,
        description="Runs that began at or after this instant: RFC 3339 (2026-11-25T08:00:00Z) or a date "
        "(2026-11-25: its midnight UTC)",
        json_schema_extra={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]},
    ),
]
Until = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=128,
        description="Runs that began before this instant (exclusive), as `from`",
        json_schema_extra={"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]},
    ),
]
States = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
    Query(
        max_length=10,
        description="Only runs in these states (repeat to allow several), in any case: " + ", ".join(RUN_STATES),
    ),
]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="csv: the page as CSV (as does `Accept: text/csv`); default json"),
]


def parse_instant(name: str, value: str) -> datetime:
    """An RFC 3339 date-time or a date (midnight UTC) as an aware UTC datetime; 400 otherwise."""
    match = _INSTANT.match(value)
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        micro = int((fraction or "0").ljust(6, "0")[:6])
        local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    except ValueError:
        raise HTTPException(
            400,
            f"{name} must be an RFC 3339 date-time such as 2026-11-25T08:00:00Z, or a date such as 2026-11-25 "
            f"(midnight UTC); got {value[:64]!r}",
        ) from None
    instant = local.replace(tzinfo=UTC)
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        try:
            instant -= sign * shift
        except OverflowError:  # beyond year 1 or 9999: as far as the calendar goes
            instant = datetime.min.replace(tzinfo=UTC) if sign > 0 else datetime.max.replace(tzinfo=UTC)
    return instant


def instant_text(instant: datetime) -> str:
    """Canonical UTC text: the same instant always reads the same (tokens bind to it)."""
    fraction = f".{instant.microsecond:06d}".rstrip("0") if instant.microsecond else ""
    return (
        f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}T"
        f"{instant.hour:02d}:{instant.minute:02d}:{instant.second:02d}{fraction}Z"
    )


def run_states(values: Sequence[str] | None) -> list[str]:
    """Graph's spelling of each state, whatever the case given; 400 for one Graph does not
    document (a typo would otherwise match nothing, silently)."""
    states = []
    for value in values or ():
        state = KNOWN_STATES.get(value.lower())
        if state is None:
            raise HTTPException(400, f"state must be one of {', '.join(RUN_STATES)}; got {value[:64]!r}")
        states.append(state)
    return list(dict.fromkeys(states))


def empty_window(start: datetime, end: datetime) -> HTTPException:
    return HTTPException(
        400,
        f"from ({instant_text(start)}) must be earlier than to ({instant_text(end)}): to is exclusive, so one "
        "day is from=2026-11-25&to=2026-11-26; without to, the window ends now",
    )


def run_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """`from` and `to` as instants (either may be absent); 400 unless `from` is before `to`."""
    start = parse_instant("from", since) if since is not None else None
    end = parse_instant("to", until) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise empty_window(start, end)
    return start, end


class JobRef:
    """A job's path parameters, as a dependency: declared ahead of `RunsQuery` so a request
    wrong in both is told about the path first, as FastAPI tells it for path parameters."""

    def __init__(self, servicePrincipalId: ServicePrincipalId, jobId: JobId) -> None:
        self.service_principal_id = servicePrincipalId
        self.job_id = jobId


class RunsQuery:
    """The query parameters of both run lists (a job's and the tenant's), as a dependency.
    Only what pydantic checks happens here; the times are read by `window()`, in the route."""

    def __init__(
        self,
        top: Top = DEFAULT_PAGE,
        continuation: Continuation = None,
        since: Since = None,
        until: Until = None,
        state: States = None,
        format_: Format = None,
    ) -> None:
        self.top = top
        self.continuation = continuation
        self.since = since
        self.until = until
        self.states = run_states(state)
        self.format = format_

    def window(self) -> tuple[datetime | None, datetime | None]:
        return run_window(self.since, self.until)
