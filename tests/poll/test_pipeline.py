"""End to end: the real SDK over HTTP to the Graph emulator, real Azurite, the real ASGI app.

Ground truth is what the emulator served: every job must come back through the API with its
status, every distinct run exactly once, and the summary's counts must match.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from shared.poll import run_poll
from tests.support.paths import ROOT
from tests.support.tenants import freeze, served_jobs, served_runs, static_tenant


@pytest.fixture
async def api(app_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def all_executions(api: httpx.AsyncClient, sp_id: str, job_id: str, top: int = 2) -> list[dict[str, Any]]:
    url: str | None = f"/api/v1/jobs/{quote(sp_id)}/{quote(job_id)}/executions?top={top}"
    found: list[dict[str, Any]] = []
    while url:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["value"]) <= top
        found.extend(page["value"])
        url = page["nextLink"]
    return found


async def test_poll_store_and_serve_match_what_graph_served(
    demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    first = freeze(demo_emulator)
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded", record
    assert record["jobsRead"] == len(served_jobs(first))

    demo_emulator.set_demo_tenant()
    demo_emulator.advance_clock(3 * 3600)  # several cycles later: new runs everywhere active
    second = freeze(demo_emulator)
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded", record
    assert record["runsStored"] > 0

    expected_runs = served_runs(first)
    for key, runs in served_runs(second).items():
        expected_runs.setdefault(key, {}).update(runs)

    jobs = (await api.get("/api/v1/jobs")).json()["value"]
    by_key = {(job["servicePrincipalId"], job["jobId"]): job for job in jobs}
    truth = served_jobs(second)
    assert set(by_key) == set(truth)
    for key, job in truth.items():
        assert by_key[key]["statusCode"] == job["status"]["code"]
        assert by_key[key]["templateId"] == job["templateId"]
        last = job["status"]["lastExecution"]
        stored_last = by_key[key]["lastExecution"]
        assert (stored_last or {}).get("activityIdentifier") == (last or {}).get("activityIdentifier")

    total_runs = 0
    by_state: dict[str, int] = {}
    for (sp_id, job_id), runs in expected_runs.items():
        stored = await all_executions(api, sp_id, job_id)
        ids = [run["activityIdentifier"] for run in stored]
        assert sorted(ids) == sorted(runs), (sp_id, job_id)  # each distinct run exactly once
        began = [run["timeBegan"] for run in stored]
        assert began == sorted(began, reverse=True)  # newest first
        for run in stored:
            assert run["timeBegan"].endswith("Z")
            assert run["countImported"] == runs[run["activityIdentifier"]].get("countImported")
            by_state[run["state"]] = by_state.get(run["state"], 0) + 1
        total_runs += len(stored)

    summary = (await api.get("/api/v1/summary")).json()
    assert summary["executions"] == {"total": total_runs, "byState": by_state}
    codes: dict[str, int] = {}
    for job in truth.values():
        codes[job["status"]["code"]] = codes.get(job["status"]["code"], 0) + 1
    assert summary["jobs"]["total"] == len(truth)
    assert summary["jobs"]["byStatusCode"] == codes
    assert sum(summary["jobs"]["byHealth"].values()) == len(truth)
    assert summary["lastPoll"]["pollId"] == record["pollId"]


async def test_a_poll_that_sees_nothing_new_writes_nothing_but_its_record(
    demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    freeze(demo_emulator)
    first = await run_poll(trigger="test")
    assert first["jobsChanged"] > 0 and first["runsStored"] > 0
    again = await run_poll(trigger="test")
    assert (again["jobsChanged"], again["runsStored"]) == (0, 0)


async def test_the_poll_reads_jobs_in_batches_of_twenty(app_env: dict[str, str], demo_emulator: EmulatorServer) -> None:
    tenant = freeze(demo_emulator)
    demo_emulator.reset_stats()
    record = await run_poll(trigger="test")
    stats = demo_emulator.stats()
    principals = len(tenant["servicePrincipals"])
    assert stats["batchItems"] == principals
    assert stats["batchRequests"] == -(-principals // 20)
    assert record["graph"]["requests"] == stats["requests"]
    assert stats["authorizationHeaderSeen"] is False  # GRAPH_AUTH=none sends no credentials


def test_cli_poll_prints_its_record_last_and_exits_zero(app_env: dict[str, str], demo_emulator: EmulatorServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared", "poll"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["status"] == "succeeded"
    assert record["trigger"] == "cli"


def test_cli_poll_with_a_bad_setting_fails_naming_it(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_MAX_CONCURRENCY", "lots")
    result = subprocess.run(
        [sys.executable, "-m", "shared", "poll"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2
    assert "GRAPH_MAX_CONCURRENCY" in result.stderr


def test_cli_poll_fails_loudly_when_graph_is_down(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools.azurite import free_port

    monkeypatch.setenv("GRAPH_BASE_URL", f"http://127.0.0.1:{free_port()}/v1.0")  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "shared", "poll"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 1
    assert "Graph unavailable" in result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["status"] == "failed"
    assert record["errorsByKind"] == {"graphUnavailable": 1}


async def test_a_run_whose_start_moves_is_still_stored_once(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    run = {
        "activityIdentifier": "run-1",
        "state": "Succeeded",
        "countImported": 1,
        "timeBegan": "2026-11-25T10:00:00Z",
        "timeEnded": "2026-11-25T10:01:00Z",
    }
    demo_emulator.set_tenant(static_tenant(run))
    await run_poll(trigger="test")
    demo_emulator.set_tenant(static_tenant({**run, "timeBegan": "2026-11-25T09:59:00Z"}))
    await run_poll(trigger="test")
    stored = await all_executions(api, "11111111-2222-3333-4444-555555555555", "scim.static.1")
    assert [(r["activityIdentifier"], r["timeBegan"]) for r in stored] == [("run-1", "2026-11-25T09:59:00Z")]
    summary = (await api.get("/api/v1/summary")).json()
    assert summary["executions"] == {"total": 1, "byState": {"Succeeded": 1}}


async def test_a_malformed_job_is_recorded_and_skipped_and_the_rest_are_stored(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    tenant = static_tenant(None)
    tenant["servicePrincipals"][0]["jobs"].extend([{"templateId": "no-id"}, "not an object"])
    demo_emulator.set_tenant(tenant)
    record = await run_poll(trigger="test")
    assert record["status"] == "partial"
    assert record["jobsRead"] == 1 and record["jobsSkipped"] == 2
    assert record["errorsByKind"] == {"malformedJob": 2}
    jobs = (await api.get("/api/v1/jobs")).json()["value"]
    assert [job["jobId"] for job in jobs] == ["scim.static.1"]
