"""Operator actions on a provisioning job: restart, pause and start, as the Entra portal has them.

Opt-in (`ACTIONS_ENABLED`, and the Graph permission Synchronization.ReadWrite.All, which the
Bicep grants only with `actionsEnabled`), behind the API's write role. Each request:

1. carries a request id: the same id again is answered from what was stored, and Graph is
   not called twice (shared/storage/job_actions.py);
2. is rate-limited per job (ACTION_MIN_INTERVAL_SECONDS between actions let through);
3. goes to Graph (`POST .../synchronization/jobs/{id}/restart|pause|start`, 204 No Content);
   a refusal is answered as problem+json with Graph's status, code and message, and the request
   id and the job's slot are freed so that the same request can be sent again;
4. is audited (the job's timeline and an `audit` log line, shared/domain/audit.py);
5. is followed by a read of the job from Graph, so the answer shows its new state.

Restart's `resetScope` is limited to what an operator may safely clear (QuarantineState,
Escrows, Watermark); ForceDeletes (delete what the accidental-deletions threshold held back)
needs a second, explicit confirmation. Graph's documentation says not to use None and
ConnectorDataStore, and Full includes ConnectorDataStore: they are not offered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from shared.domain.audit import audit_event, audit_log_line
from shared.domain.model import Actor, Event, EventKind, Job
from shared.domain.timestamps import isoformat_utc
from shared.settings import Settings
from shared.storage.store import Store

ActionName = Literal["restart", "pause", "start"]
ACTION_NAMES: tuple[ActionName, ...] = ("restart", "pause", "start")
SAFE_RESET_SCOPES = ("QuarantineState", "Escrows", "Watermark")
FORCE_DELETES = "ForceDeletes"
# What the portal's "Restart provisioning" clears (Graph: empty criteria is "similar to
# QuarantineState, Watermark and Escrows"); sent explicitly, so the audit says what was asked.
PORTAL_RESTART = ("QuarantineState", "Watermark", "Escrows")
# One action per job per minute: enough for a person, too little for a script gone wrong.
ACTION_MIN_INTERVAL_SECONDS = 60.0
_EVENT_KINDS: dict[ActionName, EventKind] = {"restart": "jobRestarted", "pause": "jobPaused", "start": "jobStarted"}

audit_log = logging.getLogger("entra_sync_monitor.audit")


@dataclass(frozen=True)
class ActionRefused(Exception):
    """An answer other than success: the HTTP status, what to say, and headers/extensions."""

    status: int
    detail: str
    retry_after: float | None = None
    graph: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionRequest:
    service_principal_id: str
    job_id: str
    action: ActionName
    request_id: str
    reason: str
    reset_scope: tuple[str, ...]
    actor: Actor


def restart_criteria(reset_scope: tuple[str, ...]) -> dict[str, Any]:
    """The restart body Graph takes (synchronizationJobRestartCriteria; a flags enum, comma-separated)."""
    return {"criteria": {"resetScope": ", ".join(reset_scope)}}


def check_reset_scope(action: ActionName, scope: list[str] | None, confirm_force_deletes: bool) -> tuple[str, ...]:
    """The scope to send (ValueError says what is wrong): restart only, from the allow-list."""
    if action != "restart":
        if scope:
            raise ValueError(f"resetScope is for restart only, not {action}")
        return ()
    chosen = tuple(dict.fromkeys(scope)) if scope else PORTAL_RESTART
    unknown = [name for name in chosen if name not in (*SAFE_RESET_SCOPES, FORCE_DELETES)]
    if unknown:
        raise ValueError(
            f"resetScope may hold {', '.join((*SAFE_RESET_SCOPES, FORCE_DELETES))}; not {', '.join(unknown)}"
        )
    if FORCE_DELETES in chosen and not confirm_force_deletes:
        raise ValueError(
            "ForceDeletes deletes the objects the accidental-deletions threshold held back: "
            "send confirmForceDeletes: true with it to confirm"
        )
    return chosen


def graph_problem(action: str, status: int, code: str | None, message: str | None) -> ActionRefused:
    """Graph's refusal as the API answers it: Graph's own 4xx status; 502 when Graph failed or
    did not answer (the request can be sent again with the same id)."""
    answered = status if 400 <= status < 500 else 502
    said = f"HTTP {status} {code or ''}".strip() if status else "no answer"
    return ActionRefused(
        answered,
        f"Graph refused to {action} the job ({said}): {message or 'no message'}",
        graph={"status": status, "code": code, "message": message},
    )


async def take_action(settings: Settings, store: Store, request: ActionRequest) -> dict[str, Any]:
    """Do the action once per request id and answer with the job as Graph now has it."""
    if not settings.actions_enabled:
        raise ActionRefused(
            403,
            "operator actions are off: set ACTIONS_ENABLED=true, and grant the app's identity the "
            "Graph permission Synchronization.ReadWrite.All (the Bicep parameter actionsEnabled does both)",
        )
    sp_id, job_id = request.service_principal_id, request.job_id
    stored_job = await store.get_job(sp_id, job_id)
    if stored_job is None:
        raise ActionRefused(404, f"No job {job_id!r} is known for service principal {sp_id!r}")
    earlier = await store.find_job_action(sp_id, job_id, request.request_id)
    if earlier is not None:
        return _replay(earlier, request)
    wait = await store.take_job_action_slot(sp_id, job_id, time.time(), ACTION_MIN_INTERVAL_SECONDS)
    if wait > 0:
        raise ActionRefused(
            429, f"this job had an action less than {ACTION_MIN_INTERVAL_SECONDS:.0f} s ago: try again later", wait
        )
    now = isoformat_utc(datetime.now(UTC))
    record: dict[str, Any] = {
        "requestId": request.request_id,
        "servicePrincipalId": sp_id,
        "jobId": job_id,
        "action": request.action,
        "resetScope": list(request.reset_scope),
        "reason": request.reason,
        "requestedBy": request.actor,
        "requestedAt": now,
        "status": "pending",
    }
    if not await store.claim_job_action(record):  # the same request, sent twice at once
        raise ActionRefused(409, "a request with this requestId is being handled: send it again in a moment")

    from shared.graph.reader import graph_reader  # the SDK only when an action is taken

    reader = graph_reader(settings)
    body = restart_criteria(request.reset_scope) if request.action == "restart" else None
    result = await reader.job_action(sp_id, job_id, request.action, body)
    if not result.ok:
        # Nothing was done: the same request may be sent again, and the job's slot is free.
        await store.forget_job_action(record)
        await store.release_job_action_slot(sp_id, job_id)
        refused = graph_problem(request.action, result.status, result.error_code, result.error_message)
        line = audit_log_line(
            _action_event(record), requestId=request.request_id, outcome="refused", graph=refused.graph
        )
        audit_log.warning("audit %s", line)
        raise refused
    record.update(status="done", graph={"status": result.status})
    await store.save_job_action(record)
    event = _action_event(record, detail=f"requestId {request.request_id}")
    await store.save_events([event])
    audit_log.info("audit %s", audit_log_line(event, requestId=request.request_id, graphStatus=result.status))
    return {**_answer(record), "job": await _read_job(settings, reader, stored_job)}


def _replay(earlier: dict[str, Any], request: ActionRequest) -> dict[str, Any]:
    if (earlier.get("action"), earlier.get("requestId")) != (request.action, request.request_id):
        raise ActionRefused(409, f"requestId {request.request_id} was used for another action")
    if earlier.get("status") != "done":
        raise ActionRefused(409, "a request with this requestId is being handled: send it again in a moment")
    return {**_answer(earlier), "replayed": True, "job": None}


def _answer(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("requestId", "servicePrincipalId", "jobId", "action", "resetScope", "reason", "requestedBy", "requestedAt")
    return {**{key: record.get(key) for key in keys}, "replayed": False}


async def _read_job(settings: Settings, reader: Any, stored: Job) -> dict[str, Any] | None:
    """The job as Graph has it right after the action (None if it cannot be read now; the
    next poll stores it either way)."""
    from shared.domain.health import with_current_health
    from shared.domain.normalize import PayloadError, normalize_job

    sp_id = stored["servicePrincipalId"]
    answer = (await reader.get_jobs([sp_id])).get(sp_id)
    if answer is None or not answer.ok:
        return None
    now = datetime.now(UTC)
    principal = {"id": sp_id, "appId": stored.get("appId"), "displayName": stored.get("servicePrincipalName")}
    for raw in answer.body or []:
        if isinstance(raw, dict) and str(raw.get("id", "")).lower() == stored["jobId"].lower():
            try:
                job = normalize_job(
                    raw,
                    tenant_id=settings.tenant_id,
                    service_principal=principal,  # type: ignore[arg-type]
                    observed_at=now,
                    first_observed_at=stored.get("firstObservedAt"),
                    rules=settings.health_rules,
                )
            except PayloadError:
                return None
            return with_current_health(job, now=now, rules=settings.health_rules)
    return None


def _action_event(record: dict[str, Any], detail: str | None = None) -> Event:
    """The timeline event (and audit log line) of an action record."""
    return audit_event(
        record["servicePrincipalId"],
        record["jobId"],
        _EVENT_KINDS[record["action"]],
        actor=cast(Actor, record["requestedBy"]),
        at=record["requestedAt"],
        reason=record["reason"],
        current=", ".join(record["resetScope"]) or None,
        detail=detail,
    )
