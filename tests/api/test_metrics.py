"""`GET /api/v1/metrics`, read back with prometheus_client's own parsers.

Two tenants polled into Azurite by the real pipeline: the emulator's demo tenant (home), and
a hand-made one whose service principal has a hostile display name (quotes, backslashes, a
newline, braces). The metrics must hold what the JSON endpoints say of the same tables, escape
every label so the parser reads it back exactly, keep each caller to its tenants, and answer to
the same caller checks as the rest of /api/v1. The Grafana dashboard may query only families
the endpoint serves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer
from shared import __version__
from shared.api.metrics_text import (
    OPENMETRICS_FORMAT,
    TEXT_FORMAT,
    Family,
    TenantFigures,
    metric_families,
    render,
    wants_openmetrics,
)
from shared.domain.model import HEALTH_VALUES
from shared.domain.timestamps import parse_timestamp
from tests.support.api import api_client, follow
from tests.support.env import app_settings, apply_settings
from tests.support.paths import ROOT
from tests.support.tenants import job, reset_to_demo, run, tenant

HOME = DEMO_TENANT_ID
OTHER = "22222222-3333-4444-5555-666666666666"
HOSTILE = 'Payroll "HR" \\ sync,{a="b"}\nline two \\n not a newline \\'
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
DASHBOARD = ROOT / "docs" / "grafana" / "entra-sync-monitor.json"
Samples = dict[str, list[Any]]


def hostile_tenant() -> dict[str, Any]:
    began = datetime.now(UTC) - timedelta(hours=1)
    escrowing = job("scim.hostile.1", "scim", run("run-hostile-1", began, "EntryLevelErrors", countEscrowed=3))
    return {**tenant(("aaaaaaaa-0000-0000-0000-000000000001", HOSTILE, [escrowing])), "tenantId": OTHER}


def principal(*roles: str) -> str:
    claims = [{"typ": "name", "val": "ada@contoso.com"}] + [{"typ": "roles", "val": role} for role in roles]
    raw = json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": ROLE_URI}).encode()
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def polled(azurite: AzuriteServer, emulator: EmulatorServer) -> Iterator[dict[str, str]]:
    """The demo tenant (its clock on the wall clock) and the hostile one, each polled once."""
    from shared.graph.reader import close_graph_reader
    from shared.poll import run_poll
    from shared.storage.store import close_store

    reset_to_demo(emulator)
    other = emulator.add_tenant(OTHER, hostile_tenant())
    tenants = [{"tenantId": OTHER, "displayName": "Hostile", "graphBaseUrl": other.base_url}]
    env = {
        **app_settings(azurite, emulator, prefix=f"met{uuid.uuid4().hex[:12]}"),
        "TENANTS": json.dumps(tenants),
    }
    with pytest.MonkeyPatch.context() as patch:
        apply_settings(patch, env)

        async def poll() -> dict[str, Any]:
            try:
                return await run_poll(trigger="test", tenants_inline=True)
            finally:
                await close_graph_reader()
                await close_store()

        result = asyncio.run(poll())
        assert {brief["tenantId"]: brief["status"] for brief in result["tenants"]} == {
            HOME: "succeeded",
            OTHER: "succeeded",
        }
        try:
            yield env
        finally:
            emulator.remove_tenant(OTHER)


@pytest.fixture
async def api(polled: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


def samples_of(text: str) -> Samples:
    """Every sample by its name, as prometheus_client's text parser reads it."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


async def scrape(api: httpx.AsyncClient, query: str = "", **headers: str) -> Samples:
    response = await api.get(f"/api/v1/metrics{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TEXT_FORMAT
    return samples_of(response.text)


def of_tenant(samples: list[Any], tenant_id: str) -> list[Any]:
    return [s for s in samples if s.labels["tenant"] == tenant_id]


def job_key(labels: dict[str, str]) -> tuple[str, str]:
    return labels["service_principal_id"], labels["job_id"]


# ------------------------------------------------------------ what the JSON endpoints say


async def test_every_job_has_exactly_its_health_as_the_jobs_endpoint_answers(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    jobs = await follow(api, f"/api/v1/jobs?tenant={HOME}")
    states: dict[tuple[str, str], dict[str, float]] = {}
    for sample in of_tenant(samples["entra_sync_job_health"], HOME):
        states.setdefault(job_key(sample.labels), {})[sample.labels["health"]] = sample.value
    assert set(states) == {(j["servicePrincipalId"], j["jobId"]) for j in jobs} and jobs
    for j in jobs:
        state = states[(j["servicePrincipalId"], j["jobId"])]
        assert set(state) == set(HEALTH_VALUES)
        assert [health for health, value in state.items() if value == 1] == [j["health"]]
        assert sum(state.values()) == 1
    assert {j["health"] for j in jobs} >= {"quarantined", "healthy"}  # the demo tenant has both


async def test_job_figures_equal_the_jobs_own(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    jobs = {(j["servicePrincipalId"], j["jobId"]): j for j in await follow(api, f"/api/v1/jobs?tenant={HOME}")}
    escrowed = {job_key(s.labels): s.value for s in of_tenant(samples["entra_sync_job_escrowed"], HOME)}
    expected = {
        key: j["lastExecution"]["countEscrowed"]
        for key, j in jobs.items()
        if j["lastExecution"] and j["lastExecution"]["countEscrowed"] is not None
    }
    assert escrowed == expected and any(expected.values())
    last_run = {
        job_key(s.labels): s.labels["state"]
        for s in of_tenant(samples["entra_sync_job_last_run_state"], HOME)
        if s.value == 1
    }
    assert set(last_run) == set(jobs)
    for key, j in jobs.items():
        state = (j["lastExecution"] or {}).get("state")
        assert last_run[key] == (state if state in ("Succeeded", "Failed", "EntryLevelErrors") else "unknown")
    for sample in of_tenant(samples["entra_sync_job_health"], HOME):
        j = jobs[job_key(sample.labels)]
        assert sample.labels["service_principal_name"] == j["servicePrincipalName"]
        assert sample.labels["template"] == (j["templateId"] or "")
    ages = {job_key(s.labels): s.value for s in of_tenant(samples["entra_sync_job_last_success_age_seconds"], HOME)}
    now = datetime.now(UTC)
    for key, j in jobs.items():
        ended = parse_timestamp((j["lastSuccessfulExecution"] or {}).get("timeEnded"))
        if ended is None:
            assert key not in ages
        else:
            assert 0 <= ages[key] <= (now - ended).total_seconds() + 1


async def test_quarantine_age_is_served_for_quarantined_jobs_only(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    summary = (await api.get(f"/api/v1/summary?tenant={HOME}")).json()
    ages = {job_key(s.labels): s.value for s in of_tenant(samples["entra_sync_job_quarantine_age_seconds"], HOME)}
    quarantined = {(q["servicePrincipalId"], q["jobId"]): q for q in summary["quarantinedJobs"]}
    assert set(ages) == {key for key, q in quarantined.items() if q["since"]} and ages
    for key, age in ages.items():
        # The summary counts whole minutes of the minute it answered in.
        assert quarantined[key]["secondsInQuarantine"] - 60 <= age <= quarantined[key]["secondsInQuarantine"] + 120


async def test_tenant_totals_equal_the_summary(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    for tenant_id in (HOME, OTHER):
        summary = (await api.get(f"/api/v1/summary?tenant={tenant_id}")).json()
        by_health_samples = of_tenant(samples["entra_sync_tenant_jobs_by_health"], tenant_id)
        by_health = {s.labels["health"]: s.value for s in by_health_samples}
        assert set(by_health) == set(HEALTH_VALUES)
        assert {health: n for health, n in by_health.items() if n} == summary["jobs"]["byHealth"]
        by_code = of_tenant(samples["entra_sync_tenant_jobs_by_status_code"], tenant_id)
        assert {s.labels["status_code"]: s.value for s in by_code} == summary["jobs"]["byStatusCode"]
        [quarantined] = of_tenant(samples["entra_sync_tenant_quarantined_jobs"], tenant_id)
        assert quarantined.value == summary["jobs"]["byHealth"].get("quarantined", 0)
        alerts = (await api.get(f"/api/v1/alerts?tenant={tenant_id}&status=open&top=1000")).json()["value"]
        open_alerts = of_tenant(samples["entra_sync_tenant_open_alerts"], tenant_id)
        assert {s.labels["severity"]: s.value for s in open_alerts} == {
            severity: sum(1 for a in alerts if a["severity"] == severity)
            for severity in ("critical", "error", "warning", "info")
        }


async def test_each_tenants_poll_is_recent_and_its_state_is_the_tenants_endpoints(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    tenants = {t["tenantId"]: t for t in (await api.get("/api/v1/tenants")).json()["value"]}
    for tenant_id in (HOME, OTHER):
        [age] = of_tenant(samples["entra_sync_monitor_last_successful_poll_age_seconds"], tenant_id)
        assert 0 <= age.value < 600
        statuses = of_tenant(samples["entra_sync_monitor_last_poll_status"], tenant_id)
        status = {s.labels["status"]: s.value for s in statuses}
        assert status == {"succeeded": 1, "partial": 0, "failed": 0, "unknown": 0, "none": 0}
        state = [s.labels["state"] for s in of_tenant(samples["entra_sync_tenant_state"], tenant_id) if s.value == 1]
        assert state == [tenants[tenant_id]["state"]] == ["healthy"]
    [info] = samples["entra_sync_monitor_info"]
    assert info.labels == {"version": __version__} and info.value == 1


# ------------------------------------------------------------ the format


async def test_every_family_has_help_and_type_and_conventional_names(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/metrics")
    families = list(text_string_to_metric_families(response.text))
    assert len(families) == 13
    for family in families:
        assert family.documentation and family.type == "gauge", family.name
        assert re.fullmatch(r"entra_sync_[a-z_]+", family.name) and not family.name.endswith("_total")
        assert f"# HELP {family.name} " in response.text and f"# TYPE {family.name} gauge" in response.text
        for sample in family.samples:
            assert "_age_" not in sample.name or sample.name.endswith("_seconds")
    assert response.headers["etag"] and response.headers["cache-control"] == "private, max-age=30"


async def test_a_hostile_display_name_is_read_back_exactly(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/metrics", params={"tenant": OTHER})
    assert "\nline two" not in response.text  # the newline is escaped, not a line of its own
    samples = samples_of(response.text)
    [escrowed] = samples["entra_sync_job_escrowed"]
    assert escrowed.labels["service_principal_name"] == HOSTILE
    assert escrowed.labels["tenant"] == OTHER and escrowed.value == 3
    names = {s.labels["service_principal_name"] for s in samples["entra_sync_job_health"]}
    assert names == {HOSTILE}
    [last_run] = [s for s in samples["entra_sync_job_last_run_state"] if s.value == 1]
    assert last_run.labels["state"] == "EntryLevelErrors"


async def test_openmetrics_when_prometheus_asks_for_it(api: httpx.AsyncClient) -> None:
    text = (await api.get("/api/v1/metrics")).text
    response = await api.get("/api/v1/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert response.status_code == 200 and response.headers["content-type"] == OPENMETRICS_FORMAT
    assert response.text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(response.text)}  # the strict parser: EOF, UNIT, names
    assert families["entra_sync_monitor"].type == "info"
    assert families["entra_sync_job_last_success_age_seconds"].unit == "seconds"
    as_openmetrics: Samples = {}
    for family in families.values():
        for sample in family.samples:
            as_openmetrics.setdefault(sample.name, []).append(sample)

    def series(samples: Samples) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {(name, tuple(sorted(s.labels.items()))) for name, found in samples.items() for s in found}

    assert series(as_openmetrics) == series(samples_of(text))  # the same series, whichever the format
    hostile = [s for s in as_openmetrics["entra_sync_job_escrowed"] if s.labels["tenant"] == OTHER]
    assert [s.labels["service_principal_name"] for s in hostile] == [HOSTILE]


# ------------------------------------------------------------ who sees what


@pytest.fixture
def signed_in(polled: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    roles = {"Monitor.All": "*", "Other.Reader": [OTHER]}
    apply_settings(monkeypatch, {**polled, "API_SIGN_IN_ENABLED": "true", "API_TENANT_ROLES": json.dumps(roles)})


@pytest.mark.usefixtures("signed_in")
async def test_a_caller_sees_only_the_series_of_its_tenants() -> None:
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Other.Reader")}) as other:
        samples = await scrape(other)
        samples.pop("entra_sync_monitor_info")  # the one family without a tenant
        tenants = {s.labels["tenant"] for found in samples.values() for s in found}
        assert tenants == {OTHER}
        assert (await other.get(f"/api/v1/metrics?tenant={HOME}")).status_code == 404
        assert {s.labels["tenant"] for s in (await scrape(other, f"?tenant={OTHER}"))["entra_sync_job_health"]} == {
            OTHER
        }
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Monitor.All")}) as everyone:
        samples = await scrape(everyone)
        assert {s.labels["tenant"] for s in samples["entra_sync_tenant_state"]} == {HOME, OTHER}
        narrowed = await scrape(everyone, f"?tenant={HOME.upper()}")
        assert {s.labels["tenant"] for s in narrowed["entra_sync_tenant_state"]} == {HOME}
        missing = await everyone.get("/api/v1/metrics?tenant=99999999-9999-9999-9999-999999999999")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_the_caller_checks_are_those_of_the_rest_of_the_api(
    polled: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_settings(monkeypatch, {**polled, "API_SIGN_IN_ENABLED": "true", "API_REQUIRED_ROLE": "Monitor.Read"})
    for headers, status in (({}, 401), ({"X-MS-CLIENT-PRINCIPAL": principal("Other")}, 403)):
        async with api_client(**headers) as client:
            metrics, jobs = await client.get("/api/v1/metrics"), await client.get("/api/v1/jobs")
            assert metrics.status_code == jobs.status_code == status
            assert metrics.headers["content-type"] == "application/problem+json"
            assert "entra_sync" not in metrics.text
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Monitor.Read")}) as reader:
        assert (await reader.get("/api/v1/metrics")).status_code == 200


# ------------------------------------------------------------ the Grafana dashboard


def dashboard_metric_names(node: Any) -> set[str]:
    """The metric names in every query of a dashboard's panels or variables."""
    if isinstance(node, dict):
        queries = [node[key] for key in ("expr", "query", "definition") if isinstance(node.get(key), str)]
        names = {name for query in queries for name in re.findall(r"\bentra_sync_[a-z_]+", query)}
        return names.union(*(dashboard_metric_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(dashboard_metric_names(item) for item in node))
    return set()


async def test_the_grafana_dashboard_queries_only_what_the_endpoint_serves(api: httpx.AsyncClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39 and dashboard["title"]
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    used = dashboard_metric_names(dashboard["panels"]) | dashboard_metric_names(dashboard["templating"])
    assert len(used) >= 5
    served = set(await scrape(api))
    assert used <= served, f"the dashboard queries {sorted(used - served)}, which GET /api/v1/metrics does not serve"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


# ------------------------------------------------------------ pure: rendering and negotiation


def test_label_values_and_help_are_escaped_so_the_parser_reads_them_back() -> None:
    hostile = ['"', "\\", "\n", '\\"', "\\n", "a\\\nb", "", "ünïcødé ✓", "}{,=", "\t"]
    family = Family("entra_sync_test", 'Help with a \\ backslash, a "quote"\nand a newline.')
    for index, value in enumerate(hostile):
        family.add({"index": str(index), "value": value}, index)
    for openmetrics, parse in ((False, text_string_to_metric_families), (True, parse_openmetrics)):
        [parsed] = list(parse(render([family], openmetrics=openmetrics)))
        assert parsed.documentation == family.help
        assert [s.labels["value"] for s in parsed.samples] == hostile


def test_a_state_set_has_one_sample_per_state_and_one_set() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    quarantined: Any = {
        "servicePrincipalId": "sp",
        "servicePrincipalName": None,
        "jobId": "j",
        "templateId": None,
        "statusCode": None,
        "health": "quarantined",
        "quarantine": {"seriesBegan": None, "currentBegan": "2026-12-01T11:00:00Z"},
        "lastExecution": {"state": "SomethingNew", "countEscrowed": None},
        "lastSuccessfulExecution": {"timeEnded": "2026-12-01T12:00:30Z"},  # ahead of now: never negative
    }
    figures = TenantFigures("t", "healthy", [quarantined], None, None, [])
    families = {f.name: f for f in metric_families([figures], now, "1.2.3")}
    health = families["entra_sync_job_health"].samples
    assert [labels["health"] for labels, value in health if value == 1] == ["quarantined"] and len(health) == 8
    assert health[0][0]["service_principal_name"] == "" and health[0][0]["template"] == ""
    assert [labels["state"] for labels, value in families["entra_sync_job_last_run_state"].samples if value] == [
        "unknown"
    ]
    assert families["entra_sync_job_quarantine_age_seconds"].samples[0][1] == 3600
    assert families["entra_sync_job_last_success_age_seconds"].samples[0][1] == 0
    assert families["entra_sync_job_escrowed"].samples == []
    assert families["entra_sync_tenant_jobs_by_status_code"].samples == [({"tenant": "t", "status_code": "unknown"}, 1)]
    assert [labels["status"] for labels, value in families["entra_sync_monitor_last_poll_status"].samples if value] == [
        "none"
    ]
    assert families["entra_sync_monitor_last_successful_poll_age_seconds"].samples == []


def test_no_tenant_still_declares_every_family() -> None:
    text = render(metric_families([], datetime.now(UTC), "1.2.3"))
    families = list(text_string_to_metric_families(text))
    assert len(families) == 13 and text.count("# TYPE ") == 13
    assert [s.labels for f in families for s in f.samples] == [{"version": "1.2.3"}]


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/plain", False),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.9", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;q=nonsense", False),
        ("application/json, application/openmetrics-text;version=1.0.0;q=0.2", True),
    ],
)
def test_openmetrics_is_served_when_accept_prefers_it(accept: str | None, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics
