"""Normalization keeps Graph's values, reads every odd shape, and never takes a sentinel for a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.normalize import PayloadError, distinct_runs, is_identified, normalize_execution, normalize_job
from shared.domain.timestamps import Notes, format_timestamp, parse_duration_seconds

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SP = {"id": "sp-1", "appId": "app-1", "displayName": "Contoso SCIM"}
SENTINEL = {
    "activityIdentifier": None,
    "countEntitled": 0,
    "countExported": 0,
    "error": None,
    "state": "Succeeded",
    "timeBegan": "0001-01-01T00:00:00Z",
    "timeEnded": "0001-01-01T00:00:00Z",
}


def run(activity: str, began: str, ended: str, state: str = "Succeeded", **counts: object) -> dict[str, object]:
    return {"activityIdentifier": activity, "state": state, "timeBegan": began, "timeEnded": ended, **counts}


def job(**status: object) -> dict[str, object]:
    return {
        "id": "scim.1.2",
        "templateId": "scim",
        "schedule": {"interval": "PT40M", "state": "Active", "expiration": None},
        "status": {"code": "Active", "countSuccessiveCompleteFailures": 0, "escrowsPruned": False, **status},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z"),
        ("2026-11-25T10:00:00.1234567Z", "2026-11-25T10:00:00.1234567Z"),
        ("2026-11-25T10:00:00.1Z", "2026-11-25T10:00:00.1Z"),
        ("2026-11-25T10:00:00.1200000Z", "2026-11-25T10:00:00.12Z"),
        ("2026-11-25T11:30:00+01:30", "2026-11-25T10:00:00Z"),
        ("2026-11-25T10:00:00", "2026-11-25T10:00:00Z"),
        ("0001-01-01T00:00:00Z", None),
        (None, None),
        ("yesterday", None),
        ("2026-02-30T00:00:00Z", None),
    ],
)
def test_timestamps_keep_up_to_seven_digits_and_never_is_none(raw: object, expected: str | None) -> None:
    assert format_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("PT40M", 2400.0),
        ("PT20M", 1200.0),
        ("P1DT2H", 93600.0),
        ("PT1.5S", 1.5),
        ("P10675199DT2H48M5.4775807S", None),
        (None, None),
        ("soon", None),
        ("P", None),
    ],
)
def test_schedule_intervals(raw: object, seconds: float | None) -> None:
    assert parse_duration_seconds(raw) == seconds


def test_sentinel_executions_are_not_runs() -> None:
    assert normalize_execution(SENTINEL) is None
    assert normalize_execution({**SENTINEL, "activityIdentifier": "a"}) is None  # 0001 times
    assert normalize_execution({**SENTINEL, "activityIdentifier": "", "timeBegan": "2026-01-01T00:00:00Z"}) is None
    assert normalize_execution(None) is None


def test_a_partial_execution_with_a_real_end_is_kept_as_reported_but_is_not_a_run() -> None:
    notes = Notes()
    partial = normalize_execution(
        {**SENTINEL, "activityIdentifier": None, "timeEnded": "2026-11-30T11:58:12.5Z", "countExported": 3},
        notes,
        "status.lastSuccessfulExecution",
    )
    assert partial is not None
    assert (partial["activityIdentifier"], partial["timeBegan"]) == (None, None)
    assert partial["timeEnded"] == "2026-11-30T11:58:12.5Z"
    assert partial["countExported"] == 3
    assert partial["durationSeconds"] is None
    assert not is_identified(partial)
    assert notes.items == [
        "status.lastSuccessfulExecution: partial record without activityIdentifier and timeBegan: "
        "kept as reported, not stored as a run"
    ]
    # An id with a real end but a sentinel start is partial too: it has no key in Executions.
    dated = normalize_execution({**SENTINEL, "activityIdentifier": "a", "timeEnded": "2026-11-30T11:58:12Z"})
    assert dated is not None and dated["activityIdentifier"] == "a" and not is_identified(dated)


def test_an_execution_keeps_every_seed_property() -> None:
    raw = run(
        "act-1",
        "2026-11-25T10:00:00.1234567Z",
        "2026-11-25T10:00:30.2234567Z",
        "EntryLevelErrors",
        countEntitled=3_000_000_000,
        countEntitledForProvisioning=10,
        countEscrowed=2,
        countEscrowedRaw=3,
        countExported=4,
        countExports=5,
        countImported=6,
        countImportedDeltas="7",
        countImportedReferenceDeltas=8,
        error={
            "code": "SystemForCrossDomainIdentityManagementServiceIncompatible",
            "message": "m",
            "tenantActionable": True,
        },
    )
    execution = normalize_execution(raw)
    assert execution is not None
    assert execution["countEntitled"] == 3_000_000_000
    assert execution["countImportedDeltas"] == 7  # Int64 sent as a string
    assert execution["state"] == "EntryLevelErrors"
    assert execution["error"] == {
        "code": "SystemForCrossDomainIdentityManagementServiceIncompatible",
        "message": "m",
        "tenantActionable": True,
    }
    assert execution["durationSeconds"] == pytest.approx(30.1)
    assert execution["exportSuccessRatio"] == 0.8
    assert len(execution) == 16  # the seed's 14 properties + durationSeconds + exportSuccessRatio


def test_unknown_enum_members_are_kept_as_strings() -> None:
    raw = job(
        code="Throttled",
        lastExecution=run("a", "2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z", "PartialSuccess"),
        quarantine={"reason": "unknownFutureValue", "currentBegan": "2026-11-24T00:00:00Z"},
    )
    normalized = normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)
    assert normalized["statusCode"] == "Throttled"
    assert normalized["lastExecution"]["state"] == "PartialSuccess"  # type: ignore[index]
    assert normalized["quarantine"]["reason"] == "unknownFutureValue"  # type: ignore[index]


def test_never_run_job_with_graphs_sentinels() -> None:
    raw = {
        "id": "scim.never",
        "templateId": "scim",
        "schedule": {"interval": "P10675199DT2H48M5.4775807S", "state": "Disabled", "expiration": None},
        "status": {
            "code": "NotRun",
            "lastExecution": None,
            "lastSuccessfulExecution": SENTINEL,
            "lastSuccessfulExecutionWithExports": SENTINEL,
            "quarantine": None,
            "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z",
            "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
            "synchronizedEntryCountByType": [],
            "progress": [],
        },
    }
    normalized = normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)
    assert normalized["scheduleIntervalSeconds"] is None
    assert normalized["steadyStateFirstAchievedTime"] is None
    assert distinct_runs(normalized) == []
    assert normalized["health"] == "notRun"
    assert normalized["anomalies"] == []


def test_one_run_in_several_slots_counts_once() -> None:
    same = run("a", "2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z")
    older = run("b", "2026-11-24T10:00:00Z", "2026-11-24T10:01:00Z", countExported=3)
    raw = job(lastExecution=same, lastSuccessfulExecution=same, lastSuccessfulExecutionWithExports=older)
    normalized = normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)
    assert [r["activityIdentifier"] for r in distinct_runs(normalized)] == ["a", "b"]


def test_odd_fields_become_anomalies_not_failures() -> None:
    raw = job(
        countSuccessiveCompleteFailures="many",
        escrowsPruned="maybe",
        progress="none",
        lastExecution=run("a", "2026-11-25T10:05:00Z", "2026-11-25T10:00:00Z"),
        synchronizedEntryCountByType=[{"key": "User", "value": 5}, {"value": 3}, 7],
    )
    normalized = normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)
    assert normalized["countSuccessiveCompleteFailures"] is None
    assert normalized["escrowsPruned"] is None
    assert normalized["lastExecution"]["durationSeconds"] is None  # type: ignore[index]  # negative: not trusted
    assert normalized["synchronizedEntryCountByType"] == {"User": 5}
    assert len(normalized["anomalies"]) >= 5


@pytest.mark.parametrize("raw", [None, [], "job", {"templateId": "scim"}, {"id": ""}, {"id": 42}])
def test_a_job_that_cannot_be_identified_raises_payload_error(raw: object) -> None:
    with pytest.raises(PayloadError):
        normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=NOW)
