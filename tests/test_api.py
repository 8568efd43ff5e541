"""The HTTP API's contract: problem+json errors, paging, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api import create_app
from shared.poll import run_poll


@pytest.fixture
async def polled_api(app_env: dict[str, str], demo_emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    await run_poll(trigger="test")
    demo_emulator.advance_clock(6 * 3600)
    await run_poll(trigger="test")
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def busiest_job(api: httpx.AsyncClient) -> dict[str, Any]:
    """The job with the most stored runs."""
    jobs = (await api.get("/api/v1/jobs")).json()["value"]
    counts = {}
    for index, job in enumerate(jobs):
        response = await api.get(executions_url(job), params={"top": 1000})
        counts[index] = len(response.json()["value"])
    return jobs[max(counts, key=lambda index: counts[index])]


def executions_url(job: dict[str, Any]) -> str:
    return f"/api/v1/jobs/{quote(job['servicePrincipalId'], safe='')}/{quote(job['jobId'], safe='')}/executions"


async def test_paging_to_the_end_loses_and_repeats_nothing(polled_api: httpx.AsyncClient) -> None:
    job = await busiest_job(polled_api)
    everything = (await polled_api.get(executions_url(job), params={"top": 1000})).json()
    assert everything["nextLink"] is None
    assert len(everything["value"]) >= 3
    paged: list[str] = []
    url: str | None = executions_url(job) + "?top=1"
    while url:
        page = (await polled_api.get(url)).json()
        paged.extend(run["activityIdentifier"] for run in page["value"])
        url = page["nextLink"]
    assert paged == [run["activityIdentifier"] for run in everything["value"]]


@pytest.mark.parametrize("top", ["0", "1001", "ten", "-1", ""])
async def test_a_bad_top_is_a_400_problem(polled_api: httpx.AsyncClient, top: str) -> None:
    job = await busiest_job(polled_api)
    response = await polled_api.get(executions_url(job), params={"top": top})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and "top" in problem["detail"]


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxLCJhZnRlciI6Ii4uLyJ9", "e30", "%00", "x" * 3000])
async def test_a_forged_continuation_is_a_400_problem(polled_api: httpx.AsyncClient, token: str) -> None:
    job = await busiest_job(polled_api)
    response = await polled_api.get(executions_url(job), params={"continuation": token})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/nope/nope",
        "/api/v1/jobs/nope/nope/executions",
        "/api/v1/jobs/x'%20or%20'1'%3D'1/y/executions",
        "/api/v1/jobs/%23/%3F/executions",
    ],
)
async def test_an_unknown_job_is_a_404_problem(polled_api: httpx.AsyncClient, path: str) -> None:
    response = await polled_api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_job_detail_has_the_job_and_its_latest_runs(polled_api: httpx.AsyncClient) -> None:
    job = await busiest_job(polled_api)
    detail = (await polled_api.get(executions_url(job).removesuffix("/executions"))).json()
    assert detail["job"]["jobId"] == job["jobId"]
    assert detail["executions"][0]["activityIdentifier"] == job["lastExecution"]["activityIdentifier"] or any(
        run["activityIdentifier"] == job["lastExecution"]["activityIdentifier"] for run in detail["executions"]
    )


async def test_health_reasons_are_readable(polled_api: httpx.AsyncClient) -> None:
    jobs = (await polled_api.get("/api/v1/jobs")).json()["value"]
    quarantined = [job for job in jobs if job["health"] == "quarantined"]
    assert quarantined
    assert all(job["healthReasons"][0].startswith("quarantined") for job in quarantined)
    assert {job["health"] for job in jobs} >= {"quarantined", "notRun", "paused", "healthy"}


async def test_openapi_document_describes_every_endpoint(polled_api: httpx.AsyncClient) -> None:
    document = (await polled_api.get("/api/openapi.json")).json()
    assert set(document["paths"]) >= {
        "/api/v1/jobs",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}/executions",
        "/api/v1/summary",
    }
    execution = document["components"]["schemas"]["Execution"]["properties"]
    assert {"activityIdentifier", "countEscrowedRaw", "timeBegan", "durationSeconds"} <= set(execution)


async def test_misconfiguration_is_a_503_naming_the_setting(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", "not-a-guid")
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/jobs")
    assert response.status_code == 503
    assert "AZURE_TENANT_ID" in response.json()["detail"]
