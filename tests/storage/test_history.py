"""History that lasts: discovery memory, job timelines, derived run figures, overlap, retention."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.graph_emulator import EmulatorServer
from shared.api.app import create_app
from shared.domain.health import classify_health
from shared.poll import poll_tenant, run_poll
from shared.retention import apply_retention
from shared.settings import load_settings
from shared.storage.store import open_store
from tests.support import tenants

SP_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
async def api(app_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def execution(activity: str, began: str, state: str = "Succeeded", **counts: Any) -> dict[str, Any]:
    ended = (datetime.fromisoformat(began.rstrip("Z")) + timedelta(minutes=1)).isoformat() + "Z"
    return {"activityIdentifier": activity, "state": state, "timeBegan": began, "timeEnded": ended, **counts}


def job(job_id: str, code: str = "Active", last: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return tenants.job(job_id, "scim", last, code, **status)


def tenant(*jobs: dict[str, Any], extra_principals: int = 0) -> dict[str, Any]:
    principals = [{"id": SP_ID, "appId": "app", "displayName": "Contoso SCIM", "jobs": list(jobs)}]
    principals += [
        {
            "id": f"00000000-0000-0000-0000-{index:012d}",
            "appId": f"a{index}",
            "displayName": f"No jobs {index}",
            "jobs": [],
        }
        for index in range(extra_principals)
    ]
    return {"tenantId": "t", "servicePrincipals": principals}


def recent(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_regular_poll_reads_only_service_principals_with_jobs(
    app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(10))), extra_principals=45))
    first = await run_poll(trigger="test")
    assert first["discovery"] is True  # no discovery yet: the first poll is one
    assert first["servicePrincipalsScanned"] == 46
    demo_emulator.reset_stats()
    regular = await run_poll(trigger="test")
    assert regular["discovery"] is False
    assert regular["servicePrincipalsScanned"] == 1
    stats = demo_emulator.stats()
    assert (stats["requests"], stats["batchItems"]) == (1, 1)  # one $batch holding one job read
    again = await run_poll(trigger="test", discover=True)
    assert again["discovery"] is True and again["servicePrincipalsScanned"] == 46


async def test_a_job_found_by_discovery_is_then_polled(app_env: dict[str, str], demo_emulator: EmulatorServer) -> None:
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(10))), extra_principals=2))
    await run_poll(trigger="test")
    grown = tenant(job("scim.a", last=execution("r1", recent(10))), extra_principals=2)
    grown["servicePrincipals"][1]["jobs"] = [job("scim.new", last=execution("n1", recent(5)))]
    demo_emulator.set_tenant(grown)
    assert (await run_poll(trigger="test"))["jobsRead"] == 1  # not yet known
    assert (await run_poll(trigger="test", discover=True))["jobsRead"] == 2
    assert (await run_poll(trigger="test"))["jobsRead"] == 2


async def test_timeline_records_transitions_once(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    quarantine = {
        "reason": "EncounteredQuarantineException",
        "currentBegan": recent(5),
        "seriesBegan": recent(5),
        "nextAttempt": recent(-360),
        "seriesCount": 1,
        "error": {"code": "CredentialsInvalid"},
    }
    states = [
        job("scim.a", last=execution("r1", recent(30))),
        job("scim.a", code="Quarantine", last=execution("r2", recent(10), "Failed"), quarantine=quarantine),
        job("scim.a", code="Quarantine", last=execution("r2", recent(10), "Failed"), quarantine=quarantine),
        job("scim.a", last=execution("r3", recent(2))),
    ]
    for state in states:
        demo_emulator.set_tenant(tenant(state))
        await run_poll(trigger="test")
    detail = (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).json()
    kinds = [(event["kind"], event["previous"], event["current"]) for event in reversed(detail["events"])]
    assert kinds == [
        ("jobAppeared", None, "Active"),
        ("statusCodeChanged", "Active", "Quarantine"),
        ("quarantineEntered", None, "EncounteredQuarantineException"),
        ("healthChanged", "healthy", "quarantined"),
        ("statusCodeChanged", "Quarantine", "Active"),
        ("quarantineLeft", "EncounteredQuarantineException", None),
        ("healthChanged", "quarantined", "healthy"),
    ]


async def test_a_removed_job_leaves_the_current_state_and_keeps_its_history(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(9))), job("scim.b")))
    await run_poll(trigger="test")
    demo_emulator.set_tenant(tenant(job("scim.b")))
    record = await run_poll(trigger="test")
    assert record["jobsRemoved"] == 1
    jobs = (await api.get("/api/v1/jobs")).json()["value"]
    assert [j["jobId"] for j in jobs] == ["scim.b"]
    assert (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).status_code == 404
    store = open_store(load_settings())
    assert next(e["kind"] for e in await store.list_events(SP_ID, "scim.a")) == "jobRemoved"
    runs, _ = await store.executions_page(SP_ID, "scim.a", top=10)
    assert [r["activityIdentifier"] for r in runs] == ["r1"]


async def test_escrow_change_since_the_previous_run(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    for activity, minutes, escrowed in (("r1", 50, 5), ("r2", 20, 12)):
        last = execution(
            activity, recent(minutes), "EntryLevelErrors", countEscrowed=escrowed, countExports=10, countExported=8
        )
        demo_emulator.set_tenant(tenant(job("scim.a", last=last)))
        await run_poll(trigger="test")
    runs = (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a/executions")).json()["value"]
    assert [(r["activityIdentifier"], r["escrowDelta"], r["exportSuccessRatio"]) for r in runs] == [
        ("r2", 7, 0.8),
        ("r1", None, 0.8),
    ]


async def test_two_polls_at_once_store_each_run_once(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    demo_emulator.freeze_clock()
    demo_emulator.set_tenant(demo_emulator.tenant())
    settings = load_settings()
    first, second = await asyncio.gather(poll_tenant(settings, trigger="a"), poll_tenant(settings, trigger="b"))
    assert first["runsStored"] > 0 and second["runsStored"] > 0
    summary = (await api.get("/api/v1/summary")).json()
    total = 0
    for stored_job in (await api.get("/api/v1/jobs")).json()["value"]:
        url = f"/api/v1/jobs/{stored_job['servicePrincipalId']}/{stored_job['jobId']}/executions"
        ids = [r["activityIdentifier"] for r in (await api.get(url, params={"top": 1000})).json()["value"]]
        assert len(ids) == len(set(ids))
        total += len(ids)
    assert summary["executions"]["total"] == total
    demo_emulator.freeze_clock(False)


async def test_an_interrupted_poll_reads_the_rest_next_time(
    app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    settings = load_settings()
    await poll_tenant(settings, trigger="test")  # discovery
    cut_short = await poll_tenant(dataclasses.replace(settings, poll_deadline_seconds=0), trigger="test")
    assert cut_short["status"] == "partial"
    assert cut_short["unfinishedServicePrincipals"] and cut_short["jobsRead"] == 0
    after = await poll_tenant(settings, trigger="test")
    assert after["unfinishedServicePrincipals"] == []
    assert after["jobsRead"] >= len(cut_short["unfinishedServicePrincipals"])


async def test_retention_deletes_old_runs_and_keeps_rollups(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    old = (datetime.now(UTC) - timedelta(days=500)).strftime("%Y-%m-%dT%H:%M:%SZ")
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("ancient", old))))
    await run_poll(trigger="test")
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("fresh", recent(5)))))
    await run_poll(trigger="test")
    before = (await api.get("/api/v1/summary")).json()["executions"]
    result = await apply_retention(load_settings(), budget=1)
    assert result["runsDeleted"] == 1 and result["finished"] is True
    runs = (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a/executions")).json()["value"]
    assert [r["activityIdentifier"] for r in runs] == ["fresh"]
    assert (await api.get("/api/v1/summary")).json()["executions"] == before  # rollups stay
    again = await apply_retention(load_settings())
    assert again["runsDeleted"] == 0


async def test_a_job_removed_and_back_keeps_both_appearances(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    back = job("scim.a", last=execution("r1", recent(9)))
    for present in (True, False, True, False, True):
        demo_emulator.set_tenant(tenant(back, job("scim.b")) if present else tenant(job("scim.b")))
        await run_poll(trigger="test")
    kinds = [event["kind"] for event in reversed((await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).json()["events"])]
    assert kinds == ["jobAppeared", "jobRemoved", "jobAppeared", "jobRemoved", "jobAppeared"]
    # A repeated poll of the same state writes no further appearance.
    await run_poll(trigger="test")
    events = (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).json()["events"]
    assert [event["kind"] for event in events].count("jobAppeared") == 3


async def test_a_job_the_monitor_cannot_read_is_marked_once_and_cleared_by_a_read(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(9)))))
    first = await run_poll(trigger="test")
    store = open_store(load_settings())

    async def stored() -> tuple[dict[str, Any], str]:
        entity = await store.tables["Jobs"].get_entity(store.tenant_id, f"{SP_ID}|scim.a")
        return await store.get_job(SP_ID, "scim.a") or {}, entity.metadata["etag"]

    read_state, _ = await stored()  # as the last poll that read it left it
    assert read_state.get("notObservedSince") is None

    demo_emulator.set_faults({"perId": {SP_ID: 403}})
    blind = await run_poll(trigger="test")
    assert blind["servicePrincipalsNotRead"] == [SP_ID]
    assert blind["jobsNotObserved"] == 1 and blind["jobsRemoved"] == 0
    marked, etag = await stored()
    assert marked["notObservedSince"] == first["startedAt"]  # the last poll that read it
    assert marked["observedAt"] == read_state["observedAt"]  # a missed read is not a change
    assert marked["notObservedReason"].startswith("Graph answered HTTP 403")
    # Briefly unread: judged as of its last read, so still healthy, not stale.
    assert (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).json()["job"]["health"] == "healthy"
    later = datetime.now(UTC) + timedelta(hours=3)
    assert classify_health(marked, now=later)[0] == "unobserved"

    again = await run_poll(trigger="test")  # still blind: nothing is written again
    assert again["jobsNotObserved"] == 0
    assert (await stored())[1] == etag

    demo_emulator.clear_faults()
    await run_poll(trigger="test")
    cleared, _ = await stored()
    assert cleared.get("notObservedSince") is None and cleared["health"] == "healthy"
    assert cleared["observedAt"] == read_state["observedAt"]
    kinds = [e["kind"] for e in (await api.get(f"/api/v1/jobs/{SP_ID}/scim.a")).json()["events"]]
    assert kinds == ["jobAppeared"]  # the blind spot left no transitions behind


async def test_a_discovery_refused_every_jobs_read_stays_unfinished_so_blindness_shows(
    app_env: dict[str, str], demo_emulator: EmulatorServer, api: httpx.AsyncClient
) -> None:
    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(9))), extra_principals=3))
    demo_emulator.set_faults({"rules": [{"path": "/synchronization/jobs$", "status": 403, "inBatch": True}]})
    first = await run_poll(trigger="test")
    second = await run_poll(trigger="test")  # not a regular poll of nothing: discovery again
    assert first["discovery"] and second["discovery"]
    assert second["forbiddenReads"]["jobs"] == 4
    assert (await api.get("/api/health")).json()["status"] == "blind"


async def test_when_polls_stop_the_api_says_the_monitor_is_blind_not_that_jobs_stopped(
    app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    from shared.api.current import current_job as _current
    from shared.api.current import polls_stopped_at as _polls_stopped_at

    demo_emulator.set_tenant(tenant(job("scim.a", last=execution("r1", recent(9)))))
    record = await run_poll(trigger="test")
    settings = load_settings()
    store = open_store(settings)
    (stored,) = await store.list_jobs()
    assert await _polls_stopped_at(store, settings, datetime.now(UTC)) is None
    later = datetime.now(UTC) + timedelta(hours=5)  # five hours without a poll
    stopped = await _polls_stopped_at(store, settings, later)
    assert stopped == record["startedAt"]
    view = _current(stored, later, settings, stopped)
    assert view["health"] == "unobserved"
    assert view["healthReasons"][0].startswith(f"not observed since {record['startedAt']}")
