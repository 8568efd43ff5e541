"""Property-based: whatever Graph sends, normalization never raises (but for an unidentifiable
job), keeps Graph's values, and what it produces always stores in real Table Storage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import AzuriteServer
from shared.health import HEALTH_VALUES
from shared.normalize import EXECUTION_KINDS, PayloadError, distinct_runs, is_identified, normalize_job
from shared.settings import load_settings
from shared.store import Store, open_store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SP = {"id": "sp/1#?", "appId": "app", "displayName": "Odd \u0000 name"}

text = st.text(max_size=40)
timestamps = st.one_of(
    st.none(),
    text,
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.1234567Z",
            "2026-11-25T10:00:00.1+02:00",
            "9999-12-31T23:59:59.9999999Z",
            "2026-13-01T00:00:00Z",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
)
numbers = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), text.map(str))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
states = st.one_of(st.sampled_from(["Succeeded", "Failed", "EntryLevelErrors", "unknownFutureValue"]), numbers)
errors = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {
            "code": st.one_of(st.none(), text),
            "message": st.one_of(st.none(), st.text(max_size=5000)),
            "tenantActionable": st.one_of(st.none(), st.booleans(), text),
        }
    ),
)
executions = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {
            "activityIdentifier": st.one_of(st.none(), text, st.text(min_size=1, max_size=300)),
            "timeBegan": timestamps,
            "timeEnded": timestamps,
            "state": states,
            "error": errors,
            "countEscrowed": numbers,
            "countEntitled": numbers,
            "countExported": numbers,
            "countExports": numbers,
            "countImported": st.one_of(st.integers(min_value=0, max_value=2**63 - 1), numbers),
        },
    ),
)
statuses = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "code": st.one_of(st.sampled_from(["Active", "Quarantine", "Paused", "NotRun", "NotConfigured"]), numbers),
            "countSuccessiveCompleteFailures": numbers,
            "escrowsPruned": st.one_of(st.booleans(), numbers),
            "lastExecution": executions,
            "lastSuccessfulExecution": executions,
            "lastSuccessfulExecutionWithExports": executions,
            "quarantine": st.one_of(
                st.none(),
                json_values,
                st.fixed_dictionaries(
                    {
                        "reason": st.one_of(text, numbers),
                        "currentBegan": timestamps,
                        "nextAttempt": timestamps,
                        "seriesBegan": timestamps,
                        "seriesCount": numbers,
                        "error": errors,
                    }
                ),
            ),
            "progress": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "completedUnits": numbers,
                            "totalUnits": numbers,
                            "units": text,
                            "progressObservationDateTime": timestamps,
                        }
                    ),
                    max_size=3,
                ),
            ),
            "synchronizedEntryCountByType": st.one_of(
                json_values,
                st.lists(st.fixed_dictionaries({"key": st.one_of(text, numbers), "value": numbers}), max_size=3),
            ),
            "steadyStateFirstAchievedTime": timestamps,
            "troubleshootingUrl": st.one_of(text, numbers),
        },
    ),
)
jobs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.text(min_size=1, max_size=300), numbers),
            "templateId": st.one_of(text, numbers),
            "schedule": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {
                        "interval": st.one_of(text, st.sampled_from(["PT40M", "P10675199DT2H48M5.4775807S", "-PT5M"])),
                        "state": st.one_of(text, numbers),
                        "expiration": timestamps,
                    }
                ),
            ),
            "status": statuses,
            "synchronizationJobSettings": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["QuarantineTooManyDeletesThreshold", "Other"]), "value": json_values}
                    ),
                    max_size=3,
                ),
            ),
        },
    ),
)


def normalize(raw: Any) -> Any:
    try:
        return normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)  # type: ignore[arg-type]
    except PayloadError:
        assert (
            not isinstance(raw, dict)
            or not isinstance(raw.get("id"), str)
            or not raw["id"].strip()
            or len(raw["id"]) > 400
        )
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs)
def test_normalization_never_raises_and_keeps_graphs_values(raw: Any) -> None:
    job = normalize(raw)
    if job is None:
        return
    json.dumps(job, allow_nan=False)  # what the API returns is always valid JSON
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    if isinstance(status.get("code"), str) and len(status["code"]) <= 2000:
        assert job["statusCode"] == status["code"]  # unknown members kept as their string
    for kind in EXECUTION_KINDS:
        execution = job[kind]
        source = status.get(kind)
        if execution is not None:
            if execution["activityIdentifier"] is not None:
                assert execution["activityIdentifier"] == source["activityIdentifier"]
            assert execution["timeBegan"] is None or not execution["timeBegan"].startswith("0001")
            if not is_identified(execution):  # partial: kept only with a real end, and noted
                assert execution["timeEnded"] is not None
                assert any("partial record" in note for note in job["anomalies"]) or len(job["anomalies"]) >= 50
            if isinstance(source.get("state"), str):
                assert execution["state"] == source["state"]
    assert job["health"] in HEALTH_VALUES


@pytest.fixture(scope="module")
def store_loop(azurite: AzuriteServer) -> Iterator[tuple[asyncio.AbstractEventLoop, Store]]:
    env = {
        "AZURE_TENANT_ID": "5d3e2a1b-9c8f-4e7d-a6b5-c4d3e2f1a0b9",
        "AzureWebJobsStorage": azurite.connection_string,
        "TABLE_PREFIX": "props",
    }
    loop = asyncio.new_event_loop()

    async def open_() -> Store:
        store = open_store(load_settings(env))
        await store.ensure_tables()
        return store

    store = loop.run_until_complete(open_())
    yield loop, store
    loop.run_until_complete(store.close())
    loop.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs)
def test_what_normalization_produces_always_stores(
    store_loop: tuple[asyncio.AbstractEventLoop, Store], raw: Any
) -> None:
    job = normalize(raw)
    if job is None:
        return
    loop, store = store_loop

    async def round_trip() -> None:
        await store.save_runs(job, distinct_runs(job))
        await store.save_jobs([job])
        assert await store.get_job(job["servicePrincipalId"], job["jobId"]) == job
        stored, _ = await store.executions_page(job["servicePrincipalId"], job["jobId"], top=1000)
        assert {run["activityIdentifier"] for run in stored} >= {
            run["activityIdentifier"] for run in distinct_runs(job)
        }

    loop.run_until_complete(round_trip())
