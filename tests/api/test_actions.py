"""Operator actions (restart, pause, start) through the real ASGI app, the real Graph SDK over
HTTP to the emulator (which applies their effects), and Azurite: opt-in, write role only,
done once per request id, rate-limited per job, audited, answered with the job's new state."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api.auth import PRINCIPAL_HEADER
from shared.poll import poll_tenant
from shared.settings import load_settings
from tests.support.api import api_client

ACTION_PATH = "/servicePrincipals/{id}/synchronization/jobs/{id}/"
READ, WRITE = "SyncMonitor.Read", "SyncMonitor.Write"


def signed_in(*roles: str) -> dict[str, str]:
    claims = [
        {"typ": "name", "val": "grace@contoso.com"},
        {"typ": "oid", "val": "9d3c0f5e-0000-4000-8000-000000000001"},
    ]
    raw = json.dumps({"auth_typ": "aad", "claims": claims + [{"typ": "roles", "val": role} for role in roles]})
    return {PRINCIPAL_HEADER: base64.b64encode(raw.encode()).decode()}


def body(reason: str = "vendor fixed their SCIM endpoint", **extra: Any) -> dict[str, Any]:
    return {"requestId": str(uuid.uuid4()), "reason": reason, **extra}


def graph_posts(emulator: EmulatorServer, action: str) -> int:
    return int(emulator.stats()["byPath"].get(ACTION_PATH + action, 0))


@pytest.fixture
async def api(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    await poll_tenant(load_settings(), trigger="test")
    monkeypatch.setenv("API_SIGN_IN_ENABLED", "true")
    monkeypatch.setenv("API_REQUIRED_ROLE", READ)
    monkeypatch.setenv("API_WRITE_ROLE", WRITE)
    async with api_client() as client:
        yield client


async def job_with(api: httpx.AsyncClient, status_code: str) -> tuple[str, str]:
    jobs = (await api.get("/api/v1/jobs", params={"statusCode": status_code}, headers=signed_in(READ))).json()
    job = jobs["value"][0]
    return job["servicePrincipalId"], job["jobId"]


async def test_actions_are_off_unless_enabled_and_need_the_write_role(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp_id, job_id = await job_with(api, "Active")
    url = f"/api/v1/jobs/{sp_id}/{job_id}/pause"
    off = await api.post(url, json=body(), headers=signed_in(READ, WRITE))
    assert off.status_code == 403 and "ACTIONS_ENABLED" in off.json()["detail"]
    monkeypatch.setenv("ACTIONS_ENABLED", "true")
    reader = await api.post(url, json=body(), headers=signed_in(READ))
    assert reader.status_code == 403 and WRITE in reader.json()["detail"]
    assert graph_posts(demo_emulator, "pause") == 0  # nothing reached Graph


async def test_pause_then_start_change_the_job_once_per_request_and_are_audited(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ENABLED", "true")
    sp_id, job_id = await job_with(api, "Active")
    writer = signed_in(READ, WRITE)
    pause = body("maintenance window on the target")
    paused = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/pause", json=pause, headers=writer)
    assert paused.status_code == 200, paused.text
    answer = paused.json()
    assert answer["job"]["statusCode"] == "Paused" and answer["replayed"] is False
    assert answer["requestedBy"]["name"] == "grace@contoso.com"
    assert graph_posts(demo_emulator, "pause") == 1

    again = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/pause", json=pause, headers=writer)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert graph_posts(demo_emulator, "pause") == 1  # the same request id: Graph not asked twice

    too_soon = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/start", json=body(), headers=writer)
    assert too_soon.status_code == 429 and int(too_soon.headers["retry-after"]) > 0
    assert graph_posts(demo_emulator, "start") == 0

    monkeypatch.setattr("shared.actions.ACTION_MIN_INTERVAL_SECONDS", 0.0)
    started = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/start", json=body("window over"), headers=writer)
    assert started.status_code == 200 and started.json()["job"]["statusCode"] == "Active"

    events = (await api.get(f"/api/v1/jobs/{sp_id}/{job_id}", headers=signed_in(READ))).json()["events"]
    audited = [(e["kind"], e["reason"], e["actor"]["name"]) for e in events if e.get("actor")]
    assert audited == [
        ("jobStarted", "window over", "grace@contoso.com"),
        ("jobPaused", "maintenance window on the target", "grace@contoso.com"),
    ]


async def test_restart_clears_a_quarantine_with_a_safe_scope_only(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ENABLED", "true")
    sp_id, job_id = await job_with(api, "Quarantine")
    url, writer = f"/api/v1/jobs/{sp_id}/{job_id}/restart", signed_in(READ, WRITE)
    for bad, said in (
        (body(resetScope=["Full"]), "resetScope"),
        (body(resetScope=["ConnectorDataStore"]), "resetScope"),
        (body(resetScope=["ForceDeletes"]), "confirmForceDeletes"),
        (body(reason=""), "reason"),
        ({**body(), "requestId": "not-a-uuid"}, "requestId"),
    ):
        refused = await api.post(url, json=bad, headers=writer)
        assert refused.status_code == 400 and said in refused.json()["detail"], refused.text
    pause_with_scope = await api.post(
        f"/api/v1/jobs/{sp_id}/{job_id}/pause", json=body(resetScope=["Escrows"]), headers=writer
    )
    assert pause_with_scope.status_code == 400
    assert graph_posts(demo_emulator, "restart") == 0

    restarted = await api.post(url, json=body(resetScope=["QuarantineState", "Escrows"]), headers=writer)
    assert restarted.status_code == 200, restarted.text
    job = restarted.json()["job"]
    assert job["statusCode"] == "Active" and job["quarantine"] is None
    assert restarted.json()["resetScope"] == ["QuarantineState", "Escrows"]
    # What Graph was sent: the criteria as one comma-separated flags value, as Graph documents it.
    [taken] = demo_emulator.state.actions.history().values()
    assert [(h["action"], h["resetScope"]) for h in taken] == [("restart", ["Escrows", "QuarantineState"])]


async def test_a_graph_refusal_is_answered_as_problem_json_and_the_request_can_be_sent_again(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ENABLED", "true")
    sp_id, job_id = await job_with(api, "Active")
    demo_emulator.set_faults({"rules": [{"path": "/pause$", "status": 403}]})
    request = body()
    refused = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/pause", json=request, headers=signed_in(READ, WRITE))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["graph"]["status"] == 403 and problem["graph"]["code"] == "Authorization_RequestDenied"
    assert "Graph refused to pause" in problem["detail"]

    demo_emulator.clear_faults()
    retried = await api.post(f"/api/v1/jobs/{sp_id}/{job_id}/pause", json=request, headers=signed_in(READ, WRITE))
    assert retried.status_code == 200 and retried.json()["replayed"] is False  # nothing was done the first time
