"""The alert endpoints: a FastAPI router that shared/api/app.py includes under /api/v1.

GET /alerts (open and recently resolved, filterable), GET /alerts/mutes, POST /alerts/mute,
POST /alerts/unmute and GET /alerts/notifications (the outbox: what was sent where, and what
is still being retried). Reads and writes only the alert tables, and the job's timeline for
the audit of each write; never sends anything. A write needs the write check (`WriterDep`:
API_WRITE_ROLE, or API_KEY_ONLY_WRITES without sign-in), on top of the read check every
route here has.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from shared.alerts.models import (
    MAX_MUTE_HOURS,
    AlertList,
    Mute,
    MuteList,
    MuteRequest,
    NotificationList,
    RuleName,
    UnmuteRequest,
    UnmuteResult,
)
from shared.alerts.records import MuteRow, mute_covers, mute_in_force
from shared.alerts.store import delete_mutes, list_alerts, list_outbox, load_mutes, save_mute
from shared.api.deps import StoreDep, WriterDep
from shared.api.models import Problem
from shared.domain.audit import audit_event, audit_log_line
from shared.domain.model import Actor, EventKind
from shared.domain.timestamps import isoformat_utc
from shared.storage.store import Store

router = APIRouter(tags=["alerts"])
audit_log = logging.getLogger("entra_sync_monitor.audit")

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A parameter or the body is malformed"},
    403: {"model": Problem, "description": "Reading is allowed but writing is not (API_WRITE_ROLE)"},
    503: {"model": Problem, "description": "The app is misconfigured or its storage is unreachable"},
}


SpFilter = Annotated[str | None, Query(min_length=1, max_length=100, description="Only this service principal")]
JobFilter = Annotated[str | None, Query(min_length=1, max_length=400, description="Only this job")]


def _active_mutes(mutes: list[MuteRow], now: datetime) -> list[MuteRow]:
    return [m for m in mutes if mute_in_force(m, now)]


def _muted_until(mutes: list[MuteRow], sp_id: str, job_id: str, rule: str) -> str | None:
    ends = [m["until"] for m in mutes if mute_covers(m, sp_id, job_id, rule)]
    return max(ends) if ends else None


@router.get("/alerts", response_model=AlertList, responses=_PROBLEMS)
async def get_alerts(
    store: StoreDep,
    status: Annotated[
        Literal["open", "resolved", "all"] | None,
        Query(description="open, resolved or all; default: open ones and those resolved in the last `days`"),
    ] = None,
    days: Annotated[int, Query(ge=1, le=3650, description="How far back resolved alerts go (days)")] = 7,
    rule: Annotated[RuleName | None, Query(description="Only this rule")] = None,
    severity: Annotated[
        Literal["critical", "error", "warning", "info"] | None, Query(description="Only this severity")
    ] = None,
    servicePrincipalId: SpFilter = None,
    jobId: JobFilter = None,
    top: Annotated[int, Query(ge=1, le=1000, description="At most this many (open first, newest first)")] = 100,
) -> dict[str, Any]:
    """Alerts, open first, then newest first."""
    now = datetime.now(UTC)
    alerts = await list_alerts(
        store,
        status=status if status in ("open", "resolved") else None,
        rule=rule,
        service_principal_id=servicePrincipalId,
        job_id=jobId,
    )
    since = isoformat_utc(now - timedelta(days=days))
    if status != "all":
        alerts = [a for a in alerts if a["status"] == "open" or (a["resolvedAt"] or "") >= since]
    if severity is not None:
        alerts = [a for a in alerts if a["severity"] == severity]
    alerts.sort(key=lambda a: a["resolvedAt"] or a["openedAt"], reverse=True)
    alerts.sort(key=lambda a: a["status"] != "open")  # stable: open first, newest first in each group
    mutes = _active_mutes(await load_mutes(store), now)
    value = [
        {**alert, "mutedUntil": _muted_until(mutes, alert["servicePrincipalId"], alert["jobId"], alert["rule"])}
        for alert in alerts[:top]
    ]
    return {"value": value}


@router.get("/alerts/mutes", response_model=MuteList, responses=_PROBLEMS)
async def get_mutes(
    store: StoreDep, servicePrincipalId: SpFilter = None, jobId: JobFilter = None
) -> dict[str, list[MuteRow]]:
    """Mutes in force now."""
    mutes = _active_mutes(await load_mutes(store), datetime.now(UTC))
    if servicePrincipalId is not None:
        mutes = [m for m in mutes if m["servicePrincipalId"] == servicePrincipalId]
    if jobId is not None:
        mutes = [m for m in mutes if m["jobId"] == jobId]
    return {"value": sorted(mutes, key=lambda m: (m["servicePrincipalId"], m["jobId"], m["rule"] or ""))}


@router.post(
    "/alerts/mute",
    response_model=Mute,
    responses={**_PROBLEMS, 404: {"model": Problem, "description": "No such job"}},
)
async def mute(body: MuteRequest, store: StoreDep, caller: WriterDep) -> MuteRow:
    """Mute a job's alerts (every rule, or one) until a time or for some hours. Muted alerts
    still open and resolve (GET /alerts shows them); nothing about them is sent while the mute
    lasts, a resolve included. An alert still open when the mute ends is sent then."""
    now = datetime.now(UTC)
    until = body.until.astimezone(UTC) if body.until is not None else now + timedelta(hours=body.hours or 0)
    if until <= now:
        raise HTTPException(400, "until must be in the future")
    if until > now + timedelta(hours=MAX_MUTE_HOURS):
        raise HTTPException(400, f"a mute lasts at most {MAX_MUTE_HOURS // 24} days")
    known = await store.get_job(body.servicePrincipalId, body.jobId) is not None or bool(
        await list_alerts(store, service_principal_id=body.servicePrincipalId, job_id=body.jobId)
    )
    if not known:
        raise HTTPException(404, f"No job {body.jobId!r} is known for service principal {body.servicePrincipalId!r}")
    row: MuteRow = {
        "servicePrincipalId": body.servicePrincipalId,
        "jobId": body.jobId,
        "rule": body.rule,
        "until": isoformat_utc(until),
        "reason": body.reason,
        "createdAt": isoformat_utc(now),
        "createdBy": caller.audit(),
    }
    await save_mute(store, row)
    await _audit(
        store,
        body.servicePrincipalId,
        body.jobId,
        "alertsMuted",
        row["createdBy"],
        row["createdAt"],
        body.reason,
        current=body.rule or "every rule",
        detail=f"until {row['until']}",
    )
    return row


@router.post("/alerts/unmute", response_model=UnmuteResult, responses=_PROBLEMS)
async def unmute(body: UnmuteRequest, store: StoreDep, caller: WriterDep) -> dict[str, int]:
    """Remove the job's mute of one rule, or (no rule) every mute of the job. An alert that
    opened during the mute and is still open is sent by the next poll."""
    removed = await delete_mutes(store, body.servicePrincipalId, body.jobId, body.rule)
    if removed:  # nothing changed, nothing to audit
        await _audit(
            store,
            body.servicePrincipalId,
            body.jobId,
            "alertsUnmuted",
            caller.audit(),
            isoformat_utc(datetime.now(UTC)),
            body.reason,
            current=body.rule or "every rule",
            detail=f"{removed} mute{'s' if removed != 1 else ''} removed",
        )
    return {"removed": removed}


async def _audit(
    store: Store,
    service_principal_id: str,
    job_id: str,
    kind: EventKind,
    actor: Actor,
    at: str,
    reason: str | None,
    *,
    current: str,
    detail: str,
) -> None:
    """The write in the job's timeline and the audit log line (shared/domain/audit.py)."""
    event = audit_event(
        service_principal_id, job_id, kind, actor=actor, at=at, reason=reason, current=current, detail=detail
    )
    await store.save_events([event])
    audit_log.info("audit %s", audit_log_line(event))


@router.get("/alerts/notifications", response_model=NotificationList, responses=_PROBLEMS)
async def get_notifications(
    store: StoreDep,
    status: Annotated[
        Literal["pending", "retrying", "delivered", "failed"] | None, Query(description="Only this delivery status")
    ] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first")] = 100,
) -> dict[str, Any]:
    """The outbox: each notification to each target and its delivery, newest first."""
    rows = await list_outbox(store, status=status, top=top)
    return {
        "value": [
            {
                "notificationId": row.get("notificationId"),
                "target": row.get("target"),
                "kind": row.get("kind"),
                "alertId": row.get("alertId"),
                "rule": row.get("rule"),
                "servicePrincipalId": row.get("servicePrincipalId"),
                "jobId": row.get("jobId"),
                "status": row.get("status"),
                "attempts": int(row.get("attempts") or 0),
                "createdAt": row.get("createdAt"),
                "deliveredAt": row.get("deliveredAt") or None,
                "nextAttemptAt": row.get("nextAttemptAt") or None,
                "lastStatusCode": int(row.get("lastStatusCode") or 0) or None,
                "lastError": row.get("lastError") or None,
            }
            for row in rows
        ]
    }
