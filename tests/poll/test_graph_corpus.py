"""The documented Graph answers (tests/fixtures/graph) through the whole app: normalize, health
and alerts as pure functions at each fixture's "now"; then served by the emulator to the real
SDK, polled into Azurite and read back through the HTTP API and the alert step.

Each job's expected result is written out here, from the rules in docs/health.md, not taken
from what the code answers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from devtools.graph_emulator import EmulatorServer
from shared.alerts.conditions import AlertConfig
from shared.alerts.rules import evaluate
from shared.domain.health import classify_health
from shared.domain.model import Job
from shared.domain.normalize import distinct_runs, normalize_job
from shared.domain.timestamps import isoformat_utc
from tests.fixtures.graph import fixture_names, load_fixture
from tests.support.api import api_client, job_path

TENANT = "00000000-0000-0000-0000-0000000000c0"
CONTEXT = re.compile(r"servicePrincipals\('([^']+)'\)")
# The monitor first saw every job two hours before the fixtures' now (the long initial cycle's
# story: Graph itself reports no start for a first cycle).
SEEN_BEFORE = timedelta(hours=2)


class Expected(NamedTuple):
    health: str
    first_reason: str | None  # the whole first reason at the fixture's now; None: no reasons
    runs: int  # identified runs (stored in Executions)
    alerts: tuple[tuple[str, str], ...]  # (rule, severity) that open at the fixture's now


EXPECTED: dict[tuple[str, int], Expected] = {
    ("cloud_sync_mid_cycle", 0): Expected("healthy", None, 1, ()),
    # The partial last success is kept; the last run succeeded with 3 escrows (as the article shows).
    ("cloud_sync_partial_last_success", 0): Expected("warning", "3 escrowed entries", 1, ()),
    ("cross_tenant", 0): Expected("healthy", None, 1, ()),
    ("escrows_pruned_paused", 0): Expected(
        "failing",
        "Entra paused the job after pruning escrows at the end of its initial cycle (escrowsPruned): "
        "fix the errors of the escrowed entries, then restart the job",
        1,
        (("paused", "error"),),
    ),
    ("hr_inbound", 0): Expected("warning", "last run had entry-level errors", 2, ()),
    ("initial_cycle_long", 0): Expected(
        "notRun", "first cycle running since 2026-11-30T10:00:00Z; 41,250 of 118,400 units done", 0, ()
    ),
    ("quarantine_reimposed", 0): Expected(
        "quarantined",
        "quarantined since 2026-11-29T16:00:02.9384562Z: EncounteredQuarantineException (20 h)",
        3,
        (("quarantined", "critical"),),
    ),
    ("scim_gallery", 0): Expected("healthy", None, 2, ()),
    # Created, never started: Graph says Paused with a Disabled schedule; not an admin's pause.
    ("sentinels", 0): Expected("notRun", "not started", 0, ()),
    ("sentinels", 1): Expected("notRun", "never run", 0, ()),
    ("sentinels", 2): Expected("notRun", "first cycle running since 2026-11-30T10:00:00Z", 0, ()),
    ("sentinels", 3): Expected("notRun", "not configured", 0, ()),
    ("sentinels", 4): Expected(
        "quarantined",
        "quarantined since 2026-11-30T01:56:58.2464011Z: EncounteredQuarantineException (10.1 h)",
        1,
        (("quarantined", "critical"),),
    ),
    ("unknown_enums", 0): Expected("warning", "unknown status code 'Stalled'", 1, ()),
    ("unknown_enums", 1): Expected(
        "quarantined",
        "quarantined since 2026-11-30T02:03:49.8Z: EncounteredTargetThrottlingThreshold (9.9 h)",
        1,
        (("quarantined", "critical"),),
    ),
    ("unknown_enums", 2): Expected(
        "quarantined",
        "quarantined since 2026-11-29T06:00:11Z: unknownFutureValue (30 h)",
        1,
        (("quarantined", "critical"),),
    ),
    ("unknown_enums", 3): Expected(
        "quarantined",
        "quarantined since 2026-11-30T05:00:00Z: QuarantineOnDemand (7 h)",
        1,
        (("quarantined", "critical"),),
    ),
}


def sp_of(answer: dict[str, Any]) -> dict[str, Any]:
    match = CONTEXT.search(answer["@odata.context"])
    assert match is not None
    return {"id": match.group(1), "appId": None, "displayName": None}


def normalized(name: str) -> tuple[list[Job], datetime]:
    answer, now = load_fixture(name)
    jobs = [
        normalize_job(
            raw,
            tenant_id=TENANT,
            service_principal=sp_of(answer),  # type: ignore[arg-type]
            observed_at=now,
            first_observed_at=isoformat_utc(now - SEEN_BEFORE),
        )
        for raw in answer["value"]
    ]
    return jobs, now


def test_every_fixture_job_has_its_expectation() -> None:
    cases = {(name, index) for name in fixture_names() for index in range(len(load_fixture(name)[0]["value"]))}
    assert cases == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED), ids=lambda case: f"{case[0]}[{case[1]}]")
def test_normalize_and_health(case: tuple[str, int]) -> None:
    name, index = case
    expected = EXPECTED[case]
    jobs, _ = normalized(name)
    job = jobs[index]
    assert job["health"] == expected.health
    assert (job["healthReasons"][0] if job["healthReasons"] else None) == expected.first_reason
    assert len(distinct_runs(job)) == expected.runs
    # A quarantine's age is the series' age everywhere, never the latest re-imposition's.
    if job["quarantine"] and job["quarantine"]["seriesBegan"]:
        assert job["quarantine"]["seriesBegan"] in job["healthReasons"][0]


@pytest.mark.parametrize("name", fixture_names())
def test_alerts_at_the_fixtures_now(name: str) -> None:
    jobs, now = normalized(name)
    config = AlertConfig(confirm_minutes=0)
    result = evaluate(jobs, {}, {}, [], now=now, config=config, tenant_id=TENANT)
    opened = {(n["jobId"], n["rule"], n["severity"]) for n in result.notifications if n["kind"] == "open"}
    want = {
        (jobs[index]["jobId"], rule, severity)
        for (fixture, index), expected in EXPECTED.items()
        if fixture == name
        for rule, severity in expected.alerts
    }
    assert opened == want


def test_the_partial_last_success_is_the_last_success() -> None:
    (job,), now = normalized("cloud_sync_partial_last_success")
    success = job["lastSuccessfulExecution"]
    assert success is not None
    assert (success["activityIdentifier"], success["timeBegan"]) == (None, None)
    assert success["timeEnded"] == "2026-11-30T11:36:12.3417795Z"
    assert success["countExported"] == 4
    assert job["anomalies"] == [
        "status.lastSuccessfulExecution: partial record without activityIdentifier and timeBegan: "
        "kept as reported, not stored as a run"
    ]
    # The last run stops 20 min later (PT2M, 30 min floor): still healthy-but-for-escrows, not stale.
    assert classify_health(job, now=now + timedelta(minutes=20))[0] == "warning"
    assert classify_health(job, now=now + timedelta(minutes=40))[0] == "stale"


def test_a_pt2m_job_mid_cycle_is_not_stale_while_progress_is_observed() -> None:
    (job,), now = normalized("cloud_sync_mid_cycle")
    assert classify_health(job, now=now)[0] == "healthy"
    # 40 min later with nothing new: progress last seen 40.5 min ago, over the 30 min floor.
    assert classify_health(job, now=now + timedelta(minutes=40))[0] == "stale"


def test_the_long_initial_cycle_warns_and_alerts_only_after_the_configured_hours() -> None:
    (job,), now = normalized("initial_cycle_long")
    later = now + timedelta(hours=23)  # 25 h after the monitor first saw it
    health, reasons = classify_health(job, now=later)
    assert health == "warning"
    assert reasons == [
        "first cycle has not finished after 25 h (running since 2026-11-30T10:00:00Z); 41,250 of 118,400 units done"
    ]
    result = evaluate([job], {}, {}, [], now=later, config=AlertConfig(), tenant_id=TENANT)
    assert [(n["rule"], n["kind"], n["severity"]) for n in result.notifications] == [
        ("firstCycleNotFinished", "open", "warning")
    ]


def test_the_quarantine_alert_counts_from_the_series() -> None:
    (job,), now = normalized("quarantine_reimposed")
    result = evaluate([job], {}, {}, [], now=now, config=AlertConfig(), tenant_id=TENANT)
    (opened,) = result.notifications
    assert opened["facts"]["quarantined since"] == "2026-11-29T16:00:02.9384562Z"
    assert opened["facts"]["this quarantine period since"] == "2026-11-30T10:00:03.1120447Z"
    assert opened["facts"]["in quarantine for"] == "20 h"


# ---------------------------------------------------------------- through the SDK, Azurite and the API


def shifted(value: Any, delta: timedelta) -> Any:
    """The answer with every real timestamp moved by `delta` (whole seconds; sentinels stay), so
    a fixture's story happens around the wall clock the poll and the API read."""
    if isinstance(value, dict):
        return {key: shifted(item, delta) for key, item in value.items()}
    if isinstance(value, list):
        return [shifted(item, delta) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z", value) and not value.startswith("0001"):
        base, dot, fraction = value[:-1].partition(".")  # Graph's 7th digit is kept as sent
        moved = datetime.fromisoformat(base).replace(tzinfo=UTC) + delta
        return moved.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if dot else "") + "Z"
    return value


async def test_the_corpus_through_the_sdk_azurite_the_api_and_alerts(
    app_env: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.poll import run_poll

    monkeypatch.setenv("ALERT_CONFIRM_MINUTES", "0")
    fixture_now = load_fixture(fixture_names()[0])[1]
    delta = datetime.now(UTC).replace(second=0, microsecond=0) - fixture_now
    principals = []
    for name in fixture_names():
        answer, _ = load_fixture(name)
        sp = sp_of(answer)
        principals.append({**sp, "displayName": name, "jobs": shifted(answer["value"], delta)})
    demo_emulator.set_tenant({"tenantId": app_env["AZURE_TENANT_ID"], "servicePrincipals": principals})

    record = await run_poll(trigger="test", discover=True)
    assert record["status"] == "succeeded", record["errors"]
    assert record["jobsRead"] == len(EXPECTED)

    async with api_client() as api:
        listed = (await api.get("/api/v1/jobs", params={"top": 100})).json()["value"]
        by_name = {}
        for job in listed:
            by_name.setdefault(job["servicePrincipalName"], []).append(job)
        for (name, index), expected in EXPECTED.items():
            raw = load_fixture(name)[0]["value"][index]
            (job,) = [job for job in by_name[name] if job["jobId"] == raw["id"]]
            assert job["health"] == expected.health, (name, index, job["healthReasons"])
            detail = (await api.get(job_path(job))).json()
            assert len(detail["executions"]) == expected.runs, (name, index)
        partial = by_name["cloud_sync_partial_last_success"][0]["lastSuccessfulExecution"]
        assert (partial["activityIdentifier"], partial["timeBegan"]) == (None, None)
        assert partial["timeEnded"] == shifted("2026-11-30T11:36:12.3417795Z", delta)

        alerts = (await api.get("/api/v1/alerts")).json()["value"]
        opened = {(a["servicePrincipalName"], a["rule"], a["severity"]) for a in alerts if a["status"] == "open"}
        assert opened == {(name, rule, severity) for (name, _), e in EXPECTED.items() for rule, severity in e.alerts}
