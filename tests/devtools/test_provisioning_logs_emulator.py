"""The emulator's `GET /auditLogs/provisioning` answers like Graph's provisioningObjectSummary list.

Shapes against Microsoft's examples (tests/fixtures/graph/provisioning), filters, order,
$top/$skiptoken paging, 400/403/429, the demo's failing jobs, determinism, the generated
tenant's failure-heavy job and the real msgraph SDK. One emulator, frozen clock, demo tenant.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer, demo_tenant
from devtools.graph_emulator.generated import FAILING_APP
from devtools.graph_emulator.provisioning import ProvisioningLog
from devtools.graph_emulator.state import EmulatorState
from tests.support.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "graph" / "provisioning"
PATH = "/auditLogs/provisioning"
NON_SUCCESS = (
    "(provisioningStatusInfo/status eq 'failure' or provisioningStatusInfo/status eq 'skipped'"
    " or provisioningStatusInfo/status eq 'warning')"
)


def read_all(graph: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    response = graph.get(PATH, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    events = list(body["value"])
    while "@odata.nextLink" in body:
        body = graph.get(body["@odata.nextLink"]).json()
        events += body["value"]
    return events


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return document


def missing_keys(documented: Any, served: Any, where: str = "") -> list[str]:
    """Keys of `documented` (recursively) that `served` lacks; free-form `details` maps skipped."""
    if isinstance(documented, dict):
        if not isinstance(served, dict):
            return [where or "."]
        out: list[str] = []
        for key, value in documented.items():
            if key not in served:
                out.append(f"{where}/{key}")
            elif key != "details":
                out += missing_keys(value, served[key], f"{where}/{key}")
        return out
    if isinstance(documented, list) and documented and isinstance(documented[0], dict):
        return missing_keys(documented[0], served[0], f"{where}[0]") if served else [f"{where}[]"]
    return []


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sp_named(em: EmulatorServer, name: str) -> dict[str, Any]:
    return next(sp for sp in em.tenant()["servicePrincipals"] if sp["displayName"] == name)


@pytest.mark.parametrize(
    ("name", "status"), [("provisioning_list_success", "success"), ("provisioning_list_failure", "failure")]
)
def test_every_documented_key_is_served_for_an_event_of_the_same_status(
    graph: httpx.Client, name: str, status: str
) -> None:
    documented = fixture(name)
    response = graph.get(PATH, params={"$filter": f"provisioningStatusInfo/status eq '{status}'", "$top": "1"})
    body = response.json()
    assert response.status_code == 200
    assert body["@odata.context"].endswith("/$metadata#auditLogs/provisioning")
    event = body["value"][0]
    expected = documented["value"][0]
    # Documented oddity: example 1 spells initiatedBy's type `initiatingType` (the resource page,
    # example 2 and the SDK say `initiatorType`, which the emulator serves).
    if "initiatingType" in expected["initiatedBy"]:
        expected = {
            **expected,
            "initiatedBy": {k: v for k, v in expected["initiatedBy"].items() if k != "initiatingType"},
        }
        assert event["initiatedBy"]["initiatorType"] == "system"
    assert missing_keys(expected, event) == []
    assert set(event) == set(documented["value"][0]) | {"initiatedBy"}
    assert event["provisioningStatusInfo"]["status"] == status


def test_filters_by_job_service_principal_status_and_time(em: EmulatorServer, graph: httpx.Client) -> None:
    truth = em.provisioning_events()
    assert truth, "the demo tenant logs events"
    servicenow = sp_named(em, "ServiceNow")
    job_id = servicenow["jobs"][0]["id"]
    by_job = read_all(graph, {"$filter": f"jobId eq '{job_id}'"})
    assert by_job and {e["jobId"] for e in by_job} == {job_id}
    assert len(by_job) == sum(1 for e in truth if e["jobId"] == job_id)
    by_sp = read_all(graph, {"$filter": f"servicePrincipal/id eq '{servicenow['id']}'"})
    assert sorted(e["id"] for e in by_sp) == sorted(e["id"] for e in by_job)
    assert read_all(graph, {"$filter": f"jobId eq '{job_id.upper()}'"}) == []  # "all case sensitive"

    now = when(em.now())
    hours = (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent_truth = [e for e in truth if when(e["activityDateTime"]) >= now - timedelta(hours=3)]
    failures = read_all(
        graph, {"$filter": f"provisioningStatusInfo/status eq 'failure' and activityDateTime ge {hours}"}
    )
    assert failures and len(failures) == sum(1 for e in recent_truth if e["status"] == "failure")
    non_success = read_all(graph, {"$filter": f"{NON_SUCCESS} and activityDateTime ge {hours}"})
    assert {e["provisioningStatusInfo"]["status"] for e in non_success} <= {"failure", "skipped", "warning"}
    assert len(non_success) == sum(1 for e in recent_truth if e["status"] != "success")

    since = (now - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = read_all(graph, {"$filter": f"jobId eq '{job_id}' and {NON_SUCCESS} and activityDateTime gt {since}"})
    cutoff = now - timedelta(hours=6)
    assert recent and all(when(e["activityDateTime"]) > cutoff for e in recent)
    assert len(recent) == sum(
        1 for e in truth if e["jobId"] == job_id and e["status"] != "success" and when(e["activityDateTime"]) > cutoff
    )
    bounded = read_all(graph, {"$filter": f"activityDateTime ge {since} and activityDateTime le {since}"})
    assert all(e["activityDateTime"] == since for e in bounded)


def test_pages_cover_each_event_exactly_once_in_either_order(em: EmulatorServer, graph: httpx.Client) -> None:
    job_id = sp_named(em, "ServiceNow")["jobs"][0]["id"]
    truth = [e["id"] for e in em.provisioning_events(job_id=job_id)]
    first = graph.get(PATH, params={"$filter": f"jobId eq '{job_id}'", "$top": "37"}).json()
    link = first["@odata.nextLink"]
    assert (
        link.startswith(em.base_url + PATH + "?") and "$skiptoken=" in link and "%24top=37" in link.replace("$", "%24")
    )
    for order, expected in (("activityDateTime desc", truth[::-1]), ("activityDateTime asc", truth)):
        seen, pages = [], 0
        body = graph.get(PATH, params={"$filter": f"jobId eq '{job_id}'", "$top": "37", "$orderby": order}).json()
        while True:
            pages += 1
            assert len(body["value"]) <= 37
            seen += [e["id"] for e in body["value"]]
            if "@odata.nextLink" not in body:
                break
            body = graph.get(body["@odata.nextLink"]).json()
        assert seen == expected and len(set(seen)) == len(seen)
        assert pages == -(-len(truth) // 37)
    default = read_all(graph, {"$filter": f"jobId eq '{job_id}'"})
    assert [e["id"] for e in default] == truth[::-1]  # newest first unless asked otherwise


def test_a_continuation_does_not_repeat_events_logged_after_the_first_page(
    em: EmulatorServer, graph: httpx.Client
) -> None:
    job_id = sp_named(em, "ServiceNow")["jobs"][0]["id"]
    body = graph.get(PATH, params={"$filter": f"jobId eq '{job_id}'", "$top": "50"}).json()
    seen = [e["id"] for e in body["value"]]
    em.advance_clock(3 * 3600)  # new runs log new events at the head
    while "@odata.nextLink" in body:
        body = graph.get(body["@odata.nextLink"]).json()
        seen += [e["id"] for e in body["value"]]
    assert len(seen) == len(set(seen))
    newer = read_all(graph, {"$filter": f"jobId eq '{job_id}'"})
    assert len(newer) > len(seen)  # events appear as emulator time passes


def test_unsupported_queries_get_graph_400s(graph: httpx.Client) -> None:
    for params in (
        {"$filter": "contains(jobId, 'scim')"},
        {"$filter": "provisioningAction eq 'create'"},
        {"$filter": "jobId ne 'x'"},
        {"$filter": "activityDateTime gt 'yesterday'"},
        {"$filter": "(jobId eq 'x'"},
        {"$top": "0"},
        {"$top": "1001"},
        {"$orderby": "jobId"},
        {"$skiptoken": "garbage"},
    ):
        response = graph.get(PATH, params=params)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["code"] == "BadRequest" and error["message"]
        assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_faults_403_without_audit_log_permission_and_429_with_retry_after(
    graph: httpx.Client, em: EmulatorServer
) -> None:
    em.set_faults({"rules": [{"path": "^/auditLogs/provisioning$", "status": 403}]})
    denied = graph.get(PATH)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    em.set_faults({"rules": [{"path": "^/auditLogs/provisioning$", "status": 429, "retryAfter": 7, "times": 1}]})
    throttled = graph.get(PATH, params={"$top": "1"})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert graph.get(PATH, params={"$top": "1"}).status_code == 200
    batch = graph.post(
        "/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/auditLogs/provisioning?$top=2"}]}
    ).json()
    assert batch["responses"][0]["status"] == 200 and len(batch["responses"][0]["body"]["value"]) == 2


def test_the_demo_has_failing_jobs_with_a_few_documented_error_codes(em: EmulatorServer) -> None:
    truth = em.provisioning_events()
    failures = [e for e in truth if e["status"] == "failure"]
    by_job = Counter(e["jobId"].split(".")[0] for e in failures)
    assert {"ServiceNowOutDelta", "gsuite"} <= set(by_job)  # escrow growing; escrow quarantine
    codes = Counter(e["errorCode"] for e in failures)
    assert len(codes) >= 4
    for event in em.provisioning_events(job_id=failures[-1]["jobId"], full=True)[-50:]:
        if event["provisioningStatusInfo"]["status"] != "failure":
            continue
        info = event["provisioningStatusInfo"]["errorInformation"]
        assert info["errorCategory"] in ("failure", "nonServiceFailure") and info["reason"]
        assert [s["status"] for s in event["provisioningSteps"]][-1] == "failure"
    now = when(em.now())
    assert all(now - timedelta(days=30) <= when(e["activityDateTime"]) <= now for e in truth)
    # a job whose last run reports escrows has failure events in that run's cycle
    snapshot = em.tenant()
    servicenow = next(sp for sp in snapshot["servicePrincipals"] if sp["displayName"] == "ServiceNow")
    last = servicenow["jobs"][0]["status"]["lastExecution"]
    assert last["countEscrowed"] > 0
    in_cycle = [
        e for e in failures if e["jobId"] == servicenow["jobs"][0]["id"] and e["cycleId"] == last["activityIdentifier"]
    ]
    assert len(in_cycle) == min(last["countEscrowed"], 300)


def test_events_are_deterministic_for_a_tenant_seed_and_clock() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
    one, two = ProvisioningLog(demo_tenant(now=now)), ProvisioningLog(demo_tenant(now=now))
    a, b = one.events(now), two.events(now)
    assert [one.materialise(e) for e in a[-200:]] == [two.materialise(e) for e in b[-200:]]
    assert len(a) == len(b)
    later = one.events(now + 3600)
    assert {e.id for e in a if e.at >= now + 3600 - 30 * 86400} <= {e.id for e in later}


def test_each_direction_names_entra_id_on_the_side_microsoft_documents() -> None:
    """Entra ID is the source of an outbound app (the failure example), the target of an inbound
    job (the success example), and both sides of cross-tenant sync, the target in another tenant."""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
    log = ProvisioningLog(demo_tenant(now=now))
    entra = fixture("provisioning_list_failure")["value"][0]["sourceSystem"]["displayName"]
    assert entra == fixture("provisioning_list_success")["value"][0]["targetSystem"]["displayName"]
    systems: dict[str, tuple[str, str, str, str, str]] = {}
    for event in log.events(now):
        template = event.job_id.split(".")[0]
        if template not in systems:
            raw = log.materialise(event)
            source, target = raw["sourceSystem"], raw["targetSystem"]
            app = raw["servicePrincipal"]["displayName"]
            systems[template] = (source["displayName"], target["displayName"], app, source["id"], target["id"])
    for inbound in ("Workday2AAD", "AD2AADProvisioning"):
        source, target, app, _, _ = systems[inbound]
        assert (source, target) == (app, entra), inbound
    for outbound in ("ServiceNowOutDelta", "gsuite"):
        source, target, app, _, _ = systems[outbound]
        assert (source, target) == (entra, app), outbound
    source, target, _, source_id, target_id = systems["Azure2Azure"]
    assert (source, target) == (entra, entra) and source_id != target_id


def test_a_static_tenant_serves_its_events_verbatim(em: EmulatorServer, graph: httpx.Client) -> None:
    success = fixture("provisioning_list_success")["value"][0]
    now = when(em.now())
    event = {**success, "activityDateTime": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    stale = {**success, "id": "old", "activityDateTime": (now - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    em.set_tenant({"tenantId": "t", "servicePrincipals": [], "provisioningEvents": [event, stale]})
    assert graph.get(PATH).json()["value"] == [event]  # the 31-day-old one is past retention


def test_a_generated_tenant_can_have_a_job_with_ten_thousand_failures() -> None:
    state = EmulatorState(frozen_clock=True)
    state.set_generated_tenant(50, 0.3, seed=3, failure_events=10_000)
    sp = state.tenant.service_principals()[-1]
    assert sp["displayName"] == FAILING_APP
    now = state.clock.now()
    events = state.provisioning.events(now, sp_id=str(sp["id"]))
    day = [e for e in events if e.status == "failure" and e.at >= now - 86_400]
    assert 10_000 <= len(day) <= 10_000 + 36 * 10


async def test_the_graph_sdk_reads_provisioning_pages(em: EmulatorServer) -> None:
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import ProvisioningRequestBuilder
    from msgraph.generated.models.provisioning_result import ProvisioningResult

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = em.base_url
    client = GraphServiceClient(request_adapter=adapter)
    job_id = sp_named(em, "ServiceNow")["jobs"][0]["id"]
    # The window holds about 60 events whatever the time of day (the last minutes may fall
    # between the job's runs): three pages of 25, and few objects for the SDK to parse.
    failed = sorted(
        (e for e in em.provisioning_events(job_id=job_id) if e["status"] != "success"),
        key=lambda e: when(e["activityDateTime"]),
    )
    since = when(failed[-60]["activityDateTime"]).replace(microsecond=0)
    truth = [e for e in failed if when(e["activityDateTime"]) > since]
    query = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
        filter=f"jobId eq '{job_id}' and {NON_SUCCESS} and activityDateTime gt {since:%Y-%m-%dT%H:%M:%SZ}",
        top=25,
        orderby=["activityDateTime asc"],
    )
    em.set_faults({"rules": [{"path": "^/auditLogs/provisioning$", "status": 429, "retryAfter": 1, "times": 1}]})
    page = await client.audit_logs.provisioning.get(RequestConfiguration(query_parameters=query))
    read, pages = [], 0
    while page is not None:
        pages += 1
        read += page.value or []
        page = (
            await client.audit_logs.provisioning.with_url(page.odata_next_link).get() if page.odata_next_link else None
        )
    assert pages > 1
    assert [e.id for e in read] == [e["id"] for e in truth]
    first = read[0]
    assert first.provisioning_status_info is not None and first.provisioning_status_info.status in (
        ProvisioningResult.Failure,
        ProvisioningResult.Skipped,
        ProvisioningResult.Warning,
    )
    failed = next(e for e in read if e.provisioning_status_info and e.provisioning_status_info.error_information)
    assert failed.provisioning_status_info is not None and failed.provisioning_status_info.error_information is not None
    assert failed.provisioning_status_info.error_information.error_code
    assert failed.service_principal is not None and failed.service_principal.display_name == "ServiceNow"
    assert failed.activity_date_time is not None and failed.job_id == job_id
