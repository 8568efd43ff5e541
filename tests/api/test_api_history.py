"""Queries whose answers are known: a hand-made tenant whose runs fall on known days, served
poll by poll, then read back through the time-window endpoints and the summary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import EmulatorServer
from shared.api.routes import executions
from shared.poll import run_poll
from shared.storage.store import Store
from tests.support.api import api_client, follow, seeded
from tests.support.tenants import at, job, run, tenant

SCIM_SP = "11111111-2222-3333-4444-555555555555"
HR_SP = "66666666-7777-8888-9999-000000000000"
NOW = datetime.now(UTC).replace(microsecond=0)
RUNS = {
    "a1": run("a1", NOW - timedelta(hours=74), countImported=10, countExported=5, countEscrowed=0),
    "a2": run("a2", NOW - timedelta(hours=50), "Failed", countImported=4),
    "a3": run("a3", NOW - timedelta(hours=26), "EntryLevelErrors", countEscrowed=7, countExported=3),
    "a4": run("a4", NOW - timedelta(minutes=30), countExported=2),
    "b1": run("b1", NOW - timedelta(hours=49), "Failed"),
    "b2": run("b2", NOW - timedelta(minutes=60), "Failed"),
}
QUARANTINE = {
    "reason": "EncounteredQuarantineException",
    "currentBegan": at(NOW - timedelta(hours=1)),
    "seriesBegan": at(NOW - timedelta(hours=5)),
    "nextAttempt": at(NOW + timedelta(hours=5)),
    "seriesCount": 2,
    "error": {"code": "CredentialsInvalid", "message": "The target rejected the credentials"},
}
NEWEST_FIRST = sorted(RUNS, key=lambda name: RUNS[name]["timeBegan"], reverse=True)
JOB_OF = {name: ("scim.a" if name.startswith("a") else "workday.b") for name in RUNS}


def state_of(scim_run: str, hr_run: str, quarantined: bool = False) -> dict[str, Any]:
    hr = (
        job("workday.b", "Workday2AAD", RUNS[hr_run], code="Quarantine", quarantine=QUARANTINE)
        if quarantined
        else job("workday.b", "Workday2AAD", RUNS[hr_run])
    )
    return tenant(
        (SCIM_SP, "Contoso SCIM", [job("scim.a", "scim", RUNS[scim_run])]),
        (HR_SP, "Fabrikam HR", [hr]),
    )


async def _history(emulator: EmulatorServer) -> None:
    for state in (state_of("a1", "b1"), state_of("a2", "b1"), state_of("a3", "b2"), state_of("a4", "b2", True)):
        emulator.set_tenant(state)
        record = await run_poll(trigger="test")
        assert record["status"] == "succeeded", record


@pytest.fixture(scope="module")
def history(azurite: AzuriteServer, emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    with seeded(azurite, emulator, _history) as env:
        yield env


@pytest.fixture
async def api(history: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


def names(runs: list[dict[str, Any]]) -> list[str]:
    return [r["activityIdentifier"] for r in runs]


WIDE = {"from": at(NOW - timedelta(days=4)), "to": at(NOW + timedelta(minutes=1))}


# ------------------------------------------------------------ tenant-wide runs


async def test_the_feed_defaults_to_the_last_24_hours(api: httpx.AsyncClient) -> None:
    page = (await api.get("/api/v1/executions")).json()
    assert names(page["value"]) == ["a4", "b2"]
    assert page["nextLink"] is None
    window_from = datetime.fromisoformat(page["window"]["from"].replace("Z", "+00:00"))
    window_to = datetime.fromisoformat(page["window"]["to"].replace("Z", "+00:00"))
    assert window_to - window_from == timedelta(hours=24)
    assert 0 <= (window_to - datetime.now(UTC)).total_seconds() <= 61  # to the end of this minute


async def test_the_feed_is_every_run_newest_first_with_its_job(api: httpx.AsyncClient) -> None:
    page = (await api.get("/api/v1/executions", params=WIDE)).json()
    assert names(page["value"]) == NEWEST_FIRST
    for item in page["value"]:
        assert item["jobId"] == JOB_OF[item["activityIdentifier"]]
        assert item["servicePrincipalName"] == ("Contoso SCIM" if item["jobId"] == "scim.a" else "Fabrikam HR")
    assert page["window"] == WIDE


@pytest.mark.parametrize("top", [1, 2, 4])
async def test_paging_the_feed_across_days_loses_and_repeats_nothing(api: httpx.AsyncClient, top: int) -> None:
    first = await api.get("/api/v1/executions", params={**WIDE, "top": top})
    assert len(first.json()["value"]) == top and first.json()["nextLink"]
    assert names(await follow(api, str(first.request.url))) == NEWEST_FIRST


async def test_a_default_window_is_pinned_in_the_next_link(api: httpx.AsyncClient) -> None:
    first = (await api.get("/api/v1/executions", params={"top": 1})).json()
    assert "from=" in first["nextLink"] and "to=" in first["nextLink"]
    rest = await follow(api, first["nextLink"])
    assert names(first["value"] + rest) == ["a4", "b2"]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["Failed"], ["b2", "b1", "a2"]),
        (["failed"], ["b2", "b1", "a2"]),
        (["Failed", "EntryLevelErrors"], ["b2", "a3", "b1", "a2"]),
        (["unknownFutureValue"], []),
    ],
)
async def test_the_failure_feed(api: httpx.AsyncClient, states: list[str], expected: list[str]) -> None:
    params = [*WIDE.items(), *(("state", s) for s in states)]
    assert names((await api.get("/api/v1/executions", params=params)).json()["value"]) == expected
    paged = await follow(api, str(httpx.URL("/api/v1/executions", params=[*params, ("top", "1")])))
    assert names(paged) == expected


@pytest.mark.parametrize("state", ["PartialSuccess", "Failed ", "' or state ne '", "Failed,Succeeded", "\u0000"])
@pytest.mark.parametrize("path", ["/api/v1/executions", f"/api/v1/jobs/{SCIM_SP}/scim.a/executions"])
async def test_a_state_that_is_not_a_run_state_is_a_400_listing_the_known_ones(
    api: httpx.AsyncClient, path: str, state: str
) -> None:
    """A typo would otherwise match nothing, and look like a tenant with no failures."""
    response = await api.get(path, params=[("state", "Failed"), ("state", state)])
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "state must be one of Succeeded, Failed, EntryLevelErrors, unknownFutureValue" in detail


@pytest.fixture
def table_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The days each feed request read from RunsByTime and TenantDays, counted at the Store."""
    reads: dict[str, list[str]] = {"runs": [], "rollups": []}
    runs_page, run_days = Store.runs_by_time_page, Store.run_days

    async def counted_runs(self: Store, day: str, **kwargs: Any) -> Any:
        reads["runs"].append(day)
        return await runs_page(self, day, **kwargs)

    async def counted_days(self: Store, first_day: str | None = None, last_day: str | None = None) -> Any:
        assert first_day and last_day, "a bounded range of rollups"
        reads["rollups"].extend([first_day, last_day])
        return await run_days(self, first_day, last_day)

    monkeypatch.setattr(Store, "runs_by_time_page", counted_runs)
    monkeypatch.setattr(Store, "run_days", counted_days)
    return reads


async def test_a_window_from_year_one_reads_only_the_days_with_history(
    api: httpx.AsyncClient, table_reads: dict[str, list[str]]
) -> None:
    """from=0001-01-01 starts at the first day anything was rolled up: one page, a few reads."""
    params = {"from": "0001-01-01", "state": "Failed"}
    page = (await api.get("/api/v1/executions", params=params)).json()
    assert names(page["value"]) == ["b2", "b1", "a2"] and page["nextLink"] is None
    first_day = RUNS["a1"]["timeBegan"][:10]
    assert table_reads["rollups"] == [first_day, NOW.date().isoformat()]
    assert len(table_reads["runs"]) <= 3, table_reads  # the days with failures, and today


@pytest.mark.parametrize("days_per_page", [1, 2])
async def test_each_feed_request_looks_at_a_bounded_number_of_days(
    api: httpx.AsyncClient, table_reads: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, days_per_page: int
) -> None:
    """However long the window, one request reads at most FEED_DAYS_PER_PAGE days and goes on
    by nextLink, with a short or empty page if it must: nothing lost, nothing twice."""
    monkeypatch.setattr(executions, "FEED_DAYS_PER_PAGE", days_per_page)
    url: str | None = str(httpx.URL("/api/v1/executions", params={"from": "0001-01-01", "top": 1000}))
    seen: list[str] = []
    pages = 0
    while url:
        table_reads["runs"].clear()
        page = (await api.get(url)).json()
        assert len(set(table_reads["runs"])) <= days_per_page, table_reads
        seen += names(page["value"])
        url, pages = page["nextLink"], pages + 1
    assert seen == NEWEST_FIRST
    history_days = (NOW.date() - date.fromisoformat(RUNS["a1"]["timeBegan"][:10])).days + 1
    assert pages == -(-history_days // days_per_page)


async def test_from_is_inclusive_and_to_exclusive(api: httpx.AsyncClient) -> None:
    window = {"from": RUNS["a2"]["timeBegan"], "to": RUNS["a3"]["timeBegan"]}
    assert names((await api.get("/api/v1/executions", params=window)).json()["value"]) == ["b1", "a2"]
    as_dates = {"from": (NOW - timedelta(days=10)).date().isoformat(), "to": "2999-01-01"}
    assert names((await api.get("/api/v1/executions", params=as_dates)).json()["value"]) == NEWEST_FIRST


async def test_offsets_are_read_as_the_same_instant(api: httpx.AsyncClient) -> None:
    began = datetime.fromisoformat(RUNS["a3"]["timeBegan"].replace("Z", "+00:00"))
    plus_two = began.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=2)
    window = {"from": plus_two.strftime("%Y-%m-%dT%H:%M:%S+02:00"), "to": at(NOW)}
    assert names((await api.get("/api/v1/executions", params=window)).json()["value"]) == ["a4", "b2", "a3"]


async def test_an_empty_window_is_a_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/executions", params={"from": WIDE["to"], "to": WIDE["from"]})
    assert response.status_code == 400 and "earlier" in response.json()["detail"]
    assert (await api.get("/api/v1/executions", params={"from": at(NOW + timedelta(days=1))})).status_code == 400


# ------------------------------------------------------------ one job's runs in a window


async def test_a_jobs_runs_by_window_and_state(api: httpx.AsyncClient) -> None:
    url = f"/api/v1/jobs/{SCIM_SP}/scim.a/executions"
    assert names((await api.get(url)).json()["value"]) == ["a4", "a3", "a2", "a1"]
    window = {"from": RUNS["a2"]["timeBegan"], "to": RUNS["a4"]["timeBegan"]}
    assert names((await api.get(url, params=window)).json()["value"]) == ["a3", "a2"]
    assert names((await api.get(url, params={"state": "Failed"})).json()["value"]) == ["a2"]
    assert names((await api.get(url, params={"from": RUNS["a4"]["timeBegan"]})).json()["value"]) == ["a4"]
    assert names(await follow(api, url + f"?top=1&to={RUNS['a4']['timeBegan']}")) == ["a3", "a2", "a1"]


# ------------------------------------------------------------ the summary


def counted(first_day: date | None) -> dict[str, Any]:
    runs = [r for r in RUNS.values() if first_day is None or r["timeBegan"][:10] >= first_day.isoformat()]
    by_state: dict[str, int] = {}
    for r in runs:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    return {
        "executions": {"total": len(runs), "byState": by_state},
        "executionTotals": {
            "countImported": sum(r.get("countImported", 0) for r in runs),
            "countExported": sum(r.get("countExported", 0) for r in runs),
            "countEscrowed": sum(r.get("countEscrowed", 0) for r in runs),
            "successRate": round(by_state.get("Succeeded", 0) / len(runs), 4) if runs else None,
        },
    }


async def test_summary_without_a_window_counts_all_history(api: httpx.AsyncClient) -> None:
    summary = (await api.get("/api/v1/summary")).json()
    assert {k: summary[k] for k in ("executions", "executionTotals")} == counted(None)
    assert summary["executions"] == {"total": 6, "byState": {"Succeeded": 2, "Failed": 3, "EntryLevelErrors": 1}}
    assert summary["window"] is None and summary["topFailingJobs"] is None and summary["topEscrowedJobs"] is None
    assert summary["jobs"] == {
        "total": 2,
        "byStatusCode": {"Active": 1, "Quarantine": 1},
        "byHealth": {"healthy": 1, "quarantined": 1},
    }
    assert summary["lastPoll"]["status"] == "succeeded"


@pytest.mark.parametrize(("window", "days"), [("24h", 1), ("7d", 7), ("30d", 30), ("90d", 90)])
async def test_summary_of_a_window_counts_the_days_overlapping_it(
    api: httpx.AsyncClient, window: str, days: int
) -> None:
    summary = (await api.get("/api/v1/summary", params={"window": window})).json()
    first_day = (datetime.now(UTC) - timedelta(days=days)).date()
    assert {k: summary[k] for k in ("executions", "executionTotals")} == counted(first_day)
    assert summary["window"]["name"] == window
    assert summary["window"]["from"] == f"{first_day.isoformat()}T00:00:00Z"
    assert summary["window"]["days"] == days + 1


async def test_summary_ranks_failing_and_escrow_heavy_jobs(api: httpx.AsyncClient) -> None:
    summary = (await api.get("/api/v1/summary", params={"window": "7d"})).json()
    failing = [(j["jobId"], j["failedRuns"], j["runs"]) for j in summary["topFailingJobs"]]
    assert failing == [("workday.b", 2, 2), ("scim.a", 1, 4)]
    assert summary["topFailingJobs"][0]["health"] == "quarantined"
    assert summary["topFailingJobs"][0]["servicePrincipalName"] == "Fabrikam HR"
    assert [(j["jobId"], j["countEscrowed"]) for j in summary["topEscrowedJobs"]] == [("scim.a", 7)]
    assert summary["topEscrowedJobs"][0]["byState"] == {"Succeeded": 2, "Failed": 1, "EntryLevelErrors": 1}


async def test_summary_lists_quarantined_jobs_with_their_time_in_quarantine(api: httpx.AsyncClient) -> None:
    [quarantined] = (await api.get("/api/v1/summary")).json()["quarantinedJobs"]
    assert quarantined["jobId"] == "workday.b" and quarantined["reason"] == "EncounteredQuarantineException"
    assert quarantined["since"] == QUARANTINE["seriesBegan"]
    assert quarantined["nextAttempt"] == QUARANTINE["nextAttempt"]
    expected = (datetime.now(UTC) - (NOW - timedelta(hours=5))).total_seconds()
    assert quarantined["secondsInQuarantine"] % 60 == 0
    assert abs(quarantined["secondsInQuarantine"] - expected) <= 120


async def test_health_after_polls_is_200_and_says_nothing_about_the_tenant(
    api: httpx.AsyncClient, history: dict[str, str]
) -> None:
    response = await api.get("/api/health")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "healthy" and body["lastPoll"]["status"] == "succeeded"
    assert body["lastSuccessfulPollAgeSeconds"] < 300 and body["maxAgeSeconds"] == 2 * 300 + 480
    for secret in (history["AZURE_TENANT_ID"], SCIM_SP, HR_SP, "Contoso", "Fabrikam", "scim.a"):
        assert secret not in response.text
