"""The health rule table: one test per row, in the order the rules apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain.health import HealthRules, classify_health

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
    assert reasons == ["no run ended and no progress was observed for 3 h (allowed: 2 h for its 40 min interval)"]
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


# ---------------------------------------------------------------- issue 13: real tenants


def test_stale_means_stopped_progress_observed_recently_is_not_stale() -> None:
    """A PT2M cloud sync job whose last run ended 7 min ago but whose cycle showed progress
    30 s ago is working; without progress, the floor (30 min) still holds it back."""
    ended = run(ended="2026-11-25T11:53:00Z")
    cloud_sync = job(scheduleIntervalSeconds=120.0, lastExecution=ended, lastSuccessfulExecution=ended)
    assert classify_health(cloud_sync, now=NOW)[0] == "healthy"  # 7 min < the 30 min floor
    long_ago = run(ended="2026-11-25T10:00:00Z")
    quiet = job(scheduleIntervalSeconds=120.0, lastExecution=long_ago, lastSuccessfulExecution=long_ago)
    health, reasons = classify_health(quiet, now=NOW)
    assert health == "stale"
    assert reasons == ["no run ended and no progress was observed for 2 h (allowed: 30 min for its 2 min interval)"]
    progressing = {**quiet, "progress": [{"progressObservationDateTime": "2026-11-25T11:59:30Z"}]}
    assert classify_health(progressing, now=NOW)[0] == "healthy"
    floor = HealthRules(stale_min_seconds=3 * 3600)
    assert classify_health(quiet, now=NOW, rules=floor)[0] == "healthy"


def test_a_running_cycle_counts_as_activity() -> None:
    running = run(state=None, ended=None)  # type: ignore[arg-type]  # a run in progress
    running["timeBegan"] = "2026-11-25T11:30:00Z"
    old = run(ended="2026-11-25T06:00:00Z")
    assert classify_health(job(lastExecution=running, lastSuccessfulExecution=old), now=NOW) == ("healthy", [])


def test_a_long_initial_cycle_is_not_stale_and_warns_only_after_the_configured_time() -> None:
    first = job(
        lastExecution=None,
        lastSuccessfulExecution=None,
        firstObservedAt="2026-11-25T10:00:00Z",
        progress=[
            {
                "completedUnits": 40_000,
                "totalUnits": 125_000,
                "units": "objects",
                "progressObservationDateTime": "2026-11-25T11:58:00Z",
            }
        ],
    )
    assert classify_health(first, now=NOW) == (
        "notRun",
        ["first cycle running since 2026-11-25T10:00:00Z; 40,000 of 125,000 objects done"],
    )
    later = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert classify_health(first, now=later) == (
        "warning",
        [
            "first cycle has not finished after 26 h (running since 2026-11-25T10:00:00Z); "
            "40,000 of 125,000 objects done"
        ],
    )
    assert classify_health(first, now=later, rules=HealthRules(first_cycle_warn_seconds=48 * 3600))[0] == "notRun"


def test_escrow_pruned_pause_needs_its_owner() -> None:
    pruned = job(
        statusCode="Paused",
        scheduleState="Paused",
        escrowsPruned=True,
        lastExecution=run("EntryLevelErrors", countEscrowed=900, countEntitled=1000),
    )
    health, reasons = classify_health(pruned, now=NOW)
    assert health == "failing"
    assert reasons[0].startswith("Entra paused the job after pruning escrows at the end of its initial cycle")
    assert reasons[1] == "900 escrowed entries, 90% of entitled"
    # An admin's pause stays a pause.
    assert classify_health(job(statusCode="Paused", scheduleState="Paused"), now=NOW)[0] == "paused"


def test_quarantine_age_comes_from_the_series_not_the_latest_reimposition() -> None:
    health, reasons = classify_health(
        job(
            statusCode="Quarantine",
            quarantine={
                "reason": "EncounteredQuarantineException",
                "seriesBegan": "2026-11-24T16:00:00Z",
                "currentBegan": "2026-11-25T10:00:00Z",
                "seriesCount": 4,
                "nextAttempt": None,
                "error": None,
            },
        ),
        now=NOW,
    )
    assert health == "quarantined"
    assert reasons == [
        "quarantined since 2026-11-24T16:00:00Z: EncounteredQuarantineException (20 h)",
        "kept after 4 re-evaluations; this quarantine period since 2026-11-25T10:00:00Z",
    ]


def test_a_job_the_monitor_cannot_read_is_unobserved_not_stale() -> None:
    old = run(ended="2026-11-25T08:00:00Z")
    unread = job(
        lastExecution=old,
        lastSuccessfulExecution=old,
        notObservedSince="2026-11-25T09:00:00Z",
        notObservedReason="Graph answered HTTP 403 Authorization_RequestDenied",
    )
    assert classify_health(unread, now=NOW) == (
        "unobserved",
        ["not observed since 2026-11-25T09:00:00Z (3 h): Graph answered HTTP 403 Authorization_RequestDenied"],
    )
    # Briefly unread (one missed poll): judged as of its last read, so not stale either.
    fresh = run(ended="2026-11-25T11:40:00Z")
    blip = {
        **unread,
        "lastExecution": fresh,
        "lastSuccessfulExecution": fresh,
        "notObservedSince": "2026-11-25T11:50:00Z",
    }
    assert classify_health(blip, now=NOW)[0] == "healthy"
    # Graph's quarantine stays the last word.
    quarantined = {**unread, "statusCode": "Quarantine", "quarantine": {"reason": "TooManyDeletes"}}
    health, reasons = classify_health(quarantined, now=NOW)
    assert health == "quarantined" and reasons[-1].startswith("not observed since 2026-11-25T09:00:00Z")


def test_a_partial_last_success_is_still_the_last_success() -> None:
    partial = run(ended="2026-11-25T11:58:00Z")
    partial.update({"activityIdentifier": None, "timeBegan": None})
    old = run(ended="2026-11-25T06:00:00Z")
    cloud_sync = job(scheduleIntervalSeconds=120.0, lastExecution=old, lastSuccessfulExecution=partial)
    assert classify_health(cloud_sync, now=NOW)[0] == "healthy"  # the partial end is recent
    assert classify_health(job(lastExecution=None, lastSuccessfulExecution=partial), now=NOW)[0] == "healthy"


def test_a_first_cycle_reported_as_a_running_execution_is_dated_from_it() -> None:
    running = run(state=None, ended=None)  # type: ignore[arg-type]  # the initial cycle, in progress
    running["timeBegan"] = "2026-11-22T12:00:00Z"
    first = job(lastExecution=running, lastSuccessfulExecution=None)
    assert classify_health(first, now=NOW) == (
        "warning",
        ["first cycle has not finished after 3 days (running since 2026-11-22T12:00:00Z)"],
    )
