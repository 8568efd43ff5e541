"""The Graph emulator serves several tenants, each under `/{tenantId}` with its own data, token,
faults, counters and clock, and the default tenant at the root as before.

Over real HTTP against one `EmulatorServer` (the default demo tenant, a demo tenant and a
generated one under their ids), the app's own Graph client on a prefixed base URL, and the
command line's --extra-tenant and --token.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer, demo_tenant, generated_tenant
from devtools.graph_emulator.__main__ import main as emulator_main
from tests.support.paths import ROOT

DEMO = "0c1f6a9e-3b2d-4e5f-8a7b-9c0d1e2f3a4b"
GENERATED = "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098"
ADDED = "f00dfeed-0000-4000-8000-00000000c0de"
INSUFFICIENT = "Insufficient privileges to complete the operation."


@pytest.fixture(scope="module")
def emt() -> Iterator[EmulatorServer]:
    tenants = {DEMO: demo_tenant(), GENERATED: generated_tenant(150)}
    with EmulatorServer(tenant=demo_tenant(), tenants=tenants, frozen_clock=True) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: every tenant without faults, token or counted requests; the added
    tenant gone."""
    yield
    if "emt" not in request.fixturenames:
        return
    emt: EmulatorServer = request.getfixturevalue("emt")
    if ADDED in emt.states:
        emt.remove_tenant(ADDED)
    for control in (emt, emt.for_tenant(DEMO), emt.for_tenant(GENERATED)):
        control.clear_faults()
        control.set_token(None)
        control.reset_stats()
    emt.for_tenant(DEMO).set_demo_tenant()
    emt.for_tenant(GENERATED).set_generated_tenant(150)


def sp_ids(tenant: dict[str, Any]) -> list[str]:
    return [sp["id"] for sp in tenant["servicePrincipals"]]


def job_ids(tenant: dict[str, Any]) -> list[str]:
    return [job["id"] for sp in tenant["servicePrincipals"] for job in sp["jobs"]]


def all_pages(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    pages = []
    while url:
        response = httpx.get(url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = pages[-1].get("@odata.nextLink", "")
    return pages


def seconds(iso: str) -> float:
    return datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def assert_graph_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message is None or error["message"] == message
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


# ---------------------------------------------------------------- data


def test_each_tenant_serves_its_own_service_principals_and_jobs(emt: EmulatorServer) -> None:
    root, demo, generated = emt.tenant(), emt.for_tenant(DEMO).tenant(), emt.for_tenant(GENERATED).tenant()
    assert (root["tenantId"], demo["tenantId"], generated["tenantId"]) == (DEMO_TENANT_ID, DEMO, GENERATED)
    # The same demo cases under DEMO's own ids: no service principal or job id is shared.
    assert [sp["displayName"] for sp in demo["servicePrincipals"]] == [
        sp["displayName"] for sp in root["servicePrincipals"]
    ]
    assert not set(sp_ids(root)) & set(sp_ids(demo))
    assert not set(job_ids(root)) & set(job_ids(demo))
    assert all(job.endswith(f".{DEMO}") for job in job_ids(demo))
    assert len(generated["servicePrincipals"]) == 150
    assert not set(sp_ids(generated)) & (set(sp_ids(root)) | set(sp_ids(demo)))

    listed = httpx.get(f"{emt.for_tenant(DEMO).base_url}/servicePrincipals", params={"$top": 999}).json()
    assert [sp["id"] for sp in listed["value"]] == sp_ids(demo)
    # Another tenant's service principal is not found here.
    foreign = httpx.get(f"{emt.for_tenant(DEMO).base_url}/servicePrincipals/{sp_ids(root)[0]}")
    assert_graph_error(foreign, 404, "Request_ResourceNotFound")
    assert emt.states[DEMO].tenant.tenant_id == DEMO and emt.state.tenant.tenant_id == DEMO_TENANT_ID


def test_the_same_generated_spec_under_two_ids_shares_no_id(emt: EmulatorServer) -> None:
    added = emt.add_tenant(ADDED, generated_tenant(150))  # the spec GENERATED was built from
    theirs, ours = emt.for_tenant(GENERATED).tenant(), added.tenant()
    assert ours["tenantId"] == ADDED and len(ours["servicePrincipals"]) == 150
    assert not set(sp_ids(theirs)) & set(sp_ids(ours))
    assert not set(job_ids(theirs)) & set(job_ids(ours))
    assert emt.tenant()["tenantId"] == DEMO_TENANT_ID  # the root's data untouched


def test_paging_links_keep_the_tenant_prefix(emt: EmulatorServer) -> None:
    control = emt.for_tenant(DEMO)
    assert control.base_url == f"{emt.root_url}/{DEMO}/v1.0"
    pages = all_pages(f"{control.base_url}/servicePrincipals?$top=5&$select=id,displayName")
    assert len(pages) > 2
    for page in pages:
        assert page["@odata.context"].startswith(f"{control.base_url}/$metadata#servicePrincipals")
    for page in pages[:-1]:
        assert page["@odata.nextLink"].startswith(f"{control.base_url}/servicePrincipals?")
    assert [sp["id"] for page in pages for sp in page["value"]] == sp_ids(control.tenant())
    beta = httpx.get(f"{emt.root_url}/{DEMO}/beta/servicePrincipals").json()
    assert beta["@odata.context"].startswith(f"{emt.root_url}/{DEMO}/beta/$metadata")


def test_a_batch_reads_the_tenant_it_is_sent_to(emt: EmulatorServer) -> None:
    demo = emt.for_tenant(DEMO).tenant()
    sps = demo["servicePrincipals"][:20]
    batch = {
        "requests": [
            {"id": str(n), "method": "GET", "url": f"/servicePrincipals/{sp['id']}/synchronization/jobs"}
            for n, sp in enumerate(sps)
        ]
    }
    answer = httpx.post(f"{emt.for_tenant(DEMO).base_url}/$batch", json=batch)
    assert answer.status_code == 200, answer.text
    items = {item["id"]: item for item in answer.json()["responses"]}
    assert [items[str(n)]["status"] for n in range(len(sps))] == [200] * len(sps)
    assert [[job["id"] for job in items[str(n)]["body"]["value"]] for n in range(len(sps))] == [
        [job["id"] for job in sp["jobs"]] for sp in sps
    ]
    elsewhere = httpx.post(f"{emt.for_tenant(GENERATED).base_url}/$batch", json=batch).json()["responses"]
    assert {item["status"] for item in elsewhere} == {404}
    stats = emt.for_tenant(DEMO).stats()
    assert (stats["batchRequests"], stats["batchItems"]) == (1, len(sps))
    assert emt.stats()["requests"] == 0


def test_an_unknown_prefix_is_answered_as_graph_answers_an_unknown_version(emt: EmulatorServer) -> None:
    unknown = "99999999-9999-4999-8999-999999999999"
    for path in (f"/{unknown}/v1.0/servicePrincipals", f"/{unknown}/_emulator/health", f"/{DEMO.upper()}/v1.0"):
        answer = httpx.get(f"{emt.root_url}{path}")
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "BadRequest"
        assert answer.json()["error"]["message"] == f"Invalid version: {path.split('/')[1]}"
    # Ids that would read as a version, the control API or the default tenant are refused.
    for bad in ("v1.0", "beta", "_emulator", DEMO.upper(), DEMO_TENANT_ID, "not-a-guid"):
        with pytest.raises(RuntimeError, match="400"):
            emt.add_tenant(bad)
    assert set(emt.states) == {DEMO, GENERATED}


# ---------------------------------------------------------------- token


def test_a_tenant_with_a_token_answers_graphs_401_to_any_other(emt: EmulatorServer) -> None:
    control = emt.for_tenant(DEMO)
    control.set_token("demo-secret")
    url = f"{control.base_url}/servicePrincipals"
    missing = httpx.get(url)
    assert_graph_error(missing, 401, "InvalidAuthenticationToken", "Access token is empty.")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer ")
    wrong = httpx.get(url, headers={"Authorization": "Bearer other-secret"})
    assert_graph_error(wrong, 401, "InvalidAuthenticationToken", "Access token validation failure.")
    for header in ("demo-secret", "bearer demo-secret", "Bearer  demo-secret", "Basic demo-secret"):
        assert httpx.get(url, headers={"Authorization": header}).status_code == 401, header
    assert httpx.get(url, headers={"Authorization": "Bearer demo-secret"}).status_code == 200

    # A batch's items are covered by the batch's own header.
    sp = control.tenant()["servicePrincipals"][0]["id"]
    batch = {"requests": [{"id": "1", "method": "GET", "url": f"/servicePrincipals/{sp}/synchronization/jobs"}]}
    assert httpx.post(f"{control.base_url}/$batch", json=batch).status_code == 401
    answer = httpx.post(f"{control.base_url}/$batch", json=batch, headers={"Authorization": "Bearer demo-secret"})
    assert [item["status"] for item in answer.json()["responses"]] == [200]

    # The other tenants are unaffected; the control API is not behind the token.
    assert httpx.get(f"{emt.base_url}/servicePrincipals").status_code == 200
    assert httpx.get(f"{emt.for_tenant(GENERATED).base_url}/servicePrincipals").status_code == 200
    assert control.stats()["statusCounts"]["401"] == 7
    assert [t["tokenRequired"] for t in emt.tenants()["value"]] == [True, False]
    control.set_token(None)
    assert httpx.get(url).status_code == 200


def test_tokens_given_to_the_server_guard_their_own_tenant() -> None:
    static = {"tenantId": DEMO, "servicePrincipals": [{"id": "sp-1", "displayName": "One", "jobs": []}]}
    with EmulatorServer(tenant=demo_tenant(), token="root", tenants={DEMO: static}, tokens={DEMO: "demo"}) as em:
        root, demo = f"{em.base_url}/servicePrincipals", f"{em.for_tenant(DEMO).base_url}/servicePrincipals"
        assert httpx.get(root).status_code == 401
        assert httpx.get(root, headers={"Authorization": "Bearer demo"}).status_code == 401
        assert httpx.get(root, headers={"Authorization": "Bearer root"}).status_code == 200
        assert httpx.get(demo, headers={"Authorization": "Bearer root"}).status_code == 401
        served = httpx.get(demo, headers={"Authorization": "Bearer demo"}).json()["value"]
        assert [sp["id"] for sp in served] == ["sp-1"]  # a static tenant is served as given
    with pytest.raises(ValueError, match=GENERATED):
        EmulatorServer(tenants={DEMO: static}, tokens={GENERATED: "x"})


# ---------------------------------------------------------------- faults, counters, clock


def test_a_tenant_whose_consent_is_revoked_refuses_every_read_and_the_others_answer(emt: EmulatorServer) -> None:
    revoked = emt.for_tenant(DEMO)
    revoked.set_faults({"rules": [{"path": ".*", "status": 403}]})  # every request, unlimited
    sp = revoked.tenant()["servicePrincipals"][0]["id"]
    batch = {"requests": [{"id": "1", "method": "GET", "url": f"/servicePrincipals/{sp}/synchronization/jobs"}]}
    for _ in range(3):
        for path in ("/servicePrincipals", f"/servicePrincipals/{sp}", f"/servicePrincipals/{sp}/synchronization/jobs"):
            assert_graph_error(httpx.get(f"{revoked.base_url}{path}"), 403, "Authorization_RequestDenied", INSUFFICIENT)
        assert_graph_error(httpx.get(f"{revoked.base_url}/auditLogs/provisioning"), 403, "Authorization_RequestDenied")
        assert_graph_error(httpx.post(f"{revoked.base_url}/$batch", json=batch), 403, "Authorization_RequestDenied")
    assert revoked.faults()["rules"][0]["fired"] == 15
    assert revoked.stats()["statusCounts"] == {"403": 15, "items": {}}
    assert emt.faults()["rules"] == [] and emt.for_tenant(GENERATED).faults()["rules"] == []
    assert httpx.get(f"{emt.base_url}/servicePrincipals").status_code == 200
    assert httpx.get(f"{emt.for_tenant(GENERATED).base_url}/servicePrincipals").status_code == 200


def test_a_throttled_tenant_answers_429_with_retry_after_and_the_others_answer(emt: EmulatorServer) -> None:
    throttled = emt.for_tenant(GENERATED)
    throttled.set_faults({"rules": [{"path": ".*", "status": 429, "retryAfter": 7}]})
    for _ in range(5):
        answer = httpx.get(f"{throttled.base_url}/servicePrincipals")
        assert_graph_error(answer, 429, "TooManyRequests")
        assert answer.headers["Retry-After"] == "7"
    assert httpx.get(f"{emt.base_url}/servicePrincipals").status_code == 200
    assert httpx.get(f"{emt.for_tenant(DEMO).base_url}/servicePrincipals").status_code == 200
    assert throttled.stats()["statusCounts"]["429"] == 5
    assert emt.stats()["statusCounts"] == {"200": 1, "items": {}}
    assert emt.for_tenant(DEMO).stats()["statusCounts"] == {"200": 1, "items": {}}


def test_counters_and_clocks_are_per_tenant(emt: EmulatorServer) -> None:
    for _ in range(3):
        httpx.get(f"{emt.for_tenant(DEMO).base_url}/servicePrincipals")
    httpx.get(f"{emt.for_tenant(GENERATED).base_url}/servicePrincipals/missing")
    assert emt.for_tenant(DEMO).stats()["byPath"] == {"/servicePrincipals": 3}
    assert emt.for_tenant(GENERATED).stats()["byPath"] == {"/servicePrincipals/{id}": 1}
    assert emt.stats()["requests"] == 0
    before = emt.now()
    later = emt.for_tenant(DEMO).advance_clock(6 * 3600)
    assert emt.now() == before  # frozen, and not moved by another tenant's clock
    assert abs(seconds(later) - seconds(before) - 6 * 3600) <= 5
    assert abs(seconds(emt.for_tenant(GENERATED).now()) - seconds(before)) <= 5
    emt.for_tenant(DEMO).advance_clock(-6 * 3600)


# ---------------------------------------------------------------- registering at runtime


def test_tenants_are_added_listed_replaced_and_removed_over_the_control_api(emt: EmulatorServer) -> None:
    added = emt.add_tenant(ADDED, {"kind": "generated", "servicePrincipals": 30, "seed": 2})
    listing = emt.tenants()
    assert listing["default"]["baseUrl"] == emt.base_url
    assert {t["tenantId"]: t["baseUrl"] for t in listing["value"]}[ADDED] == f"{emt.root_url}/{ADDED}/v1.0"
    assert ADDED in emt.states and emt.states[ADDED].tenant.tenant_id == ADDED
    assert len(httpx.get(f"{added.base_url}/servicePrincipals").json()["value"]) == 30

    # Replacing the data keeps the tenant's faults (and token, clock, counters), as PUT /tenant does.
    added.set_faults({"rules": [{"path": "^/servicePrincipals/sp-2$", "status": 503}]})
    static = {"tenantId": ADDED, "servicePrincipals": [{"id": "sp-1", "jobs": []}, {"id": "sp-2", "jobs": []}]}
    emt.add_tenant(ADDED, static)
    assert [sp["id"] for sp in httpx.get(f"{added.base_url}/servicePrincipals").json()["value"]] == ["sp-1", "sp-2"]
    assert httpx.get(f"{added.base_url}/servicePrincipals/sp-2").status_code == 503

    # Its own control API rebuilds its data under its own id.
    added.set_demo_tenant(seed=2)
    assert added.tenant()["tenantId"] == ADDED and not set(sp_ids(added.tenant())) & set(sp_ids(emt.tenant()))
    added.set_generated_tenant(10)
    assert added.tenant()["tenantId"] == ADDED

    emt.remove_tenant(ADDED)
    assert httpx.get(f"{added.base_url}/servicePrincipals").status_code == 400
    assert ADDED not in emt.states
    with pytest.raises(RuntimeError, match="404"):
        emt.remove_tenant(ADDED)


# ---------------------------------------------------------------- the app's Graph client


def reader_for(base_url: str) -> Any:
    from shared.graph.reader import GraphReader
    from shared.settings import load_settings

    settings = {
        "AZURE_TENANT_ID": DEMO,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "GRAPH_BASE_URL": base_url,
        "GRAPH_AUTH": "none",
    }
    return GraphReader(load_settings(settings))


async def test_the_apps_graph_reader_reads_a_prefixed_tenant(emt: EmulatorServer) -> None:
    from kiota_abstractions.api_error import APIError

    from shared.graph.errors import GraphForbiddenError, GraphUnauthorizedError

    control = emt.for_tenant(DEMO)
    truth = control.tenant()
    reader = reader_for(control.base_url)
    try:
        assert [sp["id"] for sp in await reader.list_service_principals()] == sp_ids(truth)
        ids = sp_ids(truth)[:25]
        jobs = await reader.get_jobs(ids)
        assert {sp: [job["id"] for job in result.body] for sp, result in jobs.items()} == {
            sp["id"]: [job["id"] for job in sp["jobs"]] for sp in truth["servicePrincipals"][:25]
        }
        assert control.stats()["batchRequests"] == 2  # 25 ids: two batches, to this tenant
        assert emt.stats()["requests"] == 0

        control.set_token("demo-secret")
        with pytest.raises(GraphUnauthorizedError) as raised:
            await reader.list_service_principals()
        answer = raised.value.__cause__  # Graph's own 401, as the SDK read it
        assert isinstance(answer, APIError) and answer.response_status_code == 401
        assert getattr(answer, "error", None) is not None
        assert answer.error.code == "InvalidAuthenticationToken"  # type: ignore[attr-defined]
    finally:
        await reader.close()

    revoked = emt.for_tenant(GENERATED)
    revoked.set_faults({"rules": [{"path": ".*", "status": 403}]})
    reader = reader_for(revoked.base_url)
    try:
        with pytest.raises(GraphForbiddenError):
            await reader.list_service_principals()
    finally:
        await reader.close()


# ---------------------------------------------------------------- the command line


def test_command_line_serves_extra_tenants_with_their_tokens() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.graph_emulator",
            "--port",
            "0",
            "--tenant",
            "generated:20",
            "--extra-tenant",
            f"{DEMO}=demo",
            "--extra-tenant",
            f"{GENERATED}=generated:40:0.5",
            "--token",
            f"{GENERATED}=gen-secret",
            "--token",
            "default=root-secret",
            "--frozen-clock",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"GRAPH_BASE_URL=(http://127\.0\.0\.1:\d+)/v1\.0", line)
        assert match, line
        root = match.group(1)
        assert_graph_error(httpx.get(f"{root}/v1.0/servicePrincipals"), 401, "InvalidAuthenticationToken")
        answer = httpx.get(f"{root}/v1.0/servicePrincipals", headers={"Authorization": "Bearer root-secret"})
        assert len(answer.json()["value"]) == 20
        demo = httpx.get(f"{root}/{DEMO}/_emulator/tenant").json()
        assert demo["tenantId"] == DEMO and len(demo["servicePrincipals"]) == 31
        listed = httpx.get(f"{root}/{DEMO}/v1.0/servicePrincipals", params={"$top": 999}).json()["value"]
        assert [sp["id"] for sp in listed] == sp_ids(demo)
        generated = f"{root}/{GENERATED}/v1.0/servicePrincipals"
        assert_graph_error(httpx.get(generated), 401, "InvalidAuthenticationToken")
        served = httpx.get(generated, headers={"Authorization": "Bearer gen-secret"}, params={"$top": 999})
        assert len(served.json()["value"]) == 40
        assert httpx.get(f"{root}/{DEMO}/v1.0/servicePrincipals").status_code == 200  # DEMO has no token
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stdout.read() == ""  # exactly one line on stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--extra-tenant", "not-a-guid=demo"],
        ["--extra-tenant", f"{DEMO}"],
        ["--extra-tenant", f"{DEMO_TENANT_ID}=demo"],  # the default tenant's own id
        ["--extra-tenant", f"{DEMO}=generated:x"],
        ["--token", f"{DEMO}=secret"],  # no such tenant
    ],
)
def test_command_line_refuses_bad_tenant_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        emulator_main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err
