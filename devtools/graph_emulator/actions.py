"""A synchronization job's operator actions (restart, pause, start) and their effects.

Graph answers each with 204 No Content (learn.microsoft.com/graph/api/synchronization-
synchronizationjob-restart, -pause, -start). The effects, as those pages and the
synchronizationJobRestartCriteria page describe them:

- pause: the job stops; status `Paused`, schedule `Paused`.
- start: a paused job continues; a quarantined one has its quarantine cleared.
- restart: the job starts again; `criteria.resetScope` (a comma-separated combination of None,
  ConnectorDataStore, Escrows, Watermark, QuarantineState, Full, ForceDeletes; empty or absent
  emulates the portal's restart, "similar to QuarantineState, Watermark and Escrows") says what
  is cleared: QuarantineState lifts the quarantine, Escrows clears the escrowed counts.

Jobs are served from immutable tenants, so an action is kept here as an override applied to the
job's JSON as it is served. A quarantine that begins after the action is served as it comes.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> float | None:
    """Epoch seconds of a Graph timestamp ('2026-11-30T08:00:00.1234567Z'); None if not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        head = value.rstrip("Z").split(".")[0]
        return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


RESET_SCOPES = ("None", "ConnectorDataStore", "Escrows", "Watermark", "QuarantineState", "Full", "ForceDeletes")
PORTAL_RESTART = frozenset({"QuarantineState", "Watermark", "Escrows"})
ACTIONS = ("restart", "pause", "start")


class ResetScopeError(ValueError):
    pass


def parse_reset_scope(value: Any) -> frozenset[str]:
    """The scopes a restart body names (Graph's flags enum: 'Escrows, Watermark')."""
    if value is None or value == "":
        return PORTAL_RESTART
    if not isinstance(value, str):
        raise ResetScopeError("resetScope must be a string")
    names = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(name for name in names if name not in RESET_SCOPES)
    if unknown:
        raise ResetScopeError(f"Requested value '{', '.join(unknown)}' was not found.")
    if "Full" in names:
        names |= {"ConnectorDataStore", "Escrows", "Watermark", "QuarantineState"}
    return frozenset(names)


@dataclass
class _Override:
    paused_at: float | None = None
    resumed_at: float | None = None
    quarantine_lifted_at: float | None = None
    escrows_cleared_at: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class JobActions:
    """The actions taken on each job, applied to the job as served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], _Override] = {}

    def take(self, sp_id: str, job_id: str, action: str, now: float, scopes: frozenset[str] = frozenset()) -> None:
        with self._lock:
            override = self._jobs.setdefault((sp_id.lower(), job_id.lower()), _Override())
            override.history.append({"action": action, "at": now, "resetScope": sorted(scopes)})
            if action == "pause":
                override.paused_at = now
                return
            override.resumed_at = now
            if action == "start" or "QuarantineState" in scopes:
                override.quarantine_lifted_at = now
            if action == "restart" and "Escrows" in scopes:
                override.escrows_cleared_at = now

    def history(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {f"{sp}/{job}": list(o.history) for (sp, job), o in self._jobs.items()}

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    def apply(self, sp_id: str, job: Any) -> Any:
        """The job as served after the actions taken on it (a copy; `job` is not changed)."""
        if not isinstance(job, dict):
            return job
        with self._lock:
            override = self._jobs.get((sp_id.lower(), str(job.get("id", "")).lower()))
            if override is None:
                return job
            override = copy.deepcopy(override)
        job = copy.deepcopy(job)
        status = job.get("status") if isinstance(job.get("status"), dict) else {}
        schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
        quarantine = status.get("quarantine")
        began = parse_time(quarantine.get("currentBegan")) if isinstance(quarantine, dict) else None
        if override.quarantine_lifted_at is not None and quarantine and (began or 0) <= override.quarantine_lifted_at:
            status["quarantine"] = None
            status["code"] = "Active"
            schedule["state"] = "Active"
        if override.paused_at is not None and (override.resumed_at or 0) < override.paused_at:
            status["code"] = schedule["state"] = "Paused"
        elif override.resumed_at is not None and status.get("code") == "Paused":
            status["code"] = schedule["state"] = "Active"
        last = status.get("lastExecution")
        if override.escrows_cleared_at is not None and isinstance(last, dict):
            ran = parse_time(last.get("timeBegan"))
            if ran is None or ran <= override.escrows_cleared_at:
                last["countEscrowed"] = last["countEscrowedRaw"] = 0
                status["countSuccessiveCompleteFailures"] = 0
        return job
