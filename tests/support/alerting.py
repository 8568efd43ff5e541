"""Alert rules' test scaffolding: normalized jobs at chosen instants, and `Alerting`, the stored
side of evaluation kept in memory between polls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.alerts.conditions import AlertConfig
from shared.alerts.error_codes import CodeCount, JobKey
from shared.alerts.records import AlertState, JobMemory, Notification
from shared.alerts.records import MuteRow as Mute
from shared.alerts.rules import Evaluation, evaluate
from shared.domain.model import Job
from shared.domain.normalize import normalize_job
from shared.domain.timestamps import isoformat_utc

TENANT = "00000000-0000-0000-0000-0000000000aa"
SP = {"id": "11111111-2222-3333-4444-555555555555", "appId": "app", "displayName": "Contoso SCIM"}
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iso(instant: datetime) -> str:
    return isoformat_utc(instant)


def run(began: datetime, state: str = "Succeeded", **counts: Any) -> dict[str, Any]:
    return {
        "activityIdentifier": f"r-{began.timestamp():.0f}-{state}",
        "state": state,
        "timeBegan": iso(began),
        "timeEnded": iso(began + timedelta(minutes=1)),
        **counts,
    }


def job(
    now: datetime,
    code: str = "Active",
    *,
    job_id: str = "scim.a",
    last: dict[str, Any] | None = None,
    schedule_state: str = "Active",
    objects: int | None = None,
    **status: Any,
) -> Job:
    raw = {
        "id": job_id,
        "templateId": "scim",
        "schedule": {"interval": "PT40M", "state": schedule_state},
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": 0,
            "lastExecution": last if last is not None else run(now - timedelta(minutes=10)),
            "quarantine": None,
            **status,
        },
    }
    if objects is not None:
        raw["status"]["synchronizedEntryCountByType"] = [
            {"key": "urn:ietf:params:scim:schemas:core:2.0:User", "value": objects}
        ]
    return normalize_job(raw, tenant_id=TENANT, service_principal=SP, observed_at=now)  # type: ignore[arg-type]


def quarantined(now: datetime, began: datetime, reason: str = "EncounteredQuarantineException") -> Job:
    quarantine = {
        "reason": reason,
        "currentBegan": iso(began),
        "seriesBegan": iso(began),
        "nextAttempt": iso(now + timedelta(hours=6)),
        "seriesCount": 1,
        "error": {"code": "CredentialsInvalid", "message": "The target rejected the credentials"},
    }
    return job(now, "Quarantine", last=run(began, "Failed"), quarantine=quarantine)


class Alerting:
    """The stored side of evaluation, in memory: what the store would hold between polls."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig(confirm_minutes=0)
        self.states: dict[tuple[str, str, str], AlertState] = {}
        self.memories: dict[tuple[str, str], JobMemory] = {}
        self.mutes: list[Mute] = []
        self.sent: list[Notification] = []

    def poll(
        self,
        now: datetime,
        *jobs: Job,
        errors: Mapping[JobKey, Sequence[CodeCount]] | None = None,
        seen_before: Mapping[JobKey, set[str]] | None = None,
    ) -> Evaluation:
        result = evaluate(
            list(jobs),
            self.states,
            self.memories,
            self.mutes,
            now=now,
            config=self.config,
            tenant_id=TENANT,
            errors=errors,
            seen_before=seen_before,
        )
        for state in result.states:
            self.states[(state["servicePrincipalId"], state["jobId"], state["rule"])] = state
        for memory in result.memories:
            self.memories[(memory["servicePrincipalId"], memory["jobId"])] = memory
        for key in result.forgotten:
            self.memories.pop(key, None)
        self.sent.extend(result.notifications)
        return result

    def kinds(self, result: Evaluation) -> list[tuple[str, str]]:
        return [(n["rule"], n["kind"]) for n in result.notifications]
