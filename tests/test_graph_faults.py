"""Graph under faults: throttling (top level and inside batches), 503 bursts, truncated bodies,
forbidden and missing service principals, slow answers past the poll deadline. The real SDK
talks to the emulator; what is stored must be exactly what an undisturbed poll stores."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from devtools.graph_emulator import EmulatorServer
from shared.poll import poll_tenant
from shared.settings import Settings, load_settings
from shared.store import open_store


async def stored_state(settings: Settings) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every stored job (without what moves with the clock) and every job's stored run ids."""
    store = open_store(settings)
    jobs = {
        f"{j['servicePrincipalId']}|{j['jobId']}": {**j, "observedAt": None, "healthReasons": None}
        for j in await store.list_jobs()
    }
    runs = {}
    for key, job in jobs.items():
        page, _ = await store.list_executions(job["servicePrincipalId"], job["jobId"], top=1000)
        runs[key] = sorted(run["activityIdentifier"] for run in page)
    return jobs, runs


@pytest.fixture
def frozen(app_env: dict[str, str], demo_emulator: EmulatorServer) -> EmulatorServer:
    demo_emulator.set_tenant(demo_emulator.tenant())  # the demo as it is now, frozen
    return demo_emulator


async def test_throttling_everywhere_stores_exactly_what_an_undisturbed_poll_stores(frozen: EmulatorServer) -> None:
    settings = load_settings()
    clean = dataclasses.replace(settings, table_prefix=settings.table_prefix + "clean")
    await poll_tenant(clean, trigger="test")
    expected = await stored_state(clean)

    frozen.set_faults(
        {
            "rules": [
                {"path": "^/servicePrincipals$", "status": 429, "retryAfter": 1, "times": 1, "inBatch": False},
                {"path": "^/\\$batch$", "status": 503, "retryAfter": 1, "times": 2, "inBatch": False},
                {"path": "/synchronization/jobs$", "status": 429, "retryAfter": 1, "every": 3, "inBatch": True},
            ]
        }
    )
    frozen.reset_stats()
    record = await poll_tenant(settings, trigger="test")
    assert record["status"] == "succeeded", record["errors"]
    assert record["graph"]["throttled"] >= 3
    assert record["graph"]["retries"] >= 3
    assert frozen.stats()["statusCounts"]["429"] >= 1
    assert await stored_state(settings) == expected


async def test_a_truncated_answer_is_read_again(frozen: EmulatorServer) -> None:
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "truncate", "times": 1, "inBatch": False}]})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["status"] == "succeeded", record["errors"]
    assert record["graph"]["retries"] >= 1
    assert record["jobsRead"] > 0


async def test_a_forbidden_or_missing_service_principal_is_recorded_and_the_rest_stored(
    frozen: EmulatorServer,
) -> None:
    principals = [sp for sp in frozen.tenant()["servicePrincipals"] if sp.get("jobs")]
    forbidden, missing = principals[0]["id"], principals[1]["id"]
    frozen.set_faults({"perId": {forbidden: 403, missing: 404}})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"graphRead": 1, "servicePrincipalNotFound": 1}
    assert {e["servicePrincipalId"] for e in record["errors"]} == {forbidden, missing}
    assert record["errorsByServicePrincipal"] == {forbidden: 1, missing: 1}
    stored = {job["servicePrincipalId"] for job in await open_store(load_settings()).list_jobs()}
    assert forbidden not in stored and missing not in stored
    assert stored == {sp["id"] for sp in principals[2:]}


async def test_a_service_principal_that_fails_later_keeps_its_jobs(frozen: EmulatorServer) -> None:
    settings = load_settings()
    await poll_tenant(settings, trigger="test")
    before = {job["jobId"] for job in await open_store(settings).list_jobs()}
    sp = next(sp for sp in frozen.tenant()["servicePrincipals"] if sp.get("jobs"))
    frozen.set_faults({"perId": {sp["id"]: 403}})
    record = await poll_tenant(settings, trigger="test")
    assert record["jobsRemoved"] == 0  # an unreadable service principal is not an empty one
    assert {job["jobId"] for job in await open_store(settings).list_jobs()} == before


async def test_graph_failing_every_read_fails_the_poll_loudly(frozen: EmulatorServer) -> None:
    from shared.poll import PollFailedError

    frozen.set_faults({"rules": [{"path": "/synchronization/jobs$", "status": 500, "inBatch": True}]})
    with pytest.raises(PollFailedError, match="Graph failed every job read") as failed:
        await poll_tenant(load_settings(), trigger="test")
    assert failed.value.record["status"] == "failed"
    last = await open_store(load_settings()).last_poll()
    assert last is not None and last["pollId"] == failed.value.record["pollId"]  # recorded before failing


async def test_slow_graph_past_the_deadline_leaves_the_rest_for_the_next_poll(frozen: EmulatorServer) -> None:
    frozen.set_generated_tenant(150, job_ratio=0.4)
    frozen.set_tenant(frozen.tenant())
    settings = load_settings()
    await poll_tenant(settings, trigger="test")  # discovery: learns which service principals have jobs
    with_jobs = [sp["id"] for sp in frozen.tenant()["servicePrincipals"] if sp.get("jobs")]
    slow = dataclasses.replace(settings, graph_max_concurrency=1, poll_deadline_seconds=0.5)
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "slow", "delayMs": 800, "inBatch": False}]})
    record = await poll_tenant(slow, trigger="test")
    assert record["status"] == "partial"
    # One batch of 20 started before the deadline; the others wait for the next poll.
    assert len(with_jobs) > 40
    assert len(record["unfinishedServicePrincipals"]) == len(with_jobs) - 20
    assert record["jobsRead"] > 0
    frozen.clear_faults()
    frozen.reset_stats()
    after = await poll_tenant(settings, trigger="test")
    assert after["status"] == "succeeded"
    assert after["unfinishedServicePrincipals"] == []


async def test_without_json_batching_the_poll_reads_one_by_one(frozen: EmulatorServer) -> None:
    settings = load_settings()
    clean = dataclasses.replace(settings, table_prefix=settings.table_prefix + "clean")
    await poll_tenant(clean, trigger="test")
    expected = await stored_state(clean)
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "status": 404, "inBatch": False}]})
    frozen.reset_stats()
    record = await poll_tenant(settings, trigger="test")
    assert record["status"] == "succeeded", record["errors"]
    assert frozen.stats()["byPath"].get("/servicePrincipals/{id}/synchronization/jobs", 0) > 0
    assert await stored_state(settings) == expected
