"""What a poll costs in Graph: a middleware, last in the SDK's chain, counts every HTTP attempt
(the SDK's own retries included) into counters that belong to the poll's task, and makes each
attempt a dependency span of the poll's trace (shared/telemetry.py)."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
from kiota_http.middleware.middleware import BaseMiddleware
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shared import telemetry
from shared.domain.poll_record import GraphCounts


@dataclass
class GraphCounters:
    """What a poll cost in Graph: every HTTP attempt, including the SDK's own retries."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    # Items whose Retry-After reached past the poll's deadline: left for the next poll.
    throttled_past_deadline: int = 0
    tenant_id: str = ""  # whose poll: the metrics' `tenant`

    def as_dict(self) -> GraphCounts:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "statusCounts": dict(self.status_counts),
            "throttledPastDeadline": self.throttled_past_deadline,
        }


# A span's name is the request's route: one name per kind of call, not per service principal.
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Each poll counts its own requests, even when two polls share the process's client.
_poll_counters: ContextVar[GraphCounters | None] = ContextVar("graph_counters", default=None)


def start_counting(tenant_id: str = "") -> GraphCounters:
    """Counters for the calling task and the tasks it starts from now on."""
    counters = GraphCounters(tenant_id=tenant_id)
    _poll_counters.set(counters)
    return counters


def counters() -> GraphCounters:
    """The calling poll's counters (throwaway ones outside a poll)."""
    return _poll_counters.get() or GraphCounters()


class CountingHandler(BaseMiddleware):
    """Last in the SDK's middleware chain, so it sees every attempt the retry handler makes."""

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        counting = counters()
        retry = request.headers.get("Retry-Attempt")
        if retry is not None:
            counting.retries += 1
        with telemetry.tracer().start_as_current_span(
            f"{request.method} {_GUID.sub('{id}', request.url.path)}",
            kind=SpanKind.CLIENT,
            attributes=_request_attributes(request, retry),
        ) as span:
            response = await super().send(request, transport)
            _describe_response(span, response)
        counting.requests += 1
        status = str(response.status_code)
        counting.status_counts[status] = counting.status_counts.get(status, 0) + 1
        if response.status_code in (429, 503):
            counting.throttled += 1
        if counting.tenant_id:  # a poll's or a work item's (not an operator action's)
            telemetry.graph_answered(counting.tenant_id, response.status_code)
        return response


def _request_attributes(request: httpx.Request, retry: str | None) -> dict[str, str | int]:
    """OpenTelemetry's HTTP client attributes. The URL without its query ($select, $top,
    $skiptoken): what was asked is the path; nothing after `?` is kept."""
    url = request.url
    attributes: dict[str, str | int] = {
        "http.request.method": request.method,
        "url.full": str(url.copy_with(query=None, fragment=None)),
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }
    if retry is not None and retry.isdigit():
        attributes["http.request.resend_count"] = int(retry)
    return attributes


def _describe_response(span: Span, response: httpx.Response) -> None:
    if not span.is_recording():
        return
    span.set_attribute("http.response.status_code", response.status_code)
    if response.status_code in (429, 503):
        span.set_attribute("syncmon.throttled", True)
        if (retry_after := response.headers.get("Retry-After")) is not None:
            span.set_attribute("syncmon.retry_after", retry_after[:40])
    if response.status_code >= 400:
        span.set_attribute("error.type", str(response.status_code))
        span.set_status(Status(StatusCode.ERROR))
