"""What the provisioning logs add to alerts, as pure functions: the top error codes named in
the quarantined, failing and escrow alerts, and the newErrorCode rule (learned silently at
first, announced once, never reminded, resolved once the code is no longer new)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.alerts.conditions import AlertConfig
from shared.alerts.error_codes import CodeCount, failures_by_code
from tests.support.alerting import SP, Alerting, at, iso, job, quarantined, run

KEY = (SP["id"], "scim.a")


def code(name: str, count: int, first: datetime, last: datetime | None = None) -> CodeCount:
    return {"errorCode": name, "count": count, "firstSeen": iso(first), "lastSeen": iso(last or first)}


def hour_row(error_code: str, count: int, first: datetime, status: str = "failure", job_id: str = "scim.a") -> dict:
    return {
        "servicePrincipalId": SP["id"],
        "jobId": job_id,
        "hour": iso(first)[:13],
        "status": status,
        "errorCode": error_code,
        "count": count,
        "firstSeen": iso(first),
        "lastSeen": iso(first + timedelta(minutes=5)),
    }


def test_failures_by_code_sums_hours_and_keeps_only_failures_with_a_code() -> None:
    rows = [
        hour_row("AttributeMappingDependencyFailure", 30, at(1)),
        hour_row("AttributeMappingDependencyFailure", 12, at(0.2)),
        hour_row("DuplicateTargetEntries", 7, at(2)),
        hour_row("NotEffectivelyEntitled", 500, at(2), status="skipped"),
        hour_row("", 3, at(2)),
        hour_row("SystemForCrossDomainIdentityManagementBadRequest", 1, at(3), job_id="other"),
    ]
    by_job = failures_by_code(rows)
    assert by_job[KEY] == [
        {
            "errorCode": "AttributeMappingDependencyFailure",
            "count": 42,
            "firstSeen": iso(at(0.2)),
            "lastSeen": iso(at(1) + timedelta(minutes=5)),
        },
        {
            "errorCode": "DuplicateTargetEntries",
            "count": 7,
            "firstSeen": iso(at(2)),
            "lastSeen": iso(at(2) + timedelta(minutes=5)),
        },
    ]
    assert [c["count"] for c in by_job[(SP["id"], "other")]] == [1]


def test_failing_escrow_and_quarantine_alerts_name_the_top_error_codes_as_live_facts() -> None:
    alerting = Alerting(AlertConfig(failing_after=1, confirm_minutes=0))
    failing = job(at(1), last=run(at(1), "Failed"), countSuccessiveCompleteFailures=1)
    errors = {KEY: [code("AttributeMappingDependencyFailure", 42, at(0.2)), code("DuplicateTargetEntries", 7, at(0.5))]}
    opened = alerting.poll(at(1), failing, errors=errors)
    assert alerting.kinds(opened) == [("failing", "open")]
    assert opened.notifications[0]["facts"]["top errors (24 h)"] == (
        "42 failures: AttributeMappingDependencyFailure (first seen 12:12 UTC); "
        "7 failures: DuplicateTargetEntries (first seen 12:30 UTC)"
    )
    # Counts move every poll: nothing is sent and the stored alert is not rewritten.
    more = {KEY: [code("AttributeMappingDependencyFailure", 58, at(0.2))]}
    again = alerting.poll(at(1.5), failing, errors=more)
    assert again.notifications == [] and [s["rule"] for s in again.states] == []
    assert "top errors (24 h)" not in alerting.states[(*KEY, "failing")]["facts"]

    escrowing = job(at(2), last=run(at(2), "EntryLevelErrors", countEscrowed=35_000, countEntitled=100_000))
    escrow = Alerting().poll(at(2), escrowing, errors=more)
    assert escrow.notifications[0]["rule"] == "escrowsNearThreshold"
    assert escrow.notifications[0]["facts"]["top errors (24 h)"].startswith("58 failures: AttributeMapping")

    quarantine = Alerting().poll(at(26), quarantined(at(26), at(25)), errors=more)
    assert quarantine.notifications[0]["facts"]["top errors (24 h)"] == (
        "58 failures: AttributeMappingDependencyFailure (first seen 2026-11-20 12:12 UTC)"
    )
    # Without the provisioning logs, nothing is added.
    plain = Alerting(AlertConfig(failing_after=1, confirm_minutes=0)).poll(at(1), failing)
    assert "top errors (24 h)" not in plain.notifications[0]["facts"]


def test_a_new_error_code_is_learned_silently_at_first_then_announced_once() -> None:
    alerting = Alerting(AlertConfig(reminder_hours=1))
    known = {KEY: [code("AttributeMappingDependencyFailure", 5, at(0))]}
    first = alerting.poll(at(1), job(at(1)), errors=known)
    assert first.notifications == []
    memory = alerting.memories[KEY]
    assert memory["errorCodesSince"] == iso(at(1))
    assert memory["errorCodes"] == {"AttributeMappingDependencyFailure": {"firstSeen": iso(at(0)), "new": False}}
    # Still learning (the memory is younger than a day): a code first seen now is learned too.
    learning = {KEY: [*known[KEY], code("DuplicateTargetEntries", 1, at(20))]}
    assert alerting.poll(at(21), job(at(21)), errors=learning).notifications == []
    assert alerting.memories[KEY]["errorCodes"]["DuplicateTargetEntries"]["new"] is False

    # Past learning, a code the job has never shown opens the alert, once.
    fresh = {KEY: [code("SystemForCrossDomainIdentityManagementBadRequest", 3, at(26)), *learning[KEY]]}
    opened = alerting.poll(at(27), job(at(27)), errors=fresh)
    assert alerting.kinds(opened) == [("newErrorCode", "open")]
    sent = opened.notifications[0]
    assert sent["headline"] == "New error code: SystemForCrossDomainIdentityManagementBadRequest"
    assert sent["severity"] == "warning"
    assert sent["facts"]["first seen"] == iso(at(26))
    assert sent["facts"]["SystemForCrossDomainIdentityManagementBadRequest (24 h)"].startswith("3 failures")
    # Hours on: no reminder (a change is told once), though reminders are hourly.
    for hours in (28, 30, 40):
        assert alerting.poll(at(hours), job(at(hours)), errors=fresh).notifications == []
    # A second new code while it is open: one update naming both.
    second = {KEY: [*fresh[KEY], code("EntryExportFailed", 2, at(41))]}
    updated = alerting.poll(at(42), job(at(42)), errors=second)
    assert alerting.kinds(updated) == [("newErrorCode", "update")]
    assert updated.notifications[0]["headline"] == "Another new error code: EntryExportFailed"
    assert updated.notifications[0]["facts"]["error codes"] == (
        "EntryExportFailed, SystemForCrossDomainIdentityManagementBadRequest"
    )
    # A day after the first one: only the second is new, and nothing is sent for that.
    assert alerting.poll(at(51), job(at(51)), errors=second).notifications == []
    assert alerting.states[(*KEY, "newErrorCode")]["facts"]["error codes"] == "EntryExportFailed"
    # A day after the second: resolved, saying why; the codes stay known and are never new again.
    resolved = alerting.poll(at(66), job(at(66)), errors=second)
    assert alerting.kinds(resolved) == [("newErrorCode", "resolve")]
    assert resolved.notifications[0]["headline"] == (
        "Resolved: new error code cleared (no longer new 24 h after its first failure)"
    )
    assert alerting.poll(at(90), job(at(90)), errors=second).notifications == []


def test_a_code_the_jobs_older_history_holds_is_not_new() -> None:
    alerting = Alerting()
    alerting.poll(at(0), job(at(0)), errors={KEY: []})
    back = {KEY: [code("DuplicateTargetEntries", 4, at(30))]}
    assert (
        alerting.poll(at(31), job(at(31)), errors=back, seen_before={KEY: {"DuplicateTargetEntries"}}).notifications
        == []
    )
    assert alerting.memories[KEY]["errorCodes"]["DuplicateTargetEntries"]["new"] is False


def test_a_quarantine_holds_the_new_code_and_turning_the_logs_off_keeps_what_is_known() -> None:
    alerting = Alerting()
    alerting.poll(at(0), job(at(0)), errors={KEY: []})
    fresh = {KEY: [code("EntryExportFailed", 9, at(30))]}
    held = alerting.poll(at(31), quarantined(at(31), at(30.5)), errors=fresh)
    assert alerting.kinds(held) == [("quarantined", "open")]  # one voice: the quarantine says it
    assert alerting.memories[KEY]["errorCodes"]["EntryExportFailed"]["new"] is True
    # The logs turned off: the memory keeps its codes, and no newErrorCode is judged.
    off = alerting.poll(at(32), job(at(32)))
    assert alerting.kinds(off) == [("quarantined", "resolve")]
    assert "EntryExportFailed" in alerting.memories[KEY]["errorCodes"]
