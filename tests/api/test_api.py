"""The HTTP API's contract over the demo tenant: filters, sorting, paging, tokens, ETags, CSV,
problem+json errors and the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from shared.domain.model import HEALTH_VALUES
from tests.support.api import api_client, follow, job_path, polls_apart, seeded


@pytest.fixture(scope="module")
def demo_tables(azurite: AzuriteServer, emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    with seeded(azurite, emulator, polls_apart(6)) as env:
        yield env


@pytest.fixture
async def api(demo_tables: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


@pytest.fixture
async def jobs(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/jobs")
    assert response.status_code == 200
    return list(response.json()["value"])


async def busiest_job(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    counts = []
    for job in jobs:
        response = await api.get(job_path(job) + "/executions", params={"top": 1000})
        counts.append(len(response.json()["value"]))
    return jobs[counts.index(max(counts))]


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


# ------------------------------------------------------------ /jobs: filters, order, paging


async def test_every_job_has_health_and_readable_reasons(jobs: list[dict[str, Any]]) -> None:
    assert {job["health"] for job in jobs} >= {"quarantined", "notRun", "paused", "healthy", "failing"}
    quarantined = [job for job in jobs if job["health"] == "quarantined"]
    assert all(job["healthReasons"][0].startswith("quarantined") for job in quarantined)


@pytest.mark.parametrize("health", ["quarantined", "healthy", "notRun"])
async def test_health_filter(api: httpx.AsyncClient, jobs: list[dict[str, Any]], health: str) -> None:
    page = (await api.get("/api/v1/jobs", params={"health": health})).json()
    expected = [job["jobId"] for job in jobs if job["health"] == health]
    assert expected and [job["jobId"] for job in page["value"]] == expected
    assert page["count"] == len(expected)


async def test_health_filter_takes_several_values(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    page = (await api.get("/api/v1/jobs", params=[("health", "failing"), ("health", "paused")])).json()
    assert [job["jobId"] for job in page["value"]] == [
        job["jobId"] for job in jobs if job["health"] in ("failing", "paused")
    ]


async def test_status_code_filter_ignores_case(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    page = (await api.get("/api/v1/jobs", params={"statusCode": "quarantine"})).json()
    assert page["value"] and {job["statusCode"] for job in page["value"]} == {"Quarantine"}
    assert page["count"] == sum(job["statusCode"] == "Quarantine" for job in jobs)


async def test_template_filter(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    page = (await api.get("/api/v1/jobs", params={"templateId": "AD2AADProvisioning"})).json()
    assert len(page["value"]) == sum(job["templateId"] == "AD2AADProvisioning" for job in jobs) >= 2


async def test_name_search_matches_part_of_the_name_in_any_case(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]]
) -> None:
    page = (await api.get("/api/v1/jobs", params={"q": "CONTOSO"})).json()
    names = {job["servicePrincipalName"] for job in page["value"]}
    assert names and all("contoso" in name.lower() for name in names)
    assert page["count"] == sum("contoso" in (job["servicePrincipalName"] or "").lower() for job in jobs)


async def test_filters_combine(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    page = (await api.get("/api/v1/jobs", params={"q": "contoso", "health": "healthy"})).json()
    expected = [
        job["jobId"]
        for job in jobs
        if job["health"] == "healthy" and "contoso" in (job["servicePrincipalName"] or "").lower()
    ]
    assert expected and [job["jobId"] for job in page["value"]] == expected


async def test_a_filter_matching_nothing_is_an_empty_list(api: httpx.AsyncClient) -> None:
    for params in ({"statusCode": "' or 1 eq 1 or '"}, {"q": "no such app"}, {"templateId": "PartitionKey ne ''"}):
        page = (await api.get("/api/v1/jobs", params=params)).json()
        assert page == {"value": [], "count": 0, "nextLink": None}


async def test_default_order_is_by_name(jobs: list[dict[str, Any]]) -> None:
    names = [(job["servicePrincipalName"] or "").lower() for job in jobs]
    assert names == sorted(names)


async def test_sort_by_health_puts_the_worst_first(api: httpx.AsyncClient) -> None:
    page = (await api.get("/api/v1/jobs", params={"sort": "health"})).json()["value"]
    ranks = [HEALTH_VALUES.index(job["health"]) for job in page]
    assert ranks == sorted(ranks) and page[0]["health"] == "quarantined"
    reverse = (await api.get("/api/v1/jobs", params={"sort": "health", "order": "desc"})).json()["value"]
    assert [HEALTH_VALUES.index(job["health"]) for job in reverse] == sorted(ranks, reverse=True)


async def test_sort_by_last_run_newest_first(api: httpx.AsyncClient) -> None:
    page = (await api.get("/api/v1/jobs", params={"sort": "lastRun", "order": "desc"})).json()["value"]
    began = [(job["lastExecution"] or {}).get("timeBegan") or "" for job in page]
    assert began == sorted(began, reverse=True) and began[0]


@pytest.mark.parametrize("sort", ["name", "health", "statusCode", "escrowed"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_paging_jobs_to_the_end_loses_and_repeats_nothing(api: httpx.AsyncClient, sort: str, order: str) -> None:
    whole = (await api.get("/api/v1/jobs", params={"sort": sort, "order": order})).json()
    assert whole["nextLink"] is None
    first = await api.get("/api/v1/jobs", params={"sort": sort, "order": order, "top": 3})
    assert first.json()["count"] == whole["count"] and len(first.json()["value"]) == 3
    paged = await follow(api, str(first.request.url))
    assert [job["jobId"] for job in paged] == [job["jobId"] for job in whole["value"]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"health": "sick"}, "health"),
        ({"sort": "size"}, "sort"),
        ({"order": "up"}, "order"),
        ({"top": "0"}, "top"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_a_bad_jobs_parameter_is_a_400_naming_it(
    api: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    assert_problem(await api.get("/api/v1/jobs", params=params), 400, named)


# ------------------------------------------------------------ one job


async def test_job_detail_has_the_job_its_latest_runs_and_its_timeline(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]]
) -> None:
    job = await busiest_job(api, jobs)
    detail = (await api.get(job_path(job))).json()
    assert detail["job"]["jobId"] == job["jobId"]
    assert job["lastExecution"]["activityIdentifier"] in [run["activityIdentifier"] for run in detail["executions"]]
    assert detail["events"] and detail["events"][-1]["kind"] == "jobAppeared"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/nope/nope",
        "/api/v1/jobs/nope/nope/executions",
        "/api/v1/jobs/x'%20or%20'1'%3D'1/y/executions",
        "/api/v1/jobs/%23/%3F/executions",
        "/api/v1/jobs/a%7Cb/c",
    ],
)
async def test_an_unknown_job_is_a_404_problem(api: httpx.AsyncClient, path: str) -> None:
    assert_problem(await api.get(path), 404, "/api/v1/jobs")


# ------------------------------------------------------------ a job's executions


async def test_paging_executions_to_the_end_loses_and_repeats_nothing(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]]
) -> None:
    job = await busiest_job(api, jobs)
    everything = (await api.get(job_path(job) + "/executions", params={"top": 1000})).json()
    assert everything["nextLink"] is None and len(everything["value"]) >= 3
    paged = await follow(api, job_path(job) + "/executions?top=1")
    assert [run["activityIdentifier"] for run in paged] == [run["activityIdentifier"] for run in everything["value"]]


async def test_executions_filter_by_state_and_time(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    job = await busiest_job(api, jobs)
    runs = (await api.get(job_path(job) + "/executions", params={"top": 1000})).json()["value"]
    state = runs[0]["state"]
    by_state = (await api.get(job_path(job) + "/executions", params={"state": state.lower()})).json()["value"]
    assert [r["activityIdentifier"] for r in by_state] == [r["activityIdentifier"] for r in runs if r["state"] == state]
    newest, oldest = runs[0]["timeBegan"], runs[-1]["timeBegan"]
    window = (await api.get(job_path(job) + "/executions", params={"from": oldest, "to": newest})).json()["value"]
    assert [r["activityIdentifier"] for r in window] == [r["activityIdentifier"] for r in runs[1:]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"top": "0"}, "top"),
        ({"top": "1001"}, "top"),
        ({"top": "ten"}, "top"),
        ({"top": ""}, "top"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}, "earlier"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_a_bad_executions_parameter_is_a_400_naming_it(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]], params: dict[str, str], named: str
) -> None:
    assert_problem(await api.get(job_path(jobs[0]) + "/executions", params=params), 400, named)


# ------------------------------------------------------------ continuation tokens


async def next_link_of(api: httpx.AsyncClient, url: str, **params: Any) -> str:
    next_link = (await api.get(url, params={"top": 1, **params})).json()["nextLink"]
    assert next_link
    return str(next_link)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["continuation"][0]


@pytest.mark.parametrize("token", ["garbage", "eyJ2IjoxLCJhZnRlciI6Ii4uLyJ9", "e30", "a.b", "%00", "x" * 3000])
async def test_a_forged_continuation_is_a_400_problem(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]], token: str
) -> None:
    assert_problem(await api.get(job_path(jobs[0]) + "/executions", params={"continuation": token}), 400)


async def test_a_changed_or_cut_token_is_refused(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    job = await busiest_job(api, jobs)
    link = await next_link_of(api, job_path(job) + "/executions")
    token = token_of(link)
    assert (await api.get(link)).status_code == 200
    payload, mac = token.split(".")
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    for bad in (f"{flipped}.{mac}", token[:-3], payload, f"{payload}.{mac[::-1]}"):
        url = job_path(job) + "/executions"
        assert_problem(await api.get(url, params={"top": 1, "continuation": bad}), 400, "start again")


async def test_a_token_pages_only_the_query_it_came_from(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    job = await busiest_job(api, jobs)
    token = token_of(await next_link_of(api, job_path(job) + "/executions"))
    other = next(j for j in jobs if j["jobId"] != job["jobId"])
    elsewhere = [
        (job_path(other) + "/executions", {}),  # another job
        (job_path(job) + "/executions", {"state": "Failed"}),  # another filter
        ("/api/v1/executions", {}),  # another endpoint
        ("/api/v1/jobs", {}),
    ]
    for url, params in elsewhere:
        assert_problem(await api.get(url, params={"continuation": token, **params}), 400, "another query")


def query_names(url: str) -> set[str]:
    return {name.lower() for name in parse_qs(urlsplit(url).query, keep_blank_values=True)}


@pytest.mark.parametrize("key_parameter", ["code", "Code"])  # the Functions host reads it in any case
async def test_the_function_key_in_a_request_is_never_copied_into_next_link_or_link(
    api: httpx.AsyncClient, jobs: list[dict[str, Any]], key_parameter: str
) -> None:
    """A portal that sent `?code=` does not find its key in the URLs the API hands back (which
    end up in logs, caches and shared links); it pages on with x-functions-key."""
    key = "the-callers-function-key"
    job = await busiest_job(api, jobs)
    wide = {"from": "2000-01-01", "to": "2100-01-01"}
    pages = [("/api/v1/jobs", {}, False), (job_path(job) + "/executions", {}, True), ("/api/v1/executions", wide, True)]
    for url, params, has_csv in pages:
        asked = {"top": 1, key_parameter: key, **params}
        next_link = (await api.get(url, params=asked)).json()["nextLink"]
        handed_out = [next_link]
        if has_csv:
            link = (await api.get(url, params={**asked, "format": "csv"})).headers["link"]
            handed_out.append(link.removeprefix("<").removesuffix('>; rel="next"'))
        for handed in handed_out:
            assert key not in handed and "code" not in query_names(handed), handed
            assert {"top", "continuation"} | set(params) <= query_names(handed), "the rest of the query stays"
        assert (await api.get(next_link)).status_code == 200


# ------------------------------------------------------------ ETag, 304, Cache-Control


@pytest.fixture
def frozen_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers hold still within a minute; hold the minute, so no test straddles two."""
    import shared.api.deps

    minute = shared.api.deps.minute()
    monkeypatch.setattr(shared.api.deps, "minute", lambda now=None: minute)


@pytest.mark.usefixtures("frozen_minute")
@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs", "/api/v1/summary", "/api/v1/summary?window=7d", "/api/v1/executions", "/api/openapi.json"],
)
async def test_if_none_match_answers_304_without_a_body(api: httpx.AsyncClient, path: str) -> None:
    first = await api.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "private, max-age=30"
    assert (await api.get(path)).headers["etag"] == etag  # the same answer, the same tag
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await api.get(path, headers={"If-None-Match": if_none_match})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and "cache-control" in again.headers
    changed = await api.get(path, headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200 and changed.content == first.content


async def test_a_different_answer_has_a_different_etag(api: httpx.AsyncClient) -> None:
    everything = await api.get("/api/v1/jobs")
    some = await api.get("/api/v1/jobs", params={"health": "healthy"})
    assert everything.headers["etag"] != some.headers["etag"]


# ------------------------------------------------------------ CSV


async def test_executions_as_csv(api: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> None:
    job = await busiest_job(api, jobs)
    url = job_path(job) + "/executions"
    as_json = (await api.get(url, params={"top": 2})).json()
    for response in (
        await api.get(url, params={"top": 2, "format": "csv"}),
        await api.get(url, params={"top": 2}, headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["activityIdentifier"] for row in rows] == [r["activityIdentifier"] for r in as_json["value"]]
        assert {"timeBegan", "countEscrowed", "errorCode", "errorMessage", "errorTenantActionable"} <= set(rows[0])
        link = response.headers["link"]
        assert link.startswith("<http") and link.endswith('>; rel="next"')
        assert "continuation=" in link
    prefers_json = await api.get(url, headers={"Accept": "application/json, text/csv;q=0.5"})
    assert prefers_json.headers["content-type"] == "application/json"


async def test_tenant_wide_csv_names_the_job(api: httpx.AsyncClient) -> None:
    wide = {"from": "2000-01-01", "to": "2100-01-01", "top": 5}
    as_json = (await api.get("/api/v1/executions", params=wide)).json()["value"]
    response = await api.get("/api/v1/executions", params={**wide, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["servicePrincipalName"], r["jobId"], r["activityIdentifier"]) for r in rows] == [
        (r["servicePrincipalName"], r["jobId"], r["activityIdentifier"]) for r in as_json
    ]


# ------------------------------------------------------------ errors and the document


async def test_unknown_routes_and_methods_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v1/nothing-here"), 404)
    refused = assert_problem(await api.post("/api/v1/jobs"), 405)
    assert refused["title"] == "Method not allowed"
    assert (await api.delete("/api/v1/summary")).headers["allow"] == "GET"


async def test_a_bad_summary_window_is_a_400(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v1/summary", params={"window": "1y"}), 400, "window")


async def test_openapi_document_describes_every_endpoint_exactly(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/openapi.json")).json()
    assert set(document["paths"]) >= {
        "/api/v1/jobs",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}/executions",
        "/api/v1/executions",
        "/api/v1/summary",
        "/api/health",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, path
            for status, response in responses.items():
                if status.startswith("4"):
                    assert set(response["content"]) == {"application/problem+json"}, (path, status)
            if path.startswith("/api/v1/"):
                assert {"401", "403"} <= set(responses), path
                if method == "get":
                    assert "304" in responses and "ETag" in responses["200"]["headers"]
    for path in ("/api/v1/executions", "/api/v1/jobs/{servicePrincipalId}/{jobId}/executions"):
        assert set(document["paths"][path]["get"]["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert names >= {"from", "to", "state", "top", "continuation", "format"}
    jobs_parameters = {p["name"] for p in document["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert jobs_parameters >= {"health", "statusCode", "templateId", "q", "sort", "order", "top", "continuation"}
    execution = document["components"]["schemas"]["Execution"]["properties"]
    assert {"activityIdentifier", "countEscrowedRaw", "timeBegan", "durationSeconds"} <= set(execution)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_misconfiguration_is_a_503_that_names_the_setting_in_the_log_only(
    demo_tables: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody is authorized before the settings are read: the caller learns nothing of them."""
    monkeypatch.setenv("AZURE_TENANT_ID", "not a tenant!")
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/jobs")
    assert_problem(response, 503, "misconfigured", "log")
    assert "AZURE_TENANT_ID" not in response.text and "not a tenant" not in response.text
    assert "AZURE_TENANT_ID" in caplog.text
