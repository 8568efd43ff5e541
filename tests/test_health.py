"""The health rule table: one test per row, in the order the rules apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.health import classify_health

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run(state: str = "Succeeded", ended: str = "2026-11-25T11:50:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "activityIdentifier": "a",
        "state": state,
        "timeBegan": "2026-11-25T11:49:00Z",
        "timeEnded": ended,
        "countEscrowed": 0,
        "countEntitled": 100,
        "error": None,
        **extra,
    }


def job(**fields: Any) -> dict[str, Any]:
    base = {
        "statusCode": "Active",
        "scheduleState": "Active",
        "scheduleIntervalSeconds": 2400.0,
        "countSuccessiveCompleteFailures": 0,
        "escrowsPruned": False,
        "quarantine": None,
        "lastExecution": run(),
        "lastSuccessfulExecution": run(),
        "lastSuccessfulExecutionWithExports": None,
    }
    return {**base, **fields}


def test_quarantine_wins_and_says_since_when_and_why() -> None:
    health, reasons = classify_health(
        job(
            statusCode="Quarantine",
            lastExecution=run("Failed"),
            quarantine={
                "reason": "EncounteredQuarantineException",
                "currentBegan": "2026-11-24T12:00:00Z",
                "nextAttempt": "2026-11-25T18:00:00Z",
                "error": {"code": "CredentialsInvalid", "message": "401"},
            },
        ),
        now=NOW,
    )
    assert health == "quarantined"
    assert reasons[0] == "quarantined since 2026-11-24T12:00:00Z: EncounteredQuarantineException (24 h)"
    assert "CredentialsInvalid - 401" in reasons
    assert "next attempt 2026-11-25T18:00:00Z" in reasons


def test_paused() -> None:
    assert classify_health(job(statusCode="Paused", scheduleState="Paused"), now=NOW)[0] == "paused"
    assert classify_health(job(scheduleState="Disabled"), now=NOW)[0] == "paused"


def test_not_run() -> None:
    assert classify_health(job(statusCode="NotRun", lastExecution=None), now=NOW) == ("notRun", ["never run"])
    assert classify_health(job(statusCode="NotConfigured", lastExecution=None, scheduleState="Disabled"), now=NOW) == (
        "notRun",
        ["not configured"],
    )


def test_failing_on_a_failed_run_or_successive_failures() -> None:
    health, reasons = classify_health(
        job(lastExecution=run("Failed", error={"code": "HybridIdentityServiceAgentsUnavailable", "message": "x"})),
        now=NOW,
    )
    assert health == "failing"
    assert reasons == ["last run failed at 2026-11-25T11:50:00Z: HybridIdentityServiceAgentsUnavailable - x"]
    assert classify_health(job(countSuccessiveCompleteFailures=3), now=NOW) == (
        "failing",
        ["3 successive complete failures"],
    )


def test_stale_when_no_run_finished_within_three_intervals() -> None:
    old = run(ended="2026-11-25T09:00:00Z")
    health, reasons = classify_health(job(lastExecution=old, lastSuccessfulExecution=old), now=NOW)
    assert health == "stale"
    assert reasons == ["no run finished for 3 h, 4.5x its 40 min interval"]
    recent = run(ended="2026-11-25T10:05:00Z")  # 1 h 55 min < 3 x 40 min
    assert classify_health(job(lastExecution=recent, lastSuccessfulExecution=recent), now=NOW)[0] == "healthy"


def test_warning_for_escrows_and_entry_level_errors() -> None:
    health, reasons = classify_health(
        job(lastExecution=run("EntryLevelErrors", countEscrowed=1234, countEntitled=3980)), now=NOW
    )
    assert health == "warning"
    assert reasons == ["last run had entry-level errors", "1,234 escrowed entries, 31% of entitled"]


def test_warning_near_the_quarantine_thresholds() -> None:
    _, reasons = classify_health(
        job(lastExecution=run("EntryLevelErrors", countEscrowed=6000, countEntitled=16000)), now=NOW
    )
    assert any("near Entra's quarantine thresholds" in reason for reason in reasons)


def test_warning_for_pruned_escrows_and_unknown_values() -> None:
    assert classify_health(job(escrowsPruned=True), now=NOW)[0] == "warning"
    health, reasons = classify_health(job(statusCode="SomethingNew"), now=NOW)
    assert (health, reasons) == ("warning", ["unknown status code 'SomethingNew'"])


def test_healthy() -> None:
    assert classify_health(job(), now=NOW) == ("healthy", [])
