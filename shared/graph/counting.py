"""What a poll costs in Graph: a middleware, last in the SDK's chain, counts every HTTP attempt
(the SDK's own retries included) into counters that belong to the poll's task."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
from kiota_http.middleware.middleware import BaseMiddleware

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

    def as_dict(self) -> GraphCounts:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "statusCounts": dict(self.status_counts),
            "throttledPastDeadline": self.throttled_past_deadline,
        }


# Each poll counts its own requests, even when two polls share the process's client.
_poll_counters: ContextVar[GraphCounters | None] = ContextVar("graph_counters", default=None)


def start_counting() -> GraphCounters:
    """Counters for the calling task and the tasks it starts from now on."""
    counters = GraphCounters()
    _poll_counters.set(counters)
    return counters


def counters() -> GraphCounters:
    """The calling poll's counters (throwaway ones outside a poll)."""
    return _poll_counters.get() or GraphCounters()


class CountingHandler(BaseMiddleware):
    """Last in the SDK's middleware chain, so it sees every attempt the retry handler makes."""

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        counting = counters()
        if "Retry-Attempt" in request.headers:
            counting.retries += 1
        response = await super().send(request, transport)
        counting.requests += 1
        status = str(response.status_code)
        counting.status_counts[status] = counting.status_counts.get(status, 0) + 1
        if response.status_code in (429, 503):
            counting.throttled += 1
        return response
