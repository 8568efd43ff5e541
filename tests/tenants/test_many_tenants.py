"""Many tenants, end to end: four tenants, each its own Graph (an emulator of its own), polled
by the real pipeline into real Azurite tables and read back through the real API.

- Contoso, the home tenant (AZURE_TENANT_ID): healthy.
- Fabrikam (TENANTS): healthy, with other jobs.
- Northwind (TENANTS): its consent revoked, so Graph refuses every read.
- Tailspin (TENANTS): throttled, every job read told to retry after longer than the poll has.

Each tenant's poll is its own: the refused and the throttled do not stop the others, and show
as such. The API keeps tenants apart, and a caller sees only the tenants its roles grant: any
other is a 404, the same as one that does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer, demo_tenant, generated_tenant
from tests.support.api import api_client, follow
from tests.support.env import app_settings, apply_settings

HOME = DEMO_TENANT_ID
FABRIKAM = "11111111-2222-3333-4444-555555555555"
NORTHWIND = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
TAILSPIN = "0f0f0f0f-1e1e-2d2d-3c3c-4b4b4b4b4b4b"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
REVOKED = {"rules": [{"path": ".*", "status": 403}]}
THROTTLED = {
    "rules": [{"path": "^/(\\$batch|servicePrincipals/.+/synchronization/jobs)", "status": 429, "retryAfter": 3600}]
}


def principal(*roles: str) -> str:
    claims = [{"typ": "name", "val": "ada@contoso.com"}] + [{"typ": "roles", "val": role} for role in roles]
    raw = json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": ROLE_URI}).encode()
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def graphs() -> Iterator[dict[str, EmulatorServer]]:
    with (
        EmulatorServer(tenant=demo_tenant(seed=11)) as home,
        EmulatorServer(tenant=generated_tenant(12, 0.5, seed=7)) as fabrikam,
        EmulatorServer(tenant=generated_tenant(6, 0.5, seed=5)) as northwind,
        EmulatorServer(tenant=generated_tenant(10, 0.5, seed=9)) as tailspin,
    ):
        northwind.set_faults(REVOKED)
        yield {HOME: home, FABRIKAM: fabrikam, NORTHWIND: northwind, TAILSPIN: tailspin}


def tenants_setting(graphs: dict[str, EmulatorServer]) -> str:
    names = {FABRIKAM: "Fabrikam", NORTHWIND: "Northwind", TAILSPIN: "Tailspin"}
    return json.dumps([{"tenantId": t, "displayName": names[t], "graphBaseUrl": graphs[t].base_url} for t in names])


@pytest.fixture(scope="module")
def polled(azurite: AzuriteServer, graphs: dict[str, EmulatorServer]) -> Iterator[dict[str, Any]]:
    """A discovery of every tenant (the first poll), then a regular poll with Tailspin throttled,
    both inline (no queue): the results and the settings, kept for the module's tests."""
    from shared.graph.reader import close_graph_reader
    from shared.poll import run_poll
    from shared.storage.store import close_store

    env = {**app_settings(azurite, graphs[HOME]), "TENANTS": tenants_setting(graphs)}
    with pytest.MonkeyPatch.context() as patch:
        apply_settings(patch, env)

        async def run() -> list[dict[str, Any]]:
            try:
                first = await run_poll(trigger="test", tenants_inline=True)
                graphs[TAILSPIN].set_faults(THROTTLED)
                second = await run_poll(trigger="test", tenants_inline=True)
                return [first, second]
            finally:
                await close_graph_reader()
                await close_store()

        first, second = asyncio.run(run())
        yield {"env": env, "first": first, "second": second}


def by_tenant(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {brief["tenantId"]: brief for brief in result["tenants"]}


def test_each_tenant_is_polled_on_its_own_and_a_failing_one_stops_no_other(polled: dict[str, Any]) -> None:
    first, second = by_tenant(polled["first"]), by_tenant(polled["second"])
    assert set(first) == {HOME, FABRIKAM, NORTHWIND, TAILSPIN}
    assert first[HOME]["status"] == first[FABRIKAM]["status"] == first[TAILSPIN]["status"] == "succeeded"
    assert first[NORTHWIND]["status"] == "failed"
    assert second[TAILSPIN]["status"] == "partial"  # nothing read in time, nothing lost
    assert second[HOME]["status"] == second[FABRIKAM]["status"] == "succeeded"
    assert polled["second"]["status"] == "failed"  # the worst of them


def test_each_tenants_graph_was_asked_for_its_own_tenant_only(
    polled: dict[str, Any], graphs: dict[str, EmulatorServer]
) -> None:
    for tenant_id, graph in graphs.items():
        assert graph.stats()["requests"] > 0, tenant_id
    assert graphs[NORTHWIND].faults()["rules"][0]["fired"] >= 2  # refused at each poll


@pytest.fixture
async def api(polled: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    apply_settings(monkeypatch, polled["env"])
    async with api_client() as client:
        yield client


async def test_tenants_list_says_each_tenants_state(api: httpx.AsyncClient, graphs: dict[str, EmulatorServer]) -> None:
    response = await api.get("/api/v1/tenants")
    assert response.status_code == 200, response.text
    tenants = {t["tenantId"]: t for t in response.json()["value"]}
    assert next(iter(tenants)) == HOME  # home first, then by name
    states = {tenant_id: t["state"] for tenant_id, t in tenants.items()}
    assert states == {HOME: "healthy", FABRIKAM: "healthy", NORTHWIND: "consentMissing", TAILSPIN: "throttled"}
    assert tenants[NORTHWIND]["lastPoll"]["status"] == "failed"
    assert "403" in tenants[NORTHWIND]["lastPoll"]["firstError"]
    assert tenants[HOME]["source"] == "home" and tenants[FABRIKAM]["source"] == "setting"
    fabrikam_jobs = sum(len(sp["jobs"]) for sp in graphs[FABRIKAM].tenant()["servicePrincipals"])
    assert tenants[FABRIKAM]["jobs"]["total"] == fabrikam_jobs > 0
    assert tenants[NORTHWIND]["jobs"]["total"] == 0

    summary = (await api.get("/api/v1/tenants/summary")).json()
    assert summary["tenants"] == {"count": 4, "byState": {"healthy": 2, "consentMissing": 1, "throttled": 1}}
    assert summary["jobs"]["total"] == sum(t["jobs"]["total"] for t in tenants.values())
    assert {t["tenantId"] for t in summary["attention"]} == {NORTHWIND, TAILSPIN}
    assert all(q["tenantId"] in tenants for q in summary["quarantinedJobs"])


async def test_every_endpoint_reads_the_tenant_asked_for(
    api: httpx.AsyncClient, graphs: dict[str, EmulatorServer]
) -> None:
    for tenant_id in (HOME, FABRIKAM, TAILSPIN):
        jobs = await follow(api, f"/api/v1/jobs?tenant={tenant_id}&top=5")
        served = {sp["id"] for sp in graphs[tenant_id].tenant()["servicePrincipals"] if sp["jobs"]}
        assert jobs and {job["tenantId"] for job in jobs} == {tenant_id}
        assert {job["servicePrincipalId"] for job in jobs} == served
    home = (await api.get("/api/v1/jobs")).json()  # no tenant: the home tenant
    assert {job["tenantId"] for job in home["value"]} == {HOME}
    job = next(j for j in await follow(api, f"/api/v1/jobs?tenant={FABRIKAM}") if j["lastExecution"])
    path = f"/api/v1/jobs/{job['servicePrincipalId']}/{job['jobId']}"
    assert (await api.get(f"{path}?tenant={FABRIKAM}")).status_code == 200
    # The same job in another tenant's partitions is not there.
    assert (await api.get(f"{path}?tenant={HOME}")).status_code == 404
    summary = (await api.get(f"/api/v1/summary?tenant={FABRIKAM}")).json()
    assert summary["jobs"]["total"] == len(await follow(api, f"/api/v1/jobs?tenant={FABRIKAM}"))
    assert summary["lastPoll"]["tenantId"] == FABRIKAM
    runs = (await api.get(f"/api/v1/executions?tenant={FABRIKAM}&from=2000-01-01")).json()
    assert runs["value"] and {r["servicePrincipalId"] for r in runs["value"]} <= {
        sp["id"] for sp in graphs[FABRIKAM].tenant()["servicePrincipals"]
    }
    # A page's nextLink keeps its tenant, and its token is good for that tenant only.
    page = (await api.get(f"/api/v1/jobs?tenant={FABRIKAM}&top=1")).json()
    assert f"tenant={FABRIKAM}" in page["nextLink"]
    moved = page["nextLink"].replace(FABRIKAM, HOME)
    assert (await api.get(moved)).status_code == 400


async def test_an_unknown_tenant_is_not_found(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/jobs", "/api/v1/summary", "/api/v1/alerts"):
        response = await api.get(f"{path}?tenant=99999999-9999-9999-9999-999999999999")
        assert response.status_code == 404, path
    assert (await api.get("/api/v1/tenants/99999999-9999-9999-9999-999999999999")).status_code == 404


@pytest.fixture
async def signed_in(polled: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    roles = {"Monitor.All": "*", "Fabrikam.Reader": [FABRIKAM], "Fabrikam.Writer": [FABRIKAM]}
    apply_settings(
        monkeypatch,
        {
            **polled["env"],
            "API_SIGN_IN_ENABLED": "true",
            "API_WRITE_ROLE": "Fabrikam.Writer",
            "API_TENANT_ROLES": json.dumps(roles),
        },
    )
    yield


@pytest.mark.usefixtures("signed_in")
async def test_a_caller_sees_only_the_tenants_its_roles_grant() -> None:
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Fabrikam.Reader")}) as fabrikam:
        listed = (await fabrikam.get("/api/v1/tenants")).json()["value"]
        assert [t["tenantId"] for t in listed] == [FABRIKAM]
        summary = (await fabrikam.get("/api/v1/tenants/summary")).json()
        assert summary["tenants"]["count"] == 1
        # Without ?tenant=, the one tenant it may see.
        jobs = (await fabrikam.get("/api/v1/jobs")).json()["value"]
        assert jobs and {job["tenantId"] for job in jobs} == {FABRIKAM}
        for other in (HOME, NORTHWIND, TAILSPIN):
            for path in (f"/api/v1/jobs?tenant={other}", f"/api/v1/summary?tenant={other}", f"/api/v1/tenants/{other}"):
                response = await fabrikam.get(path)
                # Not 403: the answer is that of a tenant that does not exist, word for word.
                assert response.status_code == 404, path
                unknown = await fabrikam.get(path.replace(other, "99999999-9999-9999-9999-999999999999"))
                assert response.json() == unknown.json()
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Monitor.All")}) as everyone:
        assert len((await everyone.get("/api/v1/tenants")).json()["value"]) == 4
        assert (await everyone.get(f"/api/v1/jobs?tenant={NORTHWIND}")).status_code == 200
    async with api_client(**{"X-MS-CLIENT-PRINCIPAL": principal("Some.Other.Role")}) as nobody:
        assert (await nobody.get("/api/v1/jobs")).status_code == 404
        assert (await nobody.get("/api/v1/tenants")).json()["value"] == []


@pytest.mark.usefixtures("signed_in")
async def test_a_writer_of_one_tenant_cannot_add_or_change_tenants() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL": principal("Fabrikam.Reader", "Fabrikam.Writer")}
    async with api_client(**headers) as writer:
        body = {"displayName": "Mine now", "enabled": True}
        assert (await writer.put(f"/api/v1/tenants/{FABRIKAM}", json=body)).status_code == 404
        assert (await writer.patch(f"/api/v1/tenants/{HOME}", json={"enabled": False})).status_code == 404
        assert (await writer.delete(f"/api/v1/tenants/{NORTHWIND}")).status_code == 404


async def test_tenants_are_added_changed_and_removed_through_the_api(
    polled: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    apply_settings(monkeypatch, {**polled["env"], "API_KEY_ONLY_WRITES": "true"})
    added = "22222222-3333-4444-5555-666666666666"
    async with api_client() as api:
        body = {"displayName": "Woodgrove", "cloud": "global", "servicePrincipalIds": ["sp-1"], "reason": "onboarding"}
        with caplog.at_level("INFO", logger="entra_sync_monitor.audit"):
            created = await api.put(f"/api/v1/tenants/{added}", json=body)
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["state"] == "notPolled" and tenant["source"] == "api"
        assert tenant["graphHost"] == "graph.microsoft.com" and tenant["updatedBy"] == "function key"
        assert any('"action":"tenantPut"' in r.message and '"reason":"onboarding"' in r.message for r in caplog.records)
        # The API cannot send the app's tokens elsewhere.
        hostile = await api.put(f"/api/v1/tenants/{added}", json={"graphBaseUrl": "https://evil.example.com/v1.0"})
        assert hostile.status_code == 400
        assert (await api.put("/api/v1/tenants/contoso.com", json={})).status_code == 400

        paused = await api.patch(f"/api/v1/tenants/{added}", json={"enabled": False, "reason": "offboarding"})
        assert paused.status_code == 200 and paused.json()["state"] == "disabled"
        assert paused.json()["displayName"] == "Woodgrove"  # only what was given changed
        # A tenant of the TENANTS setting keeps its own Graph root when changed through the API.
        renamed = (await api.patch(f"/api/v1/tenants/{FABRIKAM}", json={"displayName": "Fabrikam Ltd"})).json()
        assert renamed["graphHost"] == "127.0.0.1" and renamed["source"] == "setting"

        assert (await api.delete(f"/api/v1/tenants/{added}")).status_code == 204
        assert (await api.get(f"/api/v1/tenants/{added}")).status_code == 404
        # Removed from the setting's seed too: a tombstone keeps it from coming back.
        assert (await api.delete(f"/api/v1/tenants/{TAILSPIN}")).status_code == 204
        from shared.tenants import _seeded

        _seeded.clear()  # as a new process would: seeding again
        listed = {t["tenantId"] for t in (await api.get("/api/v1/tenants")).json()["value"]}
        assert TAILSPIN not in listed and FABRIKAM in listed
        # Put back as it was, for the other tests.
        restored = {"displayName": "Tailspin"}
        assert (await api.put(f"/api/v1/tenants/{TAILSPIN}", json=restored)).status_code == 201
        await api.patch(f"/api/v1/tenants/{FABRIKAM}", json={"displayName": "Fabrikam"})


async def test_the_monitors_health_counts_every_tenant_but_names_none(api: httpx.AsyncClient) -> None:
    # Polled lately, with one tenant refused and one throttled: running, degraded, no tenant ids.
    response = await api.get("/api/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded" and body["lastPoll"]["status"] in ("failed", "partial")
    assert not any(tenant in response.text for tenant in (HOME, FABRIKAM, NORTHWIND, TAILSPIN))
