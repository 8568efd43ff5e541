"""Hostile HTTP input: odd path segments, OData operators, huge and malformed parameters,
forged continuations. Always a 400 or 404 problem, never a 500, never another job's data."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from shared.poll import run_poll


@pytest.fixture
async def api(app_env: dict[str, str], demo_emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    await run_poll(trigger="test")
    demo_emulator.advance_clock(3 * 3600)
    await run_poll(trigger="test")
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code and body["title"]
    return body


HOSTILE_SEGMENTS = [
    "'",
    "x' or '1' eq '1",
    "PartitionKey ne ''",
    "%23",
    "%3F",
    "a%2Fb",
    "%00",
    "%C0%AE%C0%AE",
    "%2E%2E",
    "*",
    "x" * 5000,
    quote("\u202e\u0000"),
]


@pytest.mark.parametrize("segment", HOSTILE_SEGMENTS)
async def test_hostile_path_segments_are_404_or_400(api: httpx.AsyncClient, segment: str) -> None:
    jobs = (await api.get("/api/v1/jobs")).json()["value"]
    real = jobs[0]
    sp = quote(real["servicePrincipalId"], safe="")
    for path in (
        f"/api/v1/jobs/{segment}/{segment}",
        f"/api/v1/jobs/{sp}/{segment}",
        f"/api/v1/jobs/{segment}/{quote(real['jobId'], safe='')}/executions",
    ):
        response = await api.get(path)
        if response.status_code == 200:  # only a real job may answer, and only with itself
            pytest.fail(f"{path} answered 200: {response.text[:200]}")
        assert_problem(response, 400, 404, 405)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/jobs", {"health": "healthy' or 1 eq 1"}),
        ("/api/v1/jobs", {"sort": "PartitionKey"}),
        ("/api/v1/jobs", {"top": "99999999999999999999"}),
        ("/api/v1/jobs", {"q": "x" * 6000}),
        ("/api/v1/executions", {"from": "yesterday"}),
        ("/api/v1/executions", {"from": "2026-11-25T00:00:00Z", "to": "2020-01-01T00:00:00Z"}),
        ("/api/v1/executions", {"state": "Failed' or '1' eq '1", "top": "0"}),
        ("/api/v1/executions", {"continuation": "eyJ2IjoxfQ"}),
        ("/api/v1/summary", {"window": "1y"}),
        ("/api/v1/summary", {"window": "24h' or 1 eq 1"}),
    ],
)
async def test_malformed_or_hostile_parameters_are_a_400(api: httpx.AsyncClient, path: str, params: dict) -> None:
    body = assert_problem(await api.get(path, params=params), 400)
    assert body["detail"]  # says why


async def test_a_continuation_cannot_be_moved_to_another_job(api: httpx.AsyncClient) -> None:
    jobs = [job for job in (await api.get("/api/v1/jobs")).json()["value"] if job["lastExecution"]]

    def url(job: dict[str, Any]) -> str:
        return f"/api/v1/jobs/{quote(job['servicePrincipalId'], safe='')}/{quote(job['jobId'], safe='')}/executions"

    pages = [(job, (await api.get(url(job), params={"top": 1})).json()) for job in jobs]
    first, page = next((job, page) for job, page in pages if page["nextLink"])
    second = next(job for job in jobs if job is not first)
    token = httpx.URL(page["nextLink"]).params["continuation"]
    assert_problem(await api.get(url(second), params={"top": 1, "continuation": token}), 400)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_problem(await api.get(url(first), params={"top": 1, "continuation": tampered}), 400)
    forged = base64.urlsafe_b64encode(json.dumps({"v": 1, "after": "0" * 19 + "|x"}).encode()).decode()
    assert_problem(await api.get(url(first), params={"continuation": forged}), 400)
