"""Operator actions: `POST /api/v1/jobs/{servicePrincipalId}/{jobId}/restart`, `/pause` and
`/start` (shared/actions.py does them). Behind the read check like all of /api/v1, and the
write check (API_WRITE_ROLE, or API_KEY_ONLY_WRITES without sign-in); off unless
ACTIONS_ENABLED. docs/api.md, "Operator actions", is the reader's guide.
"""

from __future__ import annotations

import math
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from shared.actions import ActionName, ActionRefused, ActionRequest, check_reset_scope, take_action
from shared.api.auth import Caller
from shared.api.deps import SettingsDep, StoreDep, WriterDep
from shared.api.http import problem
from shared.api.models import Actor, Job
from shared.api.params import JobId, ServicePrincipalId, problems
from shared.settings import Settings
from shared.storage.store import Store

router = APIRouter(tags=["actions"])

ResetScopeName = Literal["QuarantineState", "Escrows", "Watermark", "ForceDeletes"]


class JobActionRequest(BaseModel):
    """One operator action. `requestId` makes it safe to send again: the same id is done once."""

    model_config = ConfigDict(extra="forbid")

    requestId: UUID = Field(description="a new UUID per action; sending the same one again repeats nothing")
    reason: str = Field(min_length=3, max_length=500, description="why: kept in the job's timeline and the audit log")
    resetScope: list[ResetScopeName] | None = Field(
        None,
        max_length=4,
        description="restart only: what to clear (default QuarantineState, Watermark, Escrows: the portal's restart)",
    )
    confirmForceDeletes: bool = Field(
        False, description="must be true when resetScope holds ForceDeletes (deletes what the deletion threshold held)"
    )


class JobActionResult(BaseModel):
    requestId: str
    servicePrincipalId: str
    jobId: str
    action: str
    resetScope: list[str]
    reason: str
    requestedBy: Actor | None
    requestedAt: str
    replayed: bool = Field(description="true: this requestId was done before; nothing was sent to Graph again")
    job: Job | None = Field(description="the job as Graph has it right after the action (null on a replay)")


async def _act(
    action: ActionName,
    sp_id: str,
    job_id: str,
    body: JobActionRequest,
    settings: Settings,
    store: Store,
    caller: Caller,
) -> Response | dict[str, Any]:
    try:
        scope = check_reset_scope(action, list(body.resetScope or []), body.confirmForceDeletes)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    request = ActionRequest(sp_id, job_id, action, str(body.requestId), body.reason, scope, caller.audit())
    try:
        return await take_action(settings, store, request)
    except ActionRefused as refused:
        headers = {"Retry-After": str(math.ceil(refused.retry_after))} if refused.retry_after else None
        return problem(refused.status, refused.detail, headers, {"graph": refused.graph} if refused.graph else None)


# One route per action, alike but for their names: (summary, description).
_ACTIONS: dict[ActionName, tuple[str, str]] = {
    "restart": ("Restart a job", "Restart the job, clearing what `resetScope` names (Graph's restart action)."),
    "pause": ("Pause a job", "Pause the job (Graph's pause action): it stops until started."),
    "start": ("Start a job", "Start the job (Graph's start action): a paused job continues, a quarantine is cleared."),
}


def _add_route(action: ActionName, summary: str, description: str) -> None:
    async def endpoint(
        servicePrincipalId: ServicePrincipalId,
        jobId: JobId,
        body: JobActionRequest,
        settings: SettingsDep,
        store: StoreDep,
        caller: WriterDep,
    ) -> Response | dict[str, Any]:
        return await _act(action, servicePrincipalId, jobId, body, settings, store, caller)

    endpoint.__name__ = f"{action}_job"
    router.post(
        f"/jobs/{{servicePrincipalId}}/{{jobId}}/{action}",
        response_model=JobActionResult,
        responses=problems(400, 401, 403, 404, 409, 429, 502, 503),
        operation_id=f"{action}Job",
        summary=summary,
        description=description,
    )(endpoint)


for _action, (_summary, _description) in _ACTIONS.items():
    _add_route(_action, _summary, _description)
