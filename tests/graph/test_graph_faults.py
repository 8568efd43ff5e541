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
from shared.storage.store import open_store


async def stored_state(settings: Settings) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every stored job (without what moves with the clock) and every job's stored run ids."""
    store = open_store(settings)
    jobs = {
        f"{j['servicePrincipalId']}|{j['jobId']}": {
            **j,
            "observedAt": None,
            "firstObservedAt": None,
            "healthReasons": None,
        }
        for j in await store.list_jobs()
    }
    runs = {}
    for key, job in jobs.items():
        page, _ = await store.executions_page(job["servicePrincipalId"], job["jobId"], top=1000)
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
    # The deadline counts from the poll's start, storage reads included: 3 s leaves room for
    # them on a loaded machine, and a 4 s batch still ends after it.
    slow = dataclasses.replace(settings, graph_max_concurrency=1, poll_deadline_seconds=3)
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "slow", "delayMs": 4000, "inBatch": False}]})
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


# ------------------------------------------------------------ a bad answer costs one service principal


async def first_poll(frozen: EmulatorServer) -> tuple[Settings, str, set[str]]:
    """A clean discovery; returns the settings, a service principal with jobs, and its job ids."""
    settings = load_settings()
    await poll_tenant(settings, trigger="test")
    sp_id = next(sp["id"] for sp in frozen.tenant()["servicePrincipals"] if sp.get("jobs"))
    return settings, sp_id, await stored_job_ids(settings, sp_id)


async def stored_job_ids(settings: Settings, sp_id: str) -> set[str]:
    return {job["jobId"] for job in await open_store(settings).list_jobs() if job["servicePrincipalId"] == sp_id}


async def assert_kept(settings: Settings, sp_id: str, job_ids: set[str], record: dict[str, Any]) -> None:
    """The service principal's jobs are as last stored: none removed, no jobRemoved event,
    and a discovery did not learn that it has no jobs."""
    assert job_ids and await stored_job_ids(settings, sp_id) == job_ids
    assert record["jobsRemoved"] == 0
    store = open_store(settings)
    for job_id in job_ids:
        assert "jobRemoved" not in {event["kind"] for event in await store.list_events(sp_id, job_id)}
    principals, _ = await store.load_principals()
    assert principals[sp_id]["jobCount"] == len(job_ids)


def jobs_path(sp_id: str) -> str:
    return f"^/servicePrincipals/{sp_id}/synchronization/jobs$"


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "truncate"},  # cut short: Graph hands the body over base64-encoded
        {"mode": "body", "body": "not the jobs"},  # a JSON string
        {"mode": "body", "body": {"@odata.context": "x"}},  # no value list
        {"mode": "body", "body": {"value": {"id": "x"}}},  # value is not a list
    ],
    ids=["truncated", "string", "noValue", "valueNotList"],
)
async def test_a_bad_jobs_answer_inside_a_batch_is_an_error_for_that_service_principal_only(
    frozen: EmulatorServer, fault: dict[str, Any]
) -> None:
    settings, sp_id, job_ids = await first_poll(frozen)
    frozen.set_faults({"rules": [{"path": jobs_path(sp_id), "inBatch": True, **fault}]})
    record = await poll_tenant(settings, trigger="test", discover=True)
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"malformedResponse": 1}
    assert record["errors"][0]["servicePrincipalId"] == sp_id
    assert record["jobsRead"] > 0  # the others were read
    await assert_kept(settings, sp_id, job_ids, record)


async def test_a_truncated_standalone_jobs_answer_is_an_error_for_that_service_principal_only(
    frozen: EmulatorServer,
) -> None:
    settings, sp_id, job_ids = await first_poll(frozen)
    frozen.set_faults(
        {
            "rules": [
                {"path": "^/\\$batch$", "status": 404, "inBatch": False},  # no JSON batching: one GET each
                {"path": jobs_path(sp_id), "mode": "truncate", "inBatch": False},
            ]
        }
    )
    record = await poll_tenant(settings, trigger="test", discover=True)
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"malformedResponse": 1}
    assert record["errorsByServicePrincipal"] == {sp_id: 1}
    await assert_kept(settings, sp_id, job_ids, record)


async def test_a_truncated_next_page_of_jobs_is_an_error_for_that_service_principal_only(
    frozen: EmulatorServer,
) -> None:
    settings, sp_id, job_ids = await first_poll(frozen)
    next_link = f"{frozen.base_url}/servicePrincipals/{sp_id}/synchronization/jobs?$skiptoken=page2"
    frozen.set_faults(
        {
            "rules": [
                {
                    "path": jobs_path(sp_id),
                    "inBatch": True,
                    "mode": "body",
                    "body": {"value": [], "@odata.nextLink": next_link},
                },
                {"path": jobs_path(sp_id), "inBatch": False, "mode": "truncate"},
            ]
        }
    )
    record = await poll_tenant(settings, trigger="test", discover=True)
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"malformedResponse": 1}
    assert record["errors"][0]["servicePrincipalId"] == sp_id
    await assert_kept(settings, sp_id, job_ids, record)


async def test_a_batch_that_never_answers_fails_only_its_own_service_principals(frozen: EmulatorServer) -> None:
    frozen.set_generated_tenant(60, job_ratio=0.5)
    tenant = frozen.tenant()
    frozen.set_tenant(tenant)
    settings = load_settings()
    await poll_tenant(settings, trigger="test")
    served = tenant["servicePrincipals"]
    # A discovery reads them 20 to a batch, in the order listed: pick one of the middle batch.
    sp_id = next(sp["id"] for sp in served[20:40] if sp.get("jobs"))
    job_ids = await stored_job_ids(settings, sp_id)
    # The connection drops halfway through the answer of the batch carrying sp_id, every attempt.
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "drop", "inBatch": False, "bodyContains": sp_id}]})
    record = await poll_tenant(settings, trigger="test", discover=True)
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"batchTransportError": 20}
    failed = set(record["errorsByServicePrincipal"])
    assert sp_id in failed and len(failed) == 20
    assert all("BatchTransportError" in error["message"] for error in record["errors"])
    assert frozen.faults()["rules"][0]["fired"] == 3  # the batch was tried three times
    await assert_kept(settings, sp_id, job_ids, record)
    others = [sp for sp in served if sp["id"] not in failed]
    assert record["jobsRead"] == sum(len(sp.get("jobs") or []) for sp in others) > 0
    stored = {job["servicePrincipalId"] for job in await open_store(settings).list_jobs()}
    assert {sp["id"] for sp in others if sp.get("jobs")} <= stored


async def test_graph_dropping_every_batch_still_fails_the_poll_loudly(frozen: EmulatorServer) -> None:
    from shared.poll import PollFailedError

    settings, sp_id, job_ids = await first_poll(frozen)
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "drop", "inBatch": False}]})
    with pytest.raises(PollFailedError, match="Graph unavailable") as failed:
        await poll_tenant(settings, trigger="test")
    assert failed.value.record["errorsByKind"] == {"graphUnavailable": 1}
    assert await stored_job_ids(settings, sp_id) == job_ids


# ------------------------------------------------------------ Retry-After up to the deadline


async def test_a_long_retry_after_is_waited_out_in_full_when_the_deadline_allows(
    frozen: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.graph import reader as graph

    settings, sp_id, _ = await first_poll(frozen)
    waits: list[float] = []

    async def watched(seconds: float) -> None:
        waits.append(seconds)  # not slept: the test would take minutes

    monkeypatch.setattr(graph, "_sleep", watched)
    frozen.set_faults(
        {"rules": [{"path": jobs_path(sp_id), "status": 429, "retryAfter": 150, "times": 1, "inBatch": True}]}
    )
    record = await poll_tenant(dataclasses.replace(settings, poll_deadline_seconds=600), trigger="test")
    assert record["status"] == "succeeded", record["errors"]
    assert len(waits) == 1 and 150 <= waits[0] < 151  # the whole Retry-After, not capped at 60 s
    assert record["graph"]["throttledPastDeadline"] == 0


async def test_a_retry_after_past_the_deadline_leaves_the_service_principal_for_the_next_poll(
    frozen: EmulatorServer,
) -> None:
    import time

    settings, sp_id, job_ids = await first_poll(frozen)
    frozen.set_faults({"rules": [{"path": jobs_path(sp_id), "status": 429, "retryAfter": 300, "inBatch": True}]})
    started = time.monotonic()
    record = await poll_tenant(dataclasses.replace(settings, poll_deadline_seconds=30), trigger="test")
    assert time.monotonic() - started < 20  # did not sit out the 300 s (nor 60)
    assert record["status"] == "partial"
    assert record["unfinishedServicePrincipals"] == [sp_id]
    assert record["graph"]["throttledPastDeadline"] == 1 and record["graph"]["throttled"] >= 1
    assert record["jobsRemoved"] == 0 and await stored_job_ids(settings, sp_id) == job_ids
    frozen.clear_faults()
    frozen.reset_stats()
    after = await poll_tenant(settings, trigger="test")
    assert after["status"] == "succeeded" and after["unfinishedServicePrincipals"] == []


async def test_a_batch_answered_with_a_truncated_body_every_time_fails_its_items_as_malformed(
    frozen: EmulatorServer,
) -> None:
    frozen.set_generated_tenant(60, job_ratio=0.5)
    tenant = frozen.tenant()
    frozen.set_tenant(tenant)
    settings = load_settings()
    await poll_tenant(settings, trigger="test")
    sp_id = next(sp["id"] for sp in tenant["servicePrincipals"][20:40] if sp.get("jobs"))
    job_ids = await stored_job_ids(settings, sp_id)
    # Graph answers, but the batch carrying sp_id comes back cut short on every attempt.
    frozen.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "truncate", "inBatch": False, "bodyContains": sp_id}]})
    record = await poll_tenant(settings, trigger="test", discover=True)
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"malformedResponse": 20}
    assert sp_id in record["errorsByServicePrincipal"]
    await assert_kept(settings, sp_id, job_ids, record)
