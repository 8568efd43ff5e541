"""The record of one poll, as the poll makes it (`shared.poll.PollRecord.to_dict`), stores it
(`<prefix>Polls`), logs it, and the API serves it. Records of older versions may lack keys
added since: code that reads stored records uses `.get`."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ForbiddenReads(TypedDict):
    jobs: int
    servicePrincipals: int


class GraphCounts(TypedDict):
    """What a poll cost in Graph (its record's `graph` section)."""

    requests: int
    throttled: int
    retries: int
    statusCounts: dict[str, int]
    throttledPastDeadline: int


class PollSummary(TypedDict):
    pollId: str
    tenantId: str
    trigger: str
    discovery: bool
    pastDue: bool
    status: str  # succeeded | partial | failed
    startedAt: str
    endedAt: str
    durationSeconds: float
    servicePrincipalsScanned: int
    servicePrincipalsWithJobs: int
    jobsRead: int
    jobsChanged: int
    jobsSkipped: int
    jobsRemoved: int
    runsStored: int
    events: int
    unfinishedServicePrincipals: list[str]
    servicePrincipalsNotRead: list[str] | None  # None: too many to keep (see the count)
    servicePrincipalsNotReadCount: int
    jobsNotObserved: int
    jobReads: int
    forbiddenReads: ForbiddenReads
    graph: GraphCounts
    errorCount: int
    errorsByKind: dict[str, int]
    errorsByServicePrincipal: dict[str, int]
    errors: list[dict[str, Any]]  # kind, message and where it happened (ids, HTTP status)
    alerts: NotRequired[dict[str, Any]]  # added by the alert step (docs/alerts.md)
