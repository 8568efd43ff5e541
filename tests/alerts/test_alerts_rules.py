"""Alert rules as pure functions: each alert opens once, reminds on its cadence, resolves when
its condition clears, and says nothing while muted or superseded by a worse alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.alerts.conditions import AlertConfig
from shared.alerts.rules import evaluate
from shared.alerts.settings import load_alert_settings
from shared.domain.model import Job
from shared.settings import SettingsError
from tests.support.alerting import SP, TENANT, Alerting, at, iso, job, quarantined, run


def test_quarantine_opens_once_reminds_then_resolves() -> None:
    alerting = Alerting(AlertConfig(reminder_hours=24, quarantine_reminder_days=0))
    assert alerting.kinds(alerting.poll(at(0), job(at(0)))) == []
    opened = alerting.poll(at(1), quarantined(at(1), at(0.9)))
    assert alerting.kinds(opened) == [("quarantined", "open")]
    notification = opened.notifications[0]
    assert notification["headline"] == "Job entered quarantine: EncounteredQuarantineException"
    assert notification["facts"]["error"].startswith("CredentialsInvalid")
    assert notification["facts"]["days left before Entra disables it"] == "about 28"
    for hours in (1.1, 2, 12, 24.9):  # polls in between: nothing new
        assert alerting.kinds(alerting.poll(at(hours), quarantined(at(hours), at(0.9)))) == []
    reminded = alerting.poll(at(25), quarantined(at(25), at(0.9)))
    assert alerting.kinds(reminded) == [("quarantined", "remind")]
    assert reminded.notifications[0]["reminder"] == 1
    assert alerting.kinds(alerting.poll(at(26), quarantined(at(26), at(0.9)))) == []
    resolved = alerting.poll(at(27), job(at(27)))
    assert alerting.kinds(resolved) == [("quarantined", "resolve")]
    assert resolved.notifications[0]["headline"] == "Resolved: job left quarantine"
    assert len({n["notificationId"] for n in alerting.sent}) == 3


def test_a_long_quarantine_is_reminded_at_each_n_days_with_the_days_left() -> None:
    alerting = Alerting(AlertConfig(reminder_hours=0, quarantine_reminder_days=7))
    began = at(0) - timedelta(days=6)
    assert alerting.kinds(alerting.poll(at(0), quarantined(at(0), began))) == [("quarantined", "open")]
    assert alerting.kinds(alerting.poll(at(23), quarantined(at(23), began))) == []
    reminded = alerting.poll(at(25), quarantined(at(25), began))
    assert alerting.kinds(reminded) == [("quarantined", "remind")]
    headline = reminded.notifications[0]["headline"]
    assert headline == "Still quarantined after 7 days: about 21 days left before Entra disables it"
    assert alerting.kinds(alerting.poll(at(24 * 7), quarantined(at(24 * 7), began))) == []
    later = alerting.poll(at(24 * 8 + 1), quarantined(at(24 * 8 + 1), began))
    assert "after 14 days: about 14 days left" in later.notifications[0]["headline"]


def test_a_changed_quarantine_reason_is_an_update_not_a_new_alert() -> None:
    alerting = Alerting()
    alerting.poll(at(0), quarantined(at(0), at(0)))
    changed = alerting.poll(at(1), quarantined(at(1), at(0), reason="EncounteredEscrowProportionThreshold"))
    assert alerting.kinds(changed) == [("quarantined", "update")]
    assert changed.notifications[0]["headline"] == (
        "Quarantine reason changed: EncounteredQuarantineException -> EncounteredEscrowProportionThreshold"
    )
    assert alerting.kinds(alerting.poll(at(2), quarantined(at(2), at(0), "EncounteredEscrowProportionThreshold"))) == []


def test_the_same_stored_state_decides_the_same_notification_ids() -> None:
    alerting = Alerting()
    alerting.poll(at(0), job(at(0)))
    states, memories = dict(alerting.states), dict(alerting.memories)
    first = evaluate(
        [quarantined(at(1), at(1))], states, memories, [], now=at(1), config=alerting.config, tenant_id=TENANT
    )
    again = evaluate(
        [quarantined(at(1.5), at(1))], states, memories, [], now=at(1.5), config=alerting.config, tenant_id=TENANT
    )
    assert first.notifications  # the quarantine opens an alert: there are ids to compare
    assert [n["notificationId"] for n in first.notifications] == [n["notificationId"] for n in again.notifications]


def test_failing_opens_at_the_configured_count_of_successive_failures() -> None:
    alerting = Alerting(AlertConfig(failing_after=3, confirm_minutes=0))
    for failures, expected in ((1, []), (2, []), (3, [("failing", "open")]), (4, [])):
        now = at(failures)
        result = alerting.poll(now, job(now, last=run(now, "Failed"), countSuccessiveCompleteFailures=failures))
        assert alerting.kinds(result) == expected, failures
    assert alerting.kinds(alerting.poll(at(5), job(at(5)))) == [("failing", "resolve")]


def test_quarantine_holds_the_failing_alert_instead_of_resolving_it() -> None:
    alerting = Alerting(AlertConfig(failing_after=1, reminder_hours=1, confirm_minutes=0))
    failing = job(at(0), last=run(at(0), "Failed"), countSuccessiveCompleteFailures=1)
    assert alerting.kinds(alerting.poll(at(0), failing)) == [("failing", "open")]
    # Quarantined: the quarantine alert speaks; failing neither resolves nor reminds.
    assert alerting.kinds(alerting.poll(at(1), quarantined(at(1), at(1)))) == [("quarantined", "open")]
    assert alerting.kinds(alerting.poll(at(3), quarantined(at(3), at(1)))) == [("quarantined", "remind")]
    recovered = alerting.poll(at(4), job(at(4)))
    assert sorted(alerting.kinds(recovered)) == [("failing", "resolve"), ("quarantined", "resolve")]


def test_stale_paused_and_escrow_rules() -> None:
    alerting = Alerting()
    stale = job(at(5), last=run(at(0)))  # 5 h without a finished run, interval 40 min
    result = alerting.poll(at(5), stale)
    assert alerting.kinds(result) == [("stale", "open")]
    assert "no run ended and no progress was observed for" in result.notifications[0]["facts"]["why"]
    assert alerting.kinds(alerting.poll(at(5.5), stale)) == []  # ages move, the alert does not
    assert alerting.kinds(alerting.poll(at(6), job(at(6)))) == [("stale", "resolve")]

    assert alerting.kinds(alerting.poll(at(7), job(at(7), "Paused", schedule_state="Paused"))) == [("paused", "open")]
    assert alerting.kinds(alerting.poll(at(8), job(at(8)))) == [("paused", "resolve")]

    escrowing = job(at(9), last=run(at(9), "EntryLevelErrors", countEscrowed=35_000, countEntitled=100_000))
    result = alerting.poll(at(9), escrowing)
    assert alerting.kinds(result) == [("escrowsNearThreshold", "open")]
    assert result.notifications[0]["facts"]["escrowed entries"] == "35,000"


def test_object_count_drop_opens_against_the_previous_observation_and_resolves_on_recovery() -> None:
    alerting = Alerting(AlertConfig(reminder_hours=0, object_drop_percent=20, object_drop_accept_hours=72))
    assert alerting.kinds(alerting.poll(at(0), job(at(0), objects=1000))) == []
    assert alerting.kinds(alerting.poll(at(1), job(at(1), objects=850))) == []  # 15 %: under the threshold
    dropped = alerting.poll(at(2), job(at(2), objects=400))
    assert alerting.kinds(dropped) == [("objectCountDrop", "open")]
    assert dropped.notifications[0]["summary"] == "Synchronized objects dropped from 850 to 400 (53% fewer)."
    assert alerting.kinds(alerting.poll(at(3), job(at(3), objects=420))) == []
    assert alerting.kinds(alerting.poll(at(4), job(at(4), objects=845))) == [("objectCountDrop", "resolve")]
    # A lower level that holds is accepted after object_drop_accept_hours.
    alerting.poll(at(5), job(at(5), objects=100))
    assert alerting.kinds(alerting.poll(at(70), job(at(70), objects=100))) == []
    accepted = alerting.poll(at(78), job(at(78), objects=100))
    assert alerting.kinds(accepted) == [("objectCountDrop", "resolve")]
    assert "accepted as the new level" in accepted.notifications[0]["headline"]
    assert alerting.kinds(alerting.poll(at(79), job(at(79), objects=100))) == []


def test_a_removed_job_is_told_once_and_its_other_alerts_close_quietly() -> None:
    alerting = Alerting(AlertConfig(reminder_hours=1))

    def other(hours: float) -> Job:
        return job(at(hours), job_id="scim.b")

    alerting.poll(at(0), quarantined(at(0), at(0)), other(0))
    removed = alerting.poll(at(1), other(1))
    assert alerting.kinds(removed) == [("removed", "open")]
    assert alerting.states[(SP["id"], "scim.a", "quarantined")]["resolution"] == "job removed"
    assert alerting.kinds(alerting.poll(at(5), other(5))) == []  # no reminders of a removal
    back = alerting.poll(at(6), job(at(6)), other(6))
    assert alerting.kinds(back) == [("removed", "resolve")]


def test_a_mute_sends_nothing_and_an_alert_still_open_after_it_is_sent_then() -> None:
    alerting = Alerting()
    alerting.mutes = [
        {
            "servicePrincipalId": SP["id"],
            "jobId": "scim.a",
            "rule": None,
            "until": iso(at(3)),
            "reason": "maintenance",
            "createdAt": iso(at(0)),
        }
    ]
    assert alerting.kinds(alerting.poll(at(1), quarantined(at(1), at(1)))) == []
    state = alerting.states[(SP["id"], "scim.a", "quarantined")]
    assert state["status"] == "open" and state["announced"] is False
    assert alerting.kinds(alerting.poll(at(4), quarantined(at(4), at(1)))) == [("quarantined", "open")]
    # Muted again, then recovered during the mute: the resolve is not sent.
    alerting.mutes[0]["until"] = iso(at(10))
    assert alerting.kinds(alerting.poll(at(5), job(at(5)))) == []
    assert alerting.states[(SP["id"], "scim.a", "quarantined")]["status"] == "resolved"


def test_a_rule_turned_off_closes_its_alerts_quietly() -> None:
    alerting = Alerting()
    alerting.poll(at(0), quarantined(at(0), at(0)))
    alerting.config = AlertConfig(rules=frozenset({"failing"}), confirm_minutes=0)
    assert alerting.kinds(alerting.poll(at(1), quarantined(at(1), at(0)))) == []
    assert alerting.states[(SP["id"], "scim.a", "quarantined")]["resolution"] == "rule turned off"


BASE_ENV = {"AZURE_TENANT_ID": TENANT}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"ALERT_TEAMS_WEBHOOK_URL": "http://hooks.example.com/secret-token"}, "ALERT_TEAMS_WEBHOOK_URL"),
        ({"ALERT_SLACK_WEBHOOK_URL": "not a url"}, "ALERT_SLACK_WEBHOOK_URL"),
        ({"ALERT_WEBHOOK_URL": "https://hooks.example.com/secret-token"}, "ALERT_WEBHOOK_SECRET"),
        (
            {"ALERT_WEBHOOK_URL": "https://hooks.example.com/secret-token", "ALERT_WEBHOOK_SECRET": "short"},
            "ALERT_WEBHOOK_SECRET",
        ),
        ({"ALERT_RULES": "quarantined,bogus"}, "ALERT_RULES"),
        ({"ALERT_REMINDER_HOURS": "-1"}, "ALERT_REMINDER_HOURS"),
        ({"ALERT_FAILING_AFTER": "0"}, "ALERT_FAILING_AFTER"),
        (
            {"ALERT_TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)"},
            "ALERT_TEAMS_WEBHOOK_URL",
        ),
    ],
)
def test_a_bad_alert_setting_is_named_and_its_value_never_shown(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_alert_settings({**BASE_ENV, **overrides})
    assert named in str(error.value)
    assert "secret-token" not in str(error.value) and "vault.azure.net" not in str(error.value)


def test_alert_settings_defaults_targets_and_empty_key_vault_references() -> None:
    settings = load_alert_settings(
        {
            **BASE_ENV,
            "ALERT_TEAMS_WEBHOOK_URL": "https://contoso.webhook.office.com/webhookb2/secret-token",
            "ALERT_SLACK_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=)",  # what the Bicep sets for "none"
            "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",  # http only on loopback
            "ALERT_WEBHOOK_SECRET": "0123456789abcdef0123",
            "ALERT_REMINDER_HOURS": "0.5",
            "ALERT_RULES": "Quarantined, failing",
        }
    )
    assert settings.target_kinds == ("teams", "webhook")
    assert settings.reminder_hours == 0.5 and settings.failing_after == 3
    assert settings.rules == frozenset({"quarantined", "failing"})
    assert "secret-token" not in repr(settings) and "0123456789abcdef" not in repr(settings)
    assert load_alert_settings(BASE_ENV).rules == frozenset(AlertConfig().rules)
    assert load_alert_settings({**BASE_ENV, "ALERT_RULES": "none"}).rules == frozenset()


# ---------------------------------------------------------------- issue 13: alerts people can trust


def test_stale_and_failing_open_only_after_the_condition_held_and_close_without_flapping() -> None:
    alerting = Alerting(AlertConfig(confirm_minutes=15, failing_after=1, reminder_hours=0))
    stale = job(at(5), last=run(at(0)))
    assert alerting.kinds(alerting.poll(at(5), stale)) == []  # seen once: pending
    assert alerting.kinds(alerting.poll(at(5 + 10 / 60), stale)) == []  # 10 min: still pending
    assert alerting.kinds(alerting.poll(at(5.25), stale)) == [("stale", "open")]  # held 15 min
    healthy = job(at(5.5), last=run(at(5.4)))
    assert alerting.kinds(alerting.poll(at(5.5), healthy)) == []  # clear once: clearing, still open
    assert alerting.kinds(alerting.poll(at(5.6), stale)) == []  # back: no second open, no resolve
    assert alerting.kinds(alerting.poll(at(6), job(at(6), last=run(at(5.9))))) == []
    assert alerting.kinds(alerting.poll(at(6.3), job(at(6.3), last=run(at(6.2))))) == [("stale", "resolve")]
    # A condition that clears before it is confirmed never opens.
    failed = job(at(7), last=run(at(6.9), "Failed"))
    assert alerting.kinds(alerting.poll(at(7), failed)) == []
    assert alerting.kinds(alerting.poll(at(7.1), job(at(7.1), last=run(at(7.05))))) == []
    assert alerting.kinds(alerting.poll(at(7.5), job(at(7.5), last=run(at(7.45))))) == []
    assert [s for s in alerting.states.values() if s["rule"] == "failing"] == []


def test_escrow_pruned_pause_alerts_as_an_error_with_what_to_do() -> None:
    alerting = Alerting()
    pruned = job(at(1), "Paused", schedule_state="Paused", escrowsPruned=True)
    result = alerting.poll(at(1), pruned)
    assert alerting.kinds(result) == [("paused", "open")]
    sent = result.notifications[0]
    assert sent["severity"] == "error"
    assert sent["headline"] == "Paused by Entra after pruning escrows"
    assert "fix the errors of the escrowed entries, then restart the job" in sent["summary"]
    admin = alerting.poll(at(2), job(at(2), "Paused", schedule_state="Paused"))
    assert alerting.kinds(admin) == [("paused", "update")]  # the same alert, told what changed
    assert (admin.notifications[0]["headline"], admin.notifications[0]["severity"]) == (
        "Pause changed: Paused or disabled",
        "info",
    )
    assert alerting.kinds(alerting.poll(at(3), job(at(3), "Paused", schedule_state="Paused"))) == []


def test_first_cycle_not_finished_alert() -> None:
    alerting = Alerting()
    first = job(at(0), last=None)
    first["lastExecution"] = None
    first["firstObservedAt"] = iso(at(0))
    assert alerting.kinds(alerting.poll(at(23), first)) == []
    result = alerting.poll(at(25), first)
    assert alerting.kinds(result) == [("firstCycleNotFinished", "open")]
    assert result.notifications[0]["severity"] == "warning"
    assert result.notifications[0]["facts"]["running since"] == iso(at(0))


def test_a_job_the_monitor_cannot_read_holds_its_stale_alert() -> None:
    alerting = Alerting()
    stale = job(at(5), last=run(at(0)))
    assert alerting.kinds(alerting.poll(at(5), stale)) == [("stale", "open")]
    unread = {**stale, "notObservedSince": iso(at(5)), "notObservedReason": "Graph answered HTTP 429"}
    assert alerting.kinds(alerting.poll(at(6), unread)) == []  # neither resolved nor re-judged
    assert alerting.states[(SP["id"], "scim.a", "stale")]["status"] == "open"


def test_a_paused_job_the_monitor_cannot_read_does_not_start_failing() -> None:
    alerting = Alerting()
    paused = job(at(0), "Paused", schedule_state="Paused", last=run(at(0), "Failed"), countSuccessiveCompleteFailures=3)
    assert alerting.kinds(alerting.poll(at(0), paused)) == [("paused", "open")]
    unread = {**paused, "notObservedSince": iso(at(0.5)), "notObservedReason": "Graph answered HTTP 403"}
    assert alerting.kinds(alerting.poll(at(2), unread)) == []  # blind: no "failing", no resolve
