"""Who may call the API, from where, and what the open health check reveals."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api.auth import PRINCIPAL_HEADER
from shared.domain.timestamps import isoformat_utc
from shared.poll import PollFailedError, poll_tenant
from shared.settings import load_settings
from shared.storage.store import open_store
from tests.support.api import api_client

ROLE = "SyncMonitor.Read"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def principal(*roles: str, role_type: str = "roles", urlsafe: bool = False) -> str:
    claims = [{"typ": "name", "val": "ada@contoso.com"}] + [{"typ": role_type, "val": role} for role in roles]
    raw = json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": ROLE_URI}).encode()
    return (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()


@pytest.fixture
async def api(app_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


@pytest.fixture
def auth_on(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    monkeypatch.setenv("API_REQUIRED_ROLE", ROLE)


# ------------------------------------------------------------ App Service Authentication


async def test_with_auth_off_the_principal_header_is_ignored(api: httpx.AsyncClient) -> None:
    for header in (None, "not base64 at all", principal()):
        headers = {PRINCIPAL_HEADER: header} if header else {}
        assert (await api.get("/api/v1/jobs", headers=headers)).status_code == 200


@pytest.mark.usefixtures("auth_on")
async def test_with_auth_on_a_caller_without_a_principal_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "sign in" in response.json()["detail"]
    for garbage in ("%%%", base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b'{"claims": 5}').decode()):
        assert (await api.get("/api/v1/summary", headers={PRINCIPAL_HEADER: garbage})).status_code == 401


@pytest.mark.usefixtures("auth_on")
async def test_with_auth_on_the_role_is_required(api: httpx.AsyncClient) -> None:
    for header in (principal(), principal("Other.Role"), principal(ROLE.lower())):
        response = await api.get("/api/v1/jobs", headers={PRINCIPAL_HEADER: header})
        assert response.status_code == 403
        assert ROLE in response.json()["detail"] and "API_REQUIRED_ROLE" in response.json()["detail"]
    for header in (principal(ROLE), principal("Other", ROLE, role_type=ROLE_URI), principal(ROLE, urlsafe=True)):
        for path in ("/api/v1/jobs", "/api/v1/summary", "/api/v1/executions"):
            assert (await api.get(path, headers={PRINCIPAL_HEADER: header})).status_code == 200, path


@pytest.mark.usefixtures("auth_on")
async def test_with_auth_on_and_no_role_set_any_signed_in_caller_may_call(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_REQUIRED_ROLE", "")
    assert (await api.get("/api/v1/jobs", headers={PRINCIPAL_HEADER: principal()})).status_code == 200
    assert (await api.get("/api/v1/jobs")).status_code == 401


@pytest.mark.usefixtures("auth_on")
async def test_with_auth_on_health_stays_open(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/health")).status_code in (200, 503)


@pytest.mark.usefixtures("auth_on")
@pytest.mark.parametrize(
    "path", ["/api/openapi.json", "/api/docs", "/api/docs/reference.js", "/api/docs/swagger-ui.css"]
)
async def test_the_document_and_its_ui_answer_to_the_caller_check_of_api_v1(api: httpx.AsyncClient, path: str) -> None:
    refused = await api.get(path)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get(path, headers={PRINCIPAL_HEADER: principal("Other.Role")})).status_code == 403
    assert (await api.get(path, headers={PRINCIPAL_HEADER: principal(ROLE)})).status_code == 200


@pytest.mark.usefixtures("auth_on")
async def test_the_caller_is_checked_before_parameters(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/jobs", params={"top": "0"})).status_code == 401
    # A state the route itself refuses (not pydantic) is not told to a caller who may not read.
    assert (await api.get("/api/v1/executions", params={"state": "Bogus"})).status_code == 401


WRITE_ROLE = "SyncMonitor.Write"
OBJECT_ID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def signed_in(*roles: str) -> str:
    claims = [
        {"typ": "name", "val": "ada@contoso.com"},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": OBJECT_ID},
    ]
    raw = json.dumps({"auth_typ": "aad", "claims": claims + [{"typ": "roles", "val": r} for r in roles]})
    return base64.b64encode(raw.encode()).decode()


async def test_a_role_set_while_sign_in_is_off_refuses_every_call_and_trusts_no_forged_header(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-in off (no WEBSITE_AUTH_ENABLED, no API_SIGN_IN_ENABLED), a role set: a forged
    principal with every role gets what everyone gets, a 503 naming the settings."""
    forged = {PRINCIPAL_HEADER: signed_in(ROLE, WRITE_ROLE)}
    for name, value in (("API_REQUIRED_ROLE", ROLE), ("API_WRITE_ROLE", WRITE_ROLE)):
        monkeypatch.setenv(name, value)
        for headers in ({}, forged):
            for response in (
                await api.get("/api/v1/jobs", headers=headers),
                await api.post(
                    "/api/v1/alerts/mute", headers=headers, json={"servicePrincipalId": "s", "jobId": "j", "hours": 1}
                ),
            ):
                assert response.status_code == 503, response.text
                assert name in response.json()["detail"] and "sign-in is off" in response.json()["detail"]
        monkeypatch.delenv(name)
    assert (await api.get("/api/v1/jobs", headers=forged)).status_code == 200  # roles gone: the key reads


async def test_a_reader_cannot_write_and_a_writer_is_audited(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await poll_tenant(load_settings(), trigger="test")
    job = (await api.get("/api/v1/jobs")).json()["value"][0]
    sp_id, job_id = job["servicePrincipalId"], job["jobId"]
    body = {"servicePrincipalId": sp_id, "jobId": job_id, "hours": 1, "reason": "certificate rollover"}
    monkeypatch.setenv("API_SIGN_IN_ENABLED", "true")
    monkeypatch.setenv("API_REQUIRED_ROLE", ROLE)
    reader = {PRINCIPAL_HEADER: signed_in(ROLE)}
    # Sign-in on, no API_WRITE_ROLE: writes are off for everyone.
    for headers in (reader, {PRINCIPAL_HEADER: signed_in(ROLE, WRITE_ROLE)}):
        refused = await api.post("/api/v1/alerts/mute", headers=headers, json=body)
        assert refused.status_code == 403 and "API_WRITE_ROLE" in refused.json()["detail"]
    monkeypatch.setenv("API_WRITE_ROLE", WRITE_ROLE)
    for path in ("/api/v1/alerts/mute", "/api/v1/alerts/unmute"):
        refused = await api.post(path, headers=reader, json={"servicePrincipalId": sp_id, "jobId": job_id, "hours": 1})
        assert refused.status_code == 403 and WRITE_ROLE in refused.json()["detail"]
    assert (await api.get("/api/v1/alerts/mutes", headers=reader)).json()["value"] == []  # nothing written

    writer = {PRINCIPAL_HEADER: signed_in(ROLE, WRITE_ROLE)}
    muted = await api.post("/api/v1/alerts/mute", headers=writer, json=body)
    assert muted.status_code == 200, muted.text
    actor = {"name": "ada@contoso.com", "objectId": OBJECT_ID, "via": "signIn"}
    assert muted.json()["createdBy"] == actor
    assert (await api.get("/api/v1/alerts/mutes", headers=reader)).json()["value"][0]["createdBy"] == actor
    detail = (await api.get(f"/api/v1/jobs/{sp_id}/{job_id}", headers=reader)).json()
    [event] = [e for e in detail["events"] if e["kind"] == "alertsMuted"]
    assert (event["actor"], event["reason"], event["current"]) == (actor, "certificate rollover", "every rule")
    assert event["detail"] == f"until {muted.json()['until']}"


async def test_a_bad_setting_is_named_to_no_caller(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://evil.example/path?secret=1")
    response = await api.get("/api/v1/jobs")
    assert response.status_code == 503
    assert "CORS_ALLOWED_ORIGINS" not in response.text and "secret" not in response.text


# ------------------------------------------------------------ CORS


async def test_no_cors_headers_unless_origins_are_set(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/jobs", headers={"Origin": "https://portal.contoso.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_for_the_configured_origins_only(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://portal.contoso.com, https://dash.contoso.com/")
    allowed = await api.get("/api/v1/jobs", headers={"Origin": "https://dash.contoso.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://dash.contoso.com"
    assert "etag" in allowed.headers["access-control-expose-headers"].lower()
    other = await api.get("/api/v1/jobs", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await api.options(
        "/api/v1/jobs",
        headers={
            "Origin": "https://portal.contoso.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-functions-key, if-none-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://portal.contoso.com"
    assert "x-functions-key" in preflight.headers["access-control-allow-headers"].lower()


# ------------------------------------------------------------ the health check


async def store_poll(status: str, ended_minutes_ago: float, **extra: Any) -> dict[str, Any]:
    ended = datetime.now(UTC) - timedelta(minutes=ended_minutes_ago)
    record = {
        "pollId": f"p{ended.timestamp():.0f}{status}",
        "tenantId": load_settings().tenant_id,
        "status": status,
        "startedAt": isoformat_utc(ended - timedelta(seconds=20)),
        "endedAt": isoformat_utc(ended),
        "errorCount": 0,
        "errorsByKind": {},
        **extra,
    }
    store = open_store(load_settings())
    await store.ensure_tables()
    await store.save_poll(record)
    return record


async def health(api: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await api.get("/api/health")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


async def test_health_before_any_poll_is_503(api: httpx.AsyncClient) -> None:
    status, body = await health(api)
    assert (status, body["status"], body["lastPoll"], body["lastSuccessfulPollAt"]) == (503, "neverPolled", None, None)


async def test_health_follows_the_age_of_the_last_successful_poll(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_poll("succeeded", ended_minutes_ago=20)
    status, body = await health(api)  # 5 min schedule: 2 x 300 s + 480 s = 18 min
    assert (status, body["status"], body["maxAgeSeconds"]) == (503, "stale", 1080)
    assert 1190 < body["lastSuccessfulPollAgeSeconds"] < 1300
    monkeypatch.setenv("HEALTH_MAX_AGE_SECONDS", "3600")
    assert (await health(api))[0] == 200
    monkeypatch.setenv("POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.delenv("HEALTH_MAX_AGE_SECONDS")
    assert (await health(api))[1]["maxAgeSeconds"] == 2 * 3600 + 480


async def test_health_is_degraded_but_200_while_a_failing_poll_is_recent(api: httpx.AsyncClient) -> None:
    await store_poll("succeeded", ended_minutes_ago=6)
    failed = await store_poll("failed", ended_minutes_ago=1, errorCount=3, errorsByKind={"graphUnavailable": 3})
    status, body = await health(api)
    assert (status, body["status"]) == (200, "degraded")
    assert body["lastPoll"] == {
        "status": "failed",
        "startedAt": failed["startedAt"],
        "endedAt": failed["endedAt"],
        "errorCount": 3,
        "errorsByKind": {"graphUnavailable": 3},
        "workItemsPoisoned": 0,
        "provisioningLogs": None,
    }
    assert 350 < body["lastSuccessfulPollAgeSeconds"] < 450


async def test_health_when_misconfigured_is_503_and_names_nothing(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso tenant!")
    status, body = await health(api)
    assert (status, body["status"]) == (503, "misconfigured")
    assert "contoso" not in json.dumps(body)


async def test_the_anonymous_health_function_answers_as_the_api_does(api: httpx.AsyncClient) -> None:
    import function_app

    await store_poll("succeeded", ended_minutes_ago=1)
    user_function = function_app.health._function.get_user_function()
    response = await user_function(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert json.loads(response.get_body())["status"] == (await health(api))[1]["status"] == "healthy"


# ------------------------------------------------------------ blind is not degraded


def assert_names_nothing_of_the_tenant(text: str, emulator: EmulatorServer) -> None:
    tenant = emulator.tenant()
    assert tenant["tenantId"] not in text
    for sp in tenant["servicePrincipals"]:
        assert sp["id"] not in text
        # "Microsoft Graph" is the resource the reason names, not a secret of the tenant's.
        assert sp.get("displayName") in (None, "Microsoft Graph") or sp["displayName"] not in text


async def test_every_job_read_forbidden_is_blind_and_names_the_permission(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer
) -> None:
    # Synchronization.Read.All never granted: Graph answers 403 to every jobs read.
    demo_emulator.set_faults({"rules": [{"path": "/synchronization/jobs$", "status": 403, "inBatch": True}]})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["status"] == "partial"  # the poll itself stored what it could: nothing
    assert record["forbiddenReads"]["jobs"] == record["jobReads"] == record["servicePrincipalsScanned"] > 0
    response = await api.get("/api/health")
    body = response.json()
    assert (response.status_code, body["status"]) == (503, "blind")
    assert "Synchronization.Read.All" in body["reason"] and "admin consent" in body["reason"]
    assert "infra/" in body["reason"]
    assert_names_nothing_of_the_tenant(response.text, demo_emulator)
    demo_emulator.clear_faults()  # granted: the next poll sees again
    await poll_tenant(load_settings(), trigger="test")
    assert (await health(api))[:1] == (200,)


async def test_one_forbidden_service_principal_is_only_degraded(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer
) -> None:
    sp_id = next(sp["id"] for sp in demo_emulator.tenant()["servicePrincipals"] if sp.get("jobs"))
    demo_emulator.set_faults({"perId": {sp_id: 403}})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["forbiddenReads"] == {"jobs": 1, "servicePrincipals": 0}
    status, body = await health(api)
    assert (status, body["status"], body.get("reason")) == (200, "degraded", None)


async def test_listing_service_principals_forbidden_is_blind_and_names_application_read_all(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer
) -> None:
    demo_emulator.set_faults({"rules": [{"path": "^/servicePrincipals$", "status": 403, "inBatch": False}]})
    with pytest.raises(PollFailedError, match=r"Application\.Read\.All") as failed:
        await poll_tenant(load_settings(), trigger="test")
    assert failed.value.record["errorsByKind"] == {"servicePrincipalsForbidden": 1}
    response = await api.get("/api/health")
    body = response.json()
    assert (response.status_code, body["status"]) == (503, "blind")
    assert "Application.Read.All" in body["reason"] and "Synchronization" not in body["reason"]
    assert_names_nothing_of_the_tenant(response.text, demo_emulator)


async def test_pinned_service_principals_all_forbidden_is_blind(
    api: httpx.AsyncClient, demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = [sp["id"] for sp in demo_emulator.tenant()["servicePrincipals"][:3]]
    monkeypatch.setenv("SERVICE_PRINCIPAL_IDS", ",".join(pinned))
    demo_emulator.set_faults({"rules": [{"path": "^/servicePrincipals/[^/]+$", "status": 403, "inBatch": True}]})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["forbiddenReads"] == {"jobs": 0, "servicePrincipals": 3} and record["jobReads"] == 0
    status, body = await health(api)
    assert (status, body["status"]) == (503, "blind") and "Application.Read.All" in body["reason"]
