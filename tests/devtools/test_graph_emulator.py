"""The Graph emulator answers like Microsoft Graph v1.0 for what the app reads.

Paging, $select, $batch, error bodies, injected faults, the demo tenant's coverage, the living
clock, tenant scale and the command line. One emulator serves the module; every test starts
from the demo tenant with no faults and zeroed counters.

One module, over 400 lines, on purpose: one emulator serves it (a module fixture, started
once); the provisioning log's own tests are in test_provisioning_logs_emulator.py.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devtools.graph_emulator import (
    DEMO_TENANT_ID,
    EmulatorControl,
    EmulatorServer,
)
from devtools.graph_emulator.__main__ import main as emulator_main
from tests.support.paths import ROOT

CLOUD_SYNC_TEMPLATE = "1a4721b3-e57f-4451-ae87-ef078703ec94"
INTEGRATED = "WindowsAzureActiveDirectoryIntegratedApp"
EXECUTION_KINDS = ("lastExecution", "lastSuccessfulExecution", "lastSuccessfulExecutionWithExports")
SENTINEL = "0001-01-01T00:00:00Z"


def parse_time(text: str) -> datetime:
    """Graph's timestamps (0-7 fractional digits) as aware datetimes."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?Z", text)
    assert match, text
    base = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return base.replace(microsecond=int((match.group(2) or "0").ljust(7, "0")[:6]))


def jobs_by_name(tenant: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {sp["displayName"]: sp["jobs"] for sp in tenant["servicePrincipals"]}


def sp_named(tenant: dict[str, Any], name: str) -> dict[str, Any]:
    return next(sp for sp in tenant["servicePrincipals"] if sp["displayName"] == name)


def all_pages(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    pages = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_link = pages[-1].get("@odata.nextLink")
        if not next_link:
            return pages
        response = client.get(next_link)


# ---------------------------------------------------------------- service principals


def test_paging_with_top_and_select_returns_every_service_principal_exactly_once(
    em: EmulatorServer, graph: httpx.Client
) -> None:
    truth = [sp["id"] for sp in em.tenant()["servicePrincipals"]]
    pages = all_pages(graph, "/servicePrincipals", {"$top": 5, "$select": "id,displayName"})
    assert len(pages) == -(-len(truth) // 5)
    seen = [sp["id"] for page in pages for sp in page["value"]]
    assert seen == truth  # stable order, nothing lost, nothing repeated
    for page in pages:
        assert page["@odata.context"].endswith("$metadata#servicePrincipals(id,displayName)")
        assert all(set(sp) == {"id", "displayName"} for sp in page["value"])
        if "@odata.nextLink" in page:
            link = urlsplit(page["@odata.nextLink"])
            assert f"{link.scheme}://{link.netloc}" == em.root_url  # absolute, same host and port
            assert "skiptoken" in link.query and "select" in link.query


def test_select_always_returns_id_and_rejects_unknown_properties(graph: httpx.Client) -> None:
    page = graph.get("/servicePrincipals", params={"$select": "appId,notificationEmailAddresses"}).json()
    assert set(page["value"][0]) == {"id", "appId", "notificationEmailAddresses"}
    bad = graph.get("/servicePrincipals", params={"$select": "id,noSuchProperty"})
    assert bad.status_code == 400
    assert "noSuchProperty" in bad.json()["error"]["message"]


def test_top_is_checked_like_graph_and_defaults_to_100(em: EmulatorServer, graph: httpx.Client) -> None:
    for top in ("1000", "0"):
        response = graph.get("/servicePrincipals", params={"$top": top})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "Request_UnsupportedQuery"
    em.set_generated_tenant(150)
    assert len(graph.get("/servicePrincipals").json()["value"]) == 100
    ignored = graph.get("/servicePrincipals", params={"$orderby": "displayName", "$expand": "owners", "$top": 2})
    assert ignored.status_code == 200 and len(ignored.json()["value"]) == 2


def test_filter_on_tags_and_application_template(em: EmulatorServer, graph: httpx.Client) -> None:
    tenant = em.tenant()
    tagged = graph.get("/servicePrincipals", params={"$filter": f"tags/any(t:t eq '{INTEGRATED}')"}).json()
    assert {sp["id"] for sp in tagged["value"]} == {
        sp["id"] for sp in tenant["servicePrincipals"] if INTEGRATED in sp["tags"]
    }
    either = graph.get(
        "/servicePrincipals",
        params={"$filter": f"tags/any(t:t eq '{INTEGRATED}') or applicationTemplateId eq '{CLOUD_SYNC_TEMPLATE}'"},
    ).json()
    with_jobs = {sp["id"] for sp in tenant["servicePrincipals"] if sp["jobs"]}
    assert with_jobs <= {sp["id"] for sp in either["value"]}  # narrowing this way loses no job


def test_single_service_principal_with_select(em: EmulatorServer, graph: httpx.Client) -> None:
    sp = sp_named(em.tenant(), "Salesforce")
    body = graph.get(f"/servicePrincipals/{sp['id']}", params={"$select": "displayName,tags"}).json()
    assert body["@odata.context"].endswith("$metadata#servicePrincipals(displayName,tags)/$entity")
    assert {k: v for k, v in body.items() if not k.startswith("@")} == {
        "id": sp["id"],
        "displayName": "Salesforce",
        "tags": [INTEGRATED],
    }


# ---------------------------------------------------------------- jobs


def test_jobs_listing_and_single_job_match_the_tenant(em: EmulatorServer, graph: httpx.Client) -> None:
    tenant = em.tenant()
    two = sp_named(tenant, "Contoso Cloud Sync (contoso.local)")
    listing = graph.get(f"/servicePrincipals/{two['id']}/synchronization/jobs").json()
    assert listing["@odata.context"].endswith(f"servicePrincipals('{two['id']}')/synchronization/jobs")
    assert listing["value"] == two["jobs"] and len(two["jobs"]) == 2
    job = two["jobs"][1]
    encoded_sp = "".join(f"%{b:02X}" for b in two["id"].encode())  # every character escaped
    encoded_job = "".join(f"%{b:02X}" for b in job["id"].encode())
    single = graph.get(f"/servicePrincipals/{encoded_sp}/synchronization/jobs/{encoded_job}").json()
    assert single.pop("@odata.context").endswith("/synchronization/jobs/$entity")
    assert single == job
    empty = graph.get(f"/servicePrincipals/{sp_named(tenant, 'Microsoft Graph')['id']}/synchronization/jobs")
    assert empty.status_code == 200 and empty.json()["value"] == []


def test_static_tenant_is_served_verbatim_even_when_odd(em: EmulatorServer, graph: httpx.Client) -> None:
    odd_job = {"id": "odd.1", "templateId": None, "status": {"code": "SomethingNew", "extra": [1, 2**40]}}
    tenant = {
        "tenantId": DEMO_TENANT_ID,
        "servicePrincipals": [{"id": "sp-1", "displayName": "Odd", "jobs": [odd_job]}],
    }
    em.set_tenant(tenant)
    assert em.tenant() == tenant
    assert graph.get("/servicePrincipals/sp-1/synchronization/jobs").json()["value"] == [odd_job]
    single = graph.get("/servicePrincipals/sp-1/synchronization/jobs/odd.1").json()
    single.pop("@odata.context")
    assert single == odd_job
    assert graph.get("/servicePrincipals").json()["value"] == [{"id": "sp-1", "displayName": "Odd"}]


# ---------------------------------------------------------------- errors


def assert_graph_error(response: httpx.Response, status: int, code: str, client_request_id: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["request-id"]
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    if client_request_id:
        assert inner["client-request-id"] == client_request_id == response.headers["client-request-id"]


def test_unknown_ids_get_graphs_404_body(em: EmulatorServer, graph: httpx.Client) -> None:
    missing = graph.get("/servicePrincipals/0000-missing", headers={"client-request-id": "abc-123"})
    assert_graph_error(missing, 404, "Request_ResourceNotFound", "abc-123")
    assert missing.json()["error"]["message"] == (
        "Resource '0000-missing' does not exist or one of its queried reference-property objects are not present."
    )
    sp = sp_named(em.tenant(), "Salesforce")
    assert_graph_error(
        graph.get(f"/servicePrincipals/{sp['id']}/synchronization/jobs/nope"), 404, "Request_ResourceNotFound"
    )
    assert_graph_error(graph.get("/servicePrincipals/x/synchronization/jobz"), 400, "BadRequest")


def test_per_id_faults_answer_403_and_404_standalone_and_in_batch(em: EmulatorServer, graph: httpx.Client) -> None:
    tenant = em.tenant()
    denied, gone, fine = (sp_named(tenant, n)["id"] for n in ("ServiceNow", "Box", "Salesforce"))
    em.set_faults({"perId": {denied: 403, gone: 404}})
    forbidden = graph.get(f"/servicePrincipals/{denied}/synchronization/jobs")
    assert_graph_error(forbidden, 403, "Authorization_RequestDenied")
    assert forbidden.json()["error"]["message"] == "Insufficient privileges to complete the operation."
    assert_graph_error(graph.get(f"/servicePrincipals/{gone}"), 404, "Request_ResourceNotFound")
    batch = graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": str(i), "method": "GET", "url": f"/servicePrincipals/{sp}/synchronization/jobs"}
                for i, sp in enumerate((denied, gone, fine))
            ]
        },
    )
    statuses = {item["id"]: item["status"] for item in batch.json()["responses"]}
    assert batch.status_code == 200 and statuses == {"0": 403, "1": 404, "2": 200}


# ---------------------------------------------------------------- $batch


def jobs_batch(tenant: dict[str, Any], n: int) -> dict[str, Any]:
    sps = [sp["id"] for sp in tenant["servicePrincipals"]]
    return {
        "requests": [
            {"id": f"r{i}", "method": "GET", "url": f"/servicePrincipals/{sps[i % len(sps)]}/synchronization/jobs"}
            for i in range(n)
        ]
    }


def test_batch_of_20_answers_each_item_like_the_standalone_request(em: EmulatorServer, graph: httpx.Client) -> None:
    tenant = em.tenant()
    payload = jobs_batch(tenant, 20)
    payload["requests"][1]["url"] = payload["requests"][1]["url"].lstrip("/")  # relative without the slash
    response = graph.post("/$batch", json=payload)
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert set(items) == {f"r{i}" for i in range(20)}
    for i, request in enumerate(payload["requests"]):
        item = items[request["id"]]
        assert item["status"] == 200
        assert item["headers"]["Content-Type"].startswith("application/json")
        assert item["body"]["value"] == tenant["servicePrincipals"][i % len(tenant["servicePrincipals"])]["jobs"]
    stats = em.stats()
    assert (stats["requests"], stats["batchRequests"], stats["batchItems"]) == (1, 1, 20)
    assert stats["itemsByPath"] == {"/servicePrincipals/{id}/synchronization/jobs": 20}


def test_batch_rejects_21_items_and_duplicate_ids_as_a_whole(em: EmulatorServer, graph: httpx.Client) -> None:
    tenant = em.tenant()
    assert_graph_error(graph.post("/$batch", json=jobs_batch(tenant, 21)), 400, "BadRequest")
    duplicate = jobs_batch(tenant, 2)
    duplicate["requests"][1]["id"] = "r0"
    assert_graph_error(graph.post("/$batch", json=duplicate), 400, "BadRequest")
    assert_graph_error(graph.post("/$batch", content=b"{not json"), 400, "BadRequest")


def test_batch_item_with_an_absolute_url_or_a_write_fails_alone(em: EmulatorServer, graph: httpx.Client) -> None:
    payload = jobs_batch(em.tenant(), 4)
    payload["requests"][0]["url"] = em.base_url + payload["requests"][0]["url"]
    payload["requests"][2]["method"] = "PATCH"
    payload["requests"][3]["dependsOn"] = ["r0"]
    items = {item["id"]: item for item in graph.post("/$batch", json=payload).json()["responses"]}
    assert items["r0"]["status"] == 400
    assert items["r0"]["body"]["error"]["code"] == "BadRequest"
    assert items["r0"]["body"]["error"]["message"] == "Invalid request URL"
    assert items["r1"]["status"] == 200
    assert items["r2"]["status"] == 405
    assert items["r3"]["status"] == 424  # its dependency failed


# ---------------------------------------------------------------- faults


def test_429_with_retry_after_for_times_then_success(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults({"rules": [{"path": "^/servicePrincipals$", "status": 429, "retryAfter": 2, "times": 2}]})
    for _ in range(2):
        throttled = graph.get("/servicePrincipals")
        assert_graph_error(throttled, 429, "TooManyRequests")
        assert throttled.headers["Retry-After"] == "2"
    assert graph.get("/servicePrincipals").status_code == 200
    stats = em.stats()
    assert stats["statusCounts"]["429"] == 2 and stats["statusCounts"]["200"] == 1


def test_503_every_other_request(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults({"rules": [{"path": "^/servicePrincipals$", "status": 503, "every": 2}]})
    statuses = [graph.get("/servicePrincipals").status_code for _ in range(4)]
    assert statuses == [200, 503, 200, 503]
    assert graph.get("/servicePrincipals").status_code == 200
    assert em.faults()["rules"][0]["fired"] == 2


def test_429_inside_a_batch_comes_back_per_item_then_passes(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults(
        {"rules": [{"path": "/synchronization/jobs$", "status": 429, "retryAfter": 1, "times": 3, "inBatch": True}]}
    )
    payload = jobs_batch(em.tenant(), 5)
    first = graph.post("/$batch", json=payload)
    assert first.status_code == 200  # the batch itself succeeds
    items = {item["id"]: item for item in first.json()["responses"]}
    throttled = [i for i, item in items.items() if item["status"] == 429]
    assert len(throttled) == 3
    for key in throttled:
        assert items[key]["headers"]["Retry-After"] == "1"
        assert items[key]["body"]["error"]["code"] == "TooManyRequests"
    again = graph.post("/$batch", json=payload).json()["responses"]
    assert {item["status"] for item in again} == {200}
    assert em.stats()["statusCounts"]["items"] == {"429": 3, "200": 7}


def test_faults_on_the_batch_post_itself_and_top_level_only_rules(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults(
        {
            "rules": [
                {"path": r"^/\$batch$", "status": 503, "retryAfter": 3, "times": 1},
                {"path": "/synchronization/jobs$", "status": 500, "inBatch": False},
            ]
        }
    )
    payload = jobs_batch(em.tenant(), 2)
    refused = graph.post("/$batch", json=payload)
    assert_graph_error(refused, 503, "ServiceUnavailable")
    assert refused.headers["Retry-After"] == "3"
    assert {item["status"] for item in graph.post("/$batch", json=payload).json()["responses"]} == {200}
    assert graph.get(payload["requests"][0]["url"].lstrip("/")).status_code == 500


def test_truncated_body_is_a_200_with_half_a_json_document(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults({"rules": [{"path": "^/servicePrincipals$", "mode": "truncate", "times": 1}]})
    cut = graph.get("/servicePrincipals")
    assert cut.status_code == 200
    whole = graph.get("/servicePrincipals")
    assert len(cut.content) == len(whole.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert whole.json()["value"]


def test_a_truncated_batch_item_comes_back_base64_encoded_and_the_rest_intact(
    em: EmulatorServer, graph: httpx.Client
) -> None:
    payload = jobs_batch(em.tenant(), 3)
    first_url = payload["requests"][0]["url"]
    em.set_faults({"rules": [{"path": f"^{re.escape(first_url)}$", "mode": "truncate", "inBatch": True}]})
    answer = graph.post("/$batch", json=payload)
    assert answer.status_code == 200
    items = {item["id"]: item for item in answer.json()["responses"]}
    whole = json.dumps(graph.get(first_url.lstrip("/")).json(), separators=(",", ":")).encode()
    cut = base64.b64decode(items["r0"]["body"])
    assert items["r0"]["status"] == 200 and whole.startswith(cut[: len(whole) // 4]) and len(cut) < len(whole)
    assert isinstance(items["r1"]["body"], dict) and isinstance(items["r1"]["body"]["value"], list)


def test_drop_closes_the_connection_only_for_requests_whose_body_matches(
    em: EmulatorServer, graph: httpx.Client
) -> None:
    tenant = em.tenant()
    carried = tenant["servicePrincipals"][0]["id"]
    em.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "drop", "inBatch": False, "bodyContains": carried}]})
    with pytest.raises(httpx.RemoteProtocolError):
        graph.post("/$batch", json=jobs_batch(tenant, 1))
    other = {
        "requests": [{"id": "1", "method": "GET", "url": f"/servicePrincipals/{tenant['servicePrincipals'][1]['id']}"}]
    }
    assert graph.post("/$batch", json=other).status_code == 200
    assert em.faults()["rules"][0]["fired"] == 1


def test_body_mode_answers_200_with_the_given_body(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults({"rules": [{"path": "^/servicePrincipals$", "mode": "body", "body": {"value": "no list"}}]})
    answer = graph.get("/servicePrincipals")
    assert (answer.status_code, answer.json()) == (200, {"value": "no list"})
    with pytest.raises(RuntimeError, match="400"):
        em.set_faults({"rules": [{"path": "x", "mode": "body"}]})  # which body?


def test_slow_rule_and_latency_delay_answers(em: EmulatorServer, graph: httpx.Client) -> None:
    em.set_faults({"latencyMs": 100, "rules": [{"path": "^/servicePrincipals$", "mode": "slow", "delayMs": 200}]})
    started = time.monotonic()
    assert graph.get("/servicePrincipals").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_bad_fault_config_is_refused(em: EmulatorServer) -> None:
    with pytest.raises(RuntimeError, match="400"):
        em.set_faults({"rules": [{"path": "(", "status": 429}]})
    with pytest.raises(RuntimeError, match="400"):
        em.set_faults({"rules": [{"path": "x", "mode": "explode"}]})


def test_stats_record_whether_an_authorization_header_was_sent(em: EmulatorServer, graph: httpx.Client) -> None:
    graph.get("/servicePrincipals")
    assert em.stats()["authorizationHeaderSeen"] is False
    graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/servicePrincipals", "headers": {"Authorization": "Bearer x"}}
            ]
        },
    )
    assert em.stats()["authorizationHeaderSeen"] is True
    em.reset_stats()
    graph.get("/servicePrincipals", headers={"Authorization": "Bearer y"})
    stats = em.stats()
    assert stats["authorizationHeaderSeen"] is True and stats["byPath"] == {"/servicePrincipals": 1}


def test_beta_is_served_and_unknown_versions_are_refused(em: EmulatorServer) -> None:
    with httpx.Client(base_url=em.root_url) as client:
        assert client.get("/beta/servicePrincipals").json()["@odata.context"].startswith(f"{em.root_url}/beta/")
        assert client.get("/v2.0/servicePrincipals").status_code == 400
        assert client.get("/_emulator/health").json() == {"ok": True}


# ---------------------------------------------------------------- the demo tenant


def test_demo_tenant_covers_every_case_the_app_must_handle(em: EmulatorServer) -> None:
    tenant = em.tenant()
    assert tenant["tenantId"] == DEMO_TENANT_ID
    sps = tenant["servicePrincipals"]
    jobs = [job for sp in sps for job in sp["jobs"]]
    assert len(sps) >= 24 and len(jobs) >= 14
    assert any(not sp["jobs"] and INTEGRATED in sp["tags"] for sp in sps)
    assert any(not sp["jobs"] and not sp["tags"] for sp in sps)
    assert any(len(sp["jobs"]) == 2 for sp in sps)
    statuses = [job["status"] for job in jobs]
    assert {"NotConfigured", "NotRun", "Active", "Paused", "Quarantine"} <= {s["code"] for s in statuses}
    assert all(any(s[kind] and s[kind]["activityIdentifier"] for s in statuses) for kind in EXECUTION_KINDS)
    assert any(s["lastExecution"] and s["lastExecution"] == s["lastSuccessfulExecution"] for s in statuses)
    reasons = {s["quarantine"]["reason"] for s in statuses if s["quarantine"]}
    assert "EncounteredQuarantineException" in reasons
    assert {"EncounteredEscrowProportionThreshold", "TooManyDeletes"} <= reasons
    assert "unknownFutureValue" in reasons
    assert any(s["lastExecution"] and s["lastExecution"]["state"] == "PartialSuccess" for s in statuses)
    escrow = [s for s in statuses if s["lastExecution"] and s["lastExecution"]["state"] == "EntryLevelErrors"]
    assert any(s["lastExecution"]["countEscrowed"] > 100 for s in escrow)
    failing = [s for s in statuses if s["lastExecution"] and s["lastExecution"]["state"] == "Failed"]
    assert any(s["countSuccessiveCompleteFailures"] > 0 and s["code"] == "Active" for s in failing)
    assert {"SystemForCrossDomainIdentityManagementServiceIncompatible", "HybridIdentityServiceAgentsUnavailable"} <= {
        s["lastExecution"]["error"]["code"] for s in failing
    }
    assert any(s["escrowsPruned"] for s in statuses)
    assert any(
        s[kind] and max(v for k, v in s[kind].items() if k.startswith("count")) >= 2**31
        for s in statuses
        for kind in EXECUTION_KINDS
    )
    templates = {job["templateId"] for job in jobs}
    assert {"AD2AADProvisioning", "AD2AADPasswordHash", "Azure2Azure", "Workday2AAD"} <= templates


def test_demo_never_run_jobs_carry_graphs_sentinels(em: EmulatorServer) -> None:
    jobs = jobs_by_name(em.tenant())
    for name in ("Zoom", "Dropbox Business"):
        (job,) = jobs[name]
        assert job["schedule"] == {"expiration": None, "interval": "P10675199DT2H48M5.4775807S", "state": "Disabled"}
        status = job["status"]
        assert status["lastExecution"] is None and status["quarantine"] is None
        assert status["steadyStateFirstAchievedTime"] == status["steadyStateLastAchievedTime"] == SENTINEL
    sentinel = jobs["Zoom"][0]["status"]["lastSuccessfulExecution"]
    assert sentinel["activityIdentifier"] is None
    assert sentinel["timeBegan"] == sentinel["timeEnded"] == SENTINEL
    assert all(v == 0 for k, v in sentinel.items() if k.startswith("count"))
    assert jobs["Dropbox Business"][0]["status"]["lastSuccessfulExecution"] is None


def test_demo_serves_the_shapes_of_microsofts_examples(em: EmulatorServer) -> None:
    now = parse_time(em.advance_clock(0))
    jobs = jobs_by_name(em.tenant())

    # cloud sync schema article: a partial last success, no with-exports record
    (northwind,) = jobs["Contoso Cloud Sync (northwind.local)"]
    status = northwind["status"]
    assert northwind["schedule"]["interval"] == "PT2M" and status["code"] == "Active"
    partial = status["lastSuccessfulExecution"]
    assert partial["activityIdentifier"] is None and partial["timeBegan"] == SENTINEL
    assert parse_time(partial["timeEnded"]) <= now and partial["countImported"] >= 0
    assert status["lastSuccessfulExecutionWithExports"] is None
    assert status["lastExecution"]["activityIdentifier"]
    assert {pair["key"] for pair in status["synchronizedEntryCountByType"]} == {"user to User", "group to Group"}

    # a cycle running: progress observed within 30 s, the last run ended minutes ago
    (tailspin,) = jobs["Contoso Cloud Sync (tailspin.local)"]
    (progress,) = tailspin["status"]["progress"]
    assert 0 <= (now - parse_time(progress["progressObservationDateTime"])).total_seconds() <= 30
    assert (now - parse_time(tailspin["status"]["lastExecution"]["timeEnded"])).total_seconds() > 5 * 60
    assert tailspin["status"]["code"] == "Active"
    assert all(job["status"]["progress"] == [] for job in jobs["Salesforce"] + jobs["Slack"])  # between cycles

    # a first cycle still running: NotRun (docs: "hasn't completed its first run")
    (initial,) = jobs["Contoso HR SuccessFactors"]
    assert initial["status"]["code"] == "NotRun" and initial["status"]["progress"]

    # escrows pruned during the initial cycle, then paused
    (pruned,) = jobs["Fabrikam Learning Portal"]
    assert pruned["status"]["escrowsPruned"] is True and pruned["status"]["code"] == "Paused"
    assert pruned["status"]["lastSuccessfulExecution"] is None and pruned["status"]["quarantine"] is None

    # cross-tenant sync article: started, not run yet
    (started,) = jobs["Cross-tenant sync to Northwind Traders"]
    assert started["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Active"}
    last = started["status"]["lastExecution"]
    assert started["status"]["code"] == "NotRun" and last["activityIdentifier"] is None
    assert last["state"] == "Failed" and last["timeBegan"] == last["timeEnded"] == SENTINEL
    assert last["error"] == {"code": "None", "message": "", "tenantActionable": False}

    # a quarantine re-imposed within its series
    quarantine = jobs["AWS IAM Identity Center"][0]["status"]["quarantine"]
    assert quarantine["seriesCount"] > 1
    assert parse_time(quarantine["seriesBegan"]) < parse_time(quarantine["currentBegan"]) <= now


def test_demo_cloud_sync_is_found_by_template_not_by_tag(em: EmulatorServer) -> None:
    sp = sp_named(em.tenant(), "Contoso Cloud Sync (contoso.local)")
    assert sp["applicationTemplateId"] == CLOUD_SYNC_TEMPLATE and INTEGRATED not in sp["tags"]
    assert [job["templateId"] for job in sp["jobs"]] == ["AD2AADProvisioning", "AD2AADPasswordHash"]
    assert sp["jobs"][0]["schedule"]["interval"] == "PT2M"


def test_demo_timestamps_vary_in_fractional_digits(em: EmulatorServer) -> None:
    digits = set()
    for jobs in jobs_by_name(em.tenant()).values():
        for job in jobs:
            for kind in EXECUTION_KINDS:
                execution = job["status"][kind]
                if execution and execution["activityIdentifier"]:
                    parse_time(execution["timeEnded"])
                    digits.add(len(execution["timeBegan"].rstrip("Z").partition(".")[2]))
    assert {0, 7} <= digits and len(digits) >= 6


# ---------------------------------------------------------------- the clock


def test_advancing_the_clock_grows_history_plausibly(em: EmulatorServer) -> None:
    before = jobs_by_name(em.tenant())
    now = parse_time(em.advance_clock(3600))
    after = jobs_by_name(em.tenant())

    old, new = (jobs["Salesforce"][0]["status"]["lastExecution"] for jobs in (before, after))
    assert new["activityIdentifier"] != old["activityIdentifier"]
    assert parse_time(old["timeEnded"]) < parse_time(new["timeBegan"]) <= parse_time(new["timeEnded"]) <= now

    assert after["Slack"][0]["status"] == before["Slack"][0]["status"]  # paused: nothing moves
    aws = after["AWS IAM Identity Center"][0]["status"]
    assert aws["code"] == "Quarantine"
    quarantine = aws["quarantine"]
    assert parse_time(quarantine["seriesBegan"]) <= parse_time(quarantine["currentBegan"]) <= now
    assert parse_time(quarantine["nextAttempt"]) > now
    assert parse_time(aws["lastExecution"]["timeEnded"]) <= now
    assert (
        aws["countSuccessiveCompleteFailures"]
        >= before["AWS IAM Identity Center"][0]["status"]["countSuccessiveCompleteFailures"]
    )

    em.advance_clock(7 * 3600)  # E+8h
    later = jobs_by_name(em.tenant())
    assert before["Contoso HR SuccessFactors"][0]["status"]["lastExecution"] is None
    assert later["Contoso HR SuccessFactors"][0]["status"]["lastExecution"] is not None  # initial cycle done
    assert later["Contoso Cloud Sync (fabrikam.local)"][0]["status"]["code"] == "Quarantine"
    assert later["AWS IAM Identity Center"][0]["status"] == aws  # no retry due until E+12h

    now = parse_time(em.advance_clock(5 * 3600))  # E+13h: the retry 42 h into quarantine has run
    retried = jobs_by_name(em.tenant())["AWS IAM Identity Center"][0]["status"]
    assert retried["quarantine"]["seriesCount"] == quarantine["seriesCount"] + 1
    assert parse_time(quarantine["currentBegan"]) < parse_time(retried["quarantine"]["currentBegan"]) <= now
    assert retried["lastExecution"]["activityIdentifier"] != aws["lastExecution"]["activityIdentifier"]
    assert retried["lastExecution"]["state"] == "Failed"
    assert retried["countSuccessiveCompleteFailures"] == aws["countSuccessiveCompleteFailures"] + 1
    assert retried["lastSuccessfulExecution"] == aws["lastSuccessfulExecution"]


# ---------------------------------------------------------------- scale


def test_generated_tenant_of_10000_pages_in_11_pages_of_999(em: EmulatorServer, graph: httpx.Client) -> None:
    # How fast the tenant is generated is the benchmarks' business (bench/), not a timed test's.
    em.set_generated_tenant(10_000)
    pages = all_pages(graph, "/servicePrincipals", {"$top": 999, "$select": "id,appId,displayName"})
    assert [len(page["value"]) for page in pages] == [999] * 10 + [10]
    assert len({sp["id"] for page in pages for sp in page["value"]}) == 10_000
    first = pages[0]["value"][0]["id"]
    assert graph.get(f"/servicePrincipals/{first}/synchronization/jobs").status_code == 200


# ---------------------------------------------------------------- the real SDK


async def test_the_graph_sdk_pages_reads_jobs_and_sees_odata_errors(em: EmulatorServer) -> None:
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.service_principals.service_principals_request_builder import (
        ServicePrincipalsRequestBuilder,
    )

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = em.base_url
    client = GraphServiceClient(request_adapter=adapter)
    query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
        top=10, select=["id", "displayName"]
    )
    em.set_faults({"rules": [{"path": "^/servicePrincipals$", "status": 429, "retryAfter": 1, "times": 1}]})
    page = await client.service_principals.get(RequestConfiguration(query_parameters=query))
    names = []
    while page is not None:
        names += [sp.display_name for sp in page.value or []]
        page = await client.service_principals.with_url(page.odata_next_link).get() if page.odata_next_link else None
    assert names == [sp["displayName"] for sp in em.tenant()["servicePrincipals"]]
    assert em.stats()["statusCounts"]["429"] == 1  # the SDK's retry handler honoured Retry-After

    salesforce = sp_named(em.tenant(), "Salesforce")
    jobs = await client.service_principals.by_service_principal_id(salesforce["id"]).synchronization.jobs.get()
    assert jobs is not None and [job.id for job in jobs.value or []] == [salesforce["jobs"][0]["id"]]
    with pytest.raises(ODataError) as raised:
        await client.service_principals.by_service_principal_id("missing").get()
    assert raised.value.response_status_code == 404
    assert raised.value.error is not None and raised.value.error.code == "Request_ResourceNotFound"
    assert em.stats()["authorizationHeaderSeen"] is False


# ---------------------------------------------------------------- the command line


def test_command_line_prints_its_base_url_and_answers() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.graph_emulator", "--port", "0", "--tenant", "generated:50"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"GRAPH_BASE_URL=http://127\.0\.0\.1:(\d+)/v1\.0", line)
        assert match and int(match.group(1)) > 0, line
        base_url = line.split("=", 1)[1]
        assert len(httpx.get(f"{base_url}/servicePrincipals", params={"$top": 999}).json()["value"]) == 50
        control = EmulatorControl(base_url.rsplit("/", 1)[0])
        assert control.health()
        control.set_faults({"rules": [{"path": ".", "status": 503, "times": 1}]})
        assert httpx.get(f"{base_url}/servicePrincipals").status_code == 503
        assert control.stats()["statusCounts"]["503"] == 1
        control.close()
    finally:
        process.terminate()
        process.wait(timeout=10)  # it stops when asked: a hang times out here
    assert process.stdout.read() == ""  # exactly one line on stdout


def test_command_line_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        emulator_main(["--host", "0.0.0.0"])
    assert exited.value.code == 2
    assert "--allow-remote" in capsys.readouterr().err
