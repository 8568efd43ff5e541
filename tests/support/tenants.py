"""Tenants for the Graph emulator to serve: hand-made ones with known answers, and what the
emulator served (the ground truth a test compares the app's answers with)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer
from shared.domain.model import EXECUTION_KINDS


def reset_to_demo(emulator: EmulatorServer) -> None:
    """The emulator back on the demo tenant with no faults, its clock on the wall clock (earlier
    tests move it days ahead; the app's own clock is the wall clock)."""
    from shared.domain.timestamps import parse_timestamp

    emulator.freeze_clock(False)
    now = parse_timestamp(emulator.now())
    assert now is not None
    emulator.advance_clock((datetime.now(UTC) - now).total_seconds())
    emulator.set_demo_tenant()
    emulator.clear_faults()


def at(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(activity: str, began: datetime, state: str = "Succeeded", **counts: Any) -> dict[str, Any]:
    return {
        "activityIdentifier": activity,
        "state": state,
        "timeBegan": at(began),
        "timeEnded": at(began + timedelta(minutes=2)),
        **counts,
    }


def job(job_id: str, template: str, last: dict[str, Any] | None, code: str = "Active", **status: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "templateId": template,
        "schedule": {"interval": "PT40M", "state": "Active", "expiration": None},
        "status": {
            "code": code,
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "lastExecution": last,
            "quarantine": None,
            **status,
        },
    }


def tenant(*principals: tuple[str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "tenantId": DEMO_TENANT_ID,
        "servicePrincipals": [
            {"id": sp_id, "appId": f"app-{sp_id[:8]}", "displayName": name, "jobs": jobs}
            for sp_id, name, jobs in principals
        ],
    }


def static_tenant(*executions: dict[str, Any] | None) -> dict[str, Any]:
    """One service principal with one job whose lastExecution is each of `executions` in turn."""
    job = {
        "id": "scim.static.1",
        "templateId": "scim",
        "schedule": {"interval": "PT40M", "state": "Active", "expiration": None},
        "status": {
            "code": "Active",
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "lastExecution": executions[0],
            "quarantine": None,
        },
    }
    sp = {"id": "11111111-2222-3333-4444-555555555555", "appId": "a", "displayName": "Static", "jobs": [job]}
    return {"tenantId": "t", "servicePrincipals": [sp]}


def freeze(emulator: EmulatorServer) -> dict[str, Any]:
    """Serve the living demo tenant as it is now, frozen, so the truth cannot move mid-test."""
    tenant = emulator.tenant()
    emulator.set_tenant(tenant)
    return tenant


def served_jobs(tenant: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(sp["id"], job["id"]): job for sp in tenant["servicePrincipals"] for job in sp.get("jobs", [])}


def served_runs(tenant: dict[str, Any]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Distinct runs per job, by activityIdentifier; sentinels (no id, year 0001) are not runs."""
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for key, job in served_jobs(tenant).items():
        for kind in EXECUTION_KINDS:
            execution = (job.get("status") or {}).get(kind)
            if execution and execution.get("activityIdentifier") and not str(execution["timeBegan"]).startswith("0001"):
                runs.setdefault(key, {})[execution["activityIdentifier"]] = execution
    return runs
