"""The record of one poll, as the poll makes it (`shared.poll.PollRecord.to_dict`), stores it
(`<prefix>Polls`), logs it, and the API serves it. Records of older versions may lack keys
added since: code that reads stored records uses `.get`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from shared.domain.sweep import SweepProgress
from shared.domain.timestamps import isoformat_utc

_MAX_ERRORS_KEPT = 200
_NOT_READ_KEPT = 2_000  # beyond this a record stays small; marks then date from the job's own state


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
    failedTries: NotRequired[int]  # a fanned-out poll's item tries that failed after reading Graph


def no_graph_requests() -> GraphCounts:
    """The `graph` section of a record that asked Graph nothing (a poisoned item or poll)."""
    return {"requests": 0, "throttled": 0, "retries": 0, "statusCounts": {}, "throttledPastDeadline": 0}


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
    sweep: NotRequired[SweepProgress | None]  # a discovery's progress; None on other polls
    alerts: NotRequired[dict[str, Any]]  # added by the alert step (docs/alerts.md)
    provisioningLogs: NotRequired[dict[str, Any] | None]  # PROVISIONING_LOGS on: shared.provisioning_logs
    work: NotRequired[dict[str, Any]]  # a poll fanned out through the work queue (shared.domain.work.WorkProgress)


@dataclass
class PollRecord:
    poll_id: str
    tenant_id: str
    started_at: datetime
    trigger: str
    past_due: bool = False
    service_principals_scanned: int = 0
    service_principals_with_jobs: int = 0
    jobs_read: int = 0
    jobs_changed: int = 0
    jobs_skipped: int = 0
    jobs_removed: int = 0
    runs_stored: int = 0
    events: int = 0
    discovery: bool = False
    unfinished: list[str] = field(default_factory=list)
    # Service principals whose jobs this poll could not read, and why (their jobs are marked
    # "not observed"; the next poll dates the marks from this list).
    not_read: dict[str, str] = field(default_factory=dict)
    jobs_not_observed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    job_reads: int = 0  # service principals whose jobs read got an answer (any status)
    forbidden: dict[str, int] = field(default_factory=dict)  # error kind -> 403 answers, all counted
    sweep: SweepProgress | None = None  # a discovery's progress through every service principal
    provisioning_logs: dict[str, Any] | None = None  # what the poll read of the provisioning logs

    def error(self, kind: str, message: str, **where: Any) -> None:
        self.error_count += 1
        if where.get("status") == 403:
            self.forbidden[kind] = self.forbidden.get(kind, 0) + 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append({"kind": kind, "message": message[:500], **where})

    def to_dict(self, *, status: str, ended_at: datetime, graph: GraphCounts) -> PollSummary:
        errors_by_kind: dict[str, int] = {}
        errors_by_sp: dict[str, int] = {}
        for error in self.errors:
            errors_by_kind[error["kind"]] = errors_by_kind.get(error["kind"], 0) + 1
            if sp_id := error.get("servicePrincipalId"):
                errors_by_sp[sp_id] = errors_by_sp.get(sp_id, 0) + 1
        return {
            "pollId": self.poll_id,
            "tenantId": self.tenant_id,
            "trigger": self.trigger,
            "discovery": self.discovery,
            "pastDue": self.past_due,
            "status": status,
            "startedAt": isoformat_utc(self.started_at),
            "endedAt": isoformat_utc(ended_at),
            "durationSeconds": round((ended_at - self.started_at).total_seconds(), 3),
            "servicePrincipalsScanned": self.service_principals_scanned,
            "servicePrincipalsWithJobs": self.service_principals_with_jobs,
            "jobsRead": self.jobs_read,
            "jobsChanged": self.jobs_changed,
            "jobsSkipped": self.jobs_skipped,
            "jobsRemoved": self.jobs_removed,
            "runsStored": self.runs_stored,
            "events": self.events,
            "unfinishedServicePrincipals": self.unfinished,
            "servicePrincipalsNotRead": sorted(self.not_read) if len(self.not_read) <= _NOT_READ_KEPT else None,
            "servicePrincipalsNotReadCount": len(self.not_read),
            "jobsNotObserved": self.jobs_not_observed,
            "sweep": self.sweep,
            "provisioningLogs": self.provisioning_logs,
            # What the health check needs to tell a blind monitor (every read refused).
            "jobReads": self.job_reads,
            "forbiddenReads": {
                "jobs": self.forbidden.get("graphRead", 0),
                "servicePrincipals": self.forbidden.get("servicePrincipal", 0)
                + self.forbidden.get("servicePrincipalsForbidden", 0),
            },
            "graph": graph,
            "errorCount": self.error_count,
            "errorsByKind": errors_by_kind,
            "errorsByServicePrincipal": errors_by_sp,
            "errors": self.errors,
        }


_GRANT = (
    "grant the Microsoft Graph application permission {permission} to the app's identity, with admin consent "
    "(infra/app/graph-permissions.bicep with grantGraphPermissions=true, or docs/deploy.md)"
)
_BLIND_JOBS = "Graph refused every job read (HTTP 403): " + _GRANT.format(permission="Synchronization.Read.All")
_BLIND_PRINCIPALS = "Graph refused to read the service principals (HTTP 403): " + _GRANT.format(
    permission="Application.Read.All"
)


def blind_reason(record: Mapping[str, Any]) -> str | None:
    """Why a poll saw nothing because Graph refused every read, or None. Decided from the
    record's counts only (`jobReads`, `forbiddenReads`), never from tenant data."""
    raw = record.get("forbiddenReads")
    forbidden: dict[str, Any] = raw if isinstance(raw, dict) else {}
    job_reads = int(record.get("jobReads") or 0)
    if job_reads > 0 and int(forbidden.get("jobs") or 0) >= job_reads:
        return _BLIND_JOBS
    if job_reads == 0 and int(forbidden.get("servicePrincipals") or 0) > 0:
        return _BLIND_PRINCIPALS
    return None
