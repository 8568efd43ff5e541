"""Many tenants through the work queue, against one emulator serving every tenant under its own
base path with its own token check (as Graph checks each tenant's token):

- the home tenant, at the emulator's root;
- Fabrikam, which accepts only its own token;
- Northwind, whose consent was revoked: it accepts no token the app can get (401 on every read);
- Tailspin, throttled: every job read is told to come back in an hour.

The timer's part sends one message per tenant; a local worker does them as the queue trigger
would; each tenant gets its own record, and the tokens each tenant saw are its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from devtools.azurite import AzuriteServer
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer, demo_tenant, generated_tenant
from shared.settings import Settings, load_settings
from tests.support.api import api_client
from tests.support.env import app_settings, apply_settings

HOME = DEMO_TENANT_ID
FABRIKAM = "11111111-2222-3333-4444-555555555555"
NORTHWIND = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
TAILSPIN = "0f0f0f0f-1e1e-2d2d-3c3c-4b4b4b4b4b4b"


class TenantCredential:
    """What each tenant's authority would issue: a token good for that tenant only."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(f"token-of-{self.tenant_id}", int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> TenantCredential:
        return self

    async def __aexit__(self, *args: Any) -> None:
        pass


@pytest.fixture
def graph() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        tenant=demo_tenant(seed=4),
        tenants={
            FABRIKAM: generated_tenant(12, 0.5, seed=7),
            NORTHWIND: generated_tenant(6, 0.5, seed=5),
            TAILSPIN: generated_tenant(10, 0.5, seed=9),
        },
        tokens={FABRIKAM: f"token-of-{FABRIKAM}", NORTHWIND: "consent-revoked"},
    ) as server:
        server.for_tenant(TAILSPIN).set_faults(
            {"rules": [{"path": "^/servicePrincipals/.+/synchronization/jobs", "status": 429, "retryAfter": 3600}]}
        )
        yield server


@pytest.fixture
def env(azurite: AzuriteServer, graph: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from shared.graph import reader

    def credential(settings: Settings) -> TenantCredential | None:
        return None if settings.tenant_id == HOME else TenantCredential(settings.tenant_id)

    monkeypatch.setattr(reader, "build_credential", credential)
    tenants = [
        {"tenantId": tenant_id, "displayName": name, "graphBaseUrl": graph.for_tenant(tenant_id).base_url}
        for tenant_id, name in ((FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind"), (TAILSPIN, "Tailspin"))
    ]
    settings = {**app_settings(azurite, graph), "TENANTS": json.dumps(tenants)}
    apply_settings(monkeypatch, settings)
    return settings


@pytest.mark.usefixtures("env")
async def test_each_tenant_is_a_queue_message_and_gets_its_own_record(graph: EmulatorServer) -> None:
    from shared.poll import run_poll
    from shared.work import drain_tenant_polls

    sent = await run_poll(trigger="test")
    assert sent["status"] == "dispatched"
    assert {brief["tenantId"] for brief in sent["tenants"]} == {HOME, FABRIKAM, NORTHWIND, TAILSPIN}
    records = await drain_tenant_polls(load_settings(), sent["tenants"], time.monotonic() + 120)
    by_tenant = {record["tenantId"]: record for record in records}
    assert {t: r["pollId"] for t, r in by_tenant.items()} == {b["tenantId"]: b["pollId"] for b in sent["tenants"]}
    assert by_tenant[HOME]["status"] == by_tenant[FABRIKAM]["status"] == "succeeded"
    assert by_tenant[FABRIKAM]["jobsRead"] > 0
    assert by_tenant[NORTHWIND]["status"] == "failed"
    assert by_tenant[NORTHWIND]["errorsByKind"] == {"graphUnauthorized": 1}
    # A first poll is a discovery: what it could not read is left to its sweep, but counted.
    assert by_tenant[TAILSPIN]["graph"]["throttledPastDeadline"] == 10 and by_tenant[TAILSPIN]["jobsRead"] == 0

    # Each tenant's Graph saw that tenant's token only (the home tenant's none: GRAPH_AUTH=none).
    fabrikam = graph.for_tenant(FABRIKAM).stats()
    assert set(fabrikam["authorizationValues"]) == {f"Bearer token-of-{FABRIKAM}"}
    assert set(graph.for_tenant(NORTHWIND).stats()["authorizationValues"]) == {f"Bearer token-of-{NORTHWIND}"}
    assert graph.stats()["authorizationValues"] == {}

    # The same messages again (a retry, or a slow queue): nothing is polled twice.
    requests = fabrikam["requests"]
    from shared.storage.work_queue import work_queue

    queue = work_queue(load_settings())
    assert queue is not None
    await queue.send(
        [
            {
                "v": 1,
                "kind": "tenantPoll",
                "tenantId": FABRIKAM,
                "pollId": by_tenant[FABRIKAM]["pollId"],
                "pollStartedAt": by_tenant[FABRIKAM]["startedAt"],
                "trigger": "test",
                "discover": False,
                "pastDue": False,
            }
        ]
    )
    from shared.work import LocalWorker, queue_options

    tally = await LocalWorker(load_settings(), queue_options()).run(idle_seconds=1)
    assert tally.items == 1 and tally.failed == 0
    assert graph.for_tenant(FABRIKAM).stats()["requests"] == requests

    async with api_client() as api:
        states = {t["tenantId"]: t["state"] for t in (await api.get("/api/v1/tenants")).json()["value"]}
    assert states == {HOME: "healthy", FABRIKAM: "healthy", NORTHWIND: "consentMissing", TAILSPIN: "throttled"}


@pytest.mark.usefixtures("env")
async def test_a_tenant_throttled_on_every_request_reads_as_throttled(graph: EmulatorServer) -> None:
    from shared.poll import run_poll

    # Even the service principal list: the SDK's retries give up, the tenant's poll says why.
    graph.for_tenant(TAILSPIN).set_faults({"rules": [{"path": ".*", "status": 429, "retryAfter": 1}]})
    result = await run_poll(trigger="test", tenants_inline=True)
    by_tenant = {brief["tenantId"]: brief for brief in result["tenants"]}
    assert by_tenant[TAILSPIN]["status"] == "failed" and by_tenant[FABRIKAM]["status"] == "succeeded"
    async with api_client() as api:
        tailspin = (await api.get(f"/api/v1/tenants/{TAILSPIN}")).json()
    assert tailspin["state"] == "throttled"
    assert tailspin["lastPoll"]["errorsByKind"] == {"graphThrottled": 1}


@pytest.mark.usefixtures("env")
async def test_a_throttled_tenant_waits_seconds_not_its_deadline(graph: EmulatorServer) -> None:
    from shared.poll import run_poll
    from shared.tenant_polls import TENANT_RETRY_WAIT_MAX_SECONDS

    graph.for_tenant(TAILSPIN).clear_faults()
    first = await run_poll(trigger="test", tenants_inline=True)  # the discoveries, all read
    assert {brief["tenantId"] for brief in first["tenants"]} >= {HOME, FABRIKAM, TAILSPIN}
    # A Retry-After well inside the poll's deadline (480 s), but longer than a tenant among
    # others waits: its reads are left for its next poll, and the poll ends at once.
    retry_after = int(4 * TENANT_RETRY_WAIT_MAX_SECONDS)
    graph.for_tenant(TAILSPIN).set_faults(
        {"rules": [{"path": "^/servicePrincipals/.+/synchronization/jobs", "status": 429, "retryAfter": retry_after}]}
    )
    started = time.monotonic()
    second = await run_poll(trigger="test", tenants_inline=True)
    assert time.monotonic() - started < TENANT_RETRY_WAIT_MAX_SECONDS
    by_tenant = {brief["tenantId"]: brief for brief in second["tenants"]}
    assert by_tenant[TAILSPIN]["status"] == "partial" and by_tenant[FABRIKAM]["status"] == "succeeded"
    async with api_client() as api:
        assert (await api.get(f"/api/v1/tenants/{TAILSPIN}")).json()["state"] == "throttled"


@pytest.mark.usefixtures("env")
async def test_a_throttled_service_principal_list_is_not_waited_out_for_minutes(graph: EmulatorServer) -> None:
    from shared.poll import run_poll
    from shared.tenant_polls import TENANT_RETRY_WAIT_MAX_SECONDS

    # Left to the SDK, a Retry-After of two minutes would be waited out three times over.
    graph.for_tenant(TAILSPIN).set_faults(
        {"rules": [{"path": ".*", "status": 429, "retryAfter": int(4 * TENANT_RETRY_WAIT_MAX_SECONDS)}]}
    )
    started = time.monotonic()
    result = await run_poll(trigger="test", tenants_inline=True)
    assert time.monotonic() - started < TENANT_RETRY_WAIT_MAX_SECONDS
    by_tenant = {brief["tenantId"]: brief for brief in result["tenants"]}
    assert by_tenant[TAILSPIN]["status"] == "failed" and by_tenant[FABRIKAM]["status"] == "succeeded"
    assert graph.for_tenant(TAILSPIN).stats()["requests"] == 1  # asked once, not retried
