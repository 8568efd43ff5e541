"""Alerts end to end: the Graph emulator, Azurite, `run_poll`, and a real webhook receiver on
loopback that counts what arrives. Only loopback addresses are ever contacted."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.azurite import free_port
from devtools.graph_emulator import EmulatorServer
from devtools.webhook_receiver import Received, WebhookReceiver
from shared.alerts.after_poll import alert_config, run_alerts
from shared.alerts.rules import evaluate
from shared.alerts.settings import load_alert_settings
from shared.alerts.store import load_alert_rows, queue_notifications, undelivered, update_delivery
from shared.alerts.webhooks import (
    NOTIFICATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    targets_of,
    verify_signature,
)
from shared.api.app import create_app
from shared.domain.timestamps import isoformat_utc
from shared.poll import run_poll
from shared.settings import load_settings
from shared.storage.store import open_store
from tests.support import tenants

SP_ID = "11111111-2222-3333-4444-555555555555"
JOB_ID = "scim.0a1b2c3d.alerts"
SECRET = "test-signing-secret-0123456789"
PATHS = ("/teams", "/slack", "/hook")
LABEL_KINDS = {"Alert": "open", "Update": "update", "Reminder": "remind", "Resolved": "resolve"}


def recent(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def execution(activity: str, began: str, state: str = "Succeeded") -> dict[str, Any]:
    ended = (datetime.fromisoformat(began.rstrip("Z")) + timedelta(minutes=1)).isoformat() + "Z"
    return {"activityIdentifier": activity, "state": state, "timeBegan": began, "timeEnded": ended}


def tenant(code: str = "Active", last: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    troubleshooting = {"troubleshootingUrl": "https://portal.azure.com/#troubleshoot"}
    job = tenants.job(JOB_ID, "scim", last, code, **{**troubleshooting, **status})
    return {
        "tenantId": "t",
        "servicePrincipals": [{"id": SP_ID, "appId": "app", "displayName": "Contoso SCIM", "jobs": [job]}],
    }


def healthy() -> dict[str, Any]:
    return tenant(last=execution("r1", recent(20)))


def quarantined(began_minutes_ago: float = 5) -> dict[str, Any]:
    quarantine = {
        "reason": "EncounteredQuarantineException",
        "currentBegan": recent(began_minutes_ago),
        "seriesBegan": recent(began_minutes_ago),
        "nextAttempt": recent(-360),
        "seriesCount": 1,
        "error": {"code": "CredentialsInvalid", "message": "The target rejected the credentials"},
    }
    return tenant(
        "Quarantine",
        last=execution("r2", recent(10), "Failed"),
        quarantine=quarantine,
        countSuccessiveCompleteFailures=1,
    )


def recovered() -> dict[str, Any]:
    return tenant(last=execution("r3", recent(1)))


def runs_text(block: dict[str, Any]) -> str:
    """A Teams RichTextBlock's text (the cards hold no TextBlock: their runs take no Markdown)."""
    return "".join(run["text"] for run in block["inlines"])


def teams_facts(card: dict[str, Any]) -> dict[str, str]:
    """The card's fact rows (ColumnSets of TextRuns, not a FactSet), name to value."""
    [container] = [block for block in card["body"] if block["type"] == "Container"]
    return {
        runs_text(row["columns"][0]["items"][0]): runs_text(row["columns"][1]["items"][0]) for row in container["items"]
    }


def kind_of(request: Received) -> str:
    body = request.json()
    if "kind" in body:  # the generic webhook
        return str(body["kind"])
    text = runs_text(body["attachments"][0]["content"]["body"][0]) if "attachments" in body else body["text"]
    return LABEL_KINDS[text.split(":", 1)[0]]


def kinds(receiver: WebhookReceiver, path: str) -> list[str]:
    return [kind_of(request) for request in receiver.accepted(path)]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as server:
        yield server


def set_targets(monkeypatch: pytest.MonkeyPatch, receiver: WebhookReceiver, *paths: str) -> None:
    names = {"/teams": "ALERT_TEAMS_WEBHOOK_URL", "/slack": "ALERT_SLACK_WEBHOOK_URL", "/hook": "ALERT_WEBHOOK_URL"}
    for path, name in names.items():
        if path in paths:
            monkeypatch.setenv(name, receiver.url(path))
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def alert_env(app_env: dict[str, str], receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The app's settings with all three targets pointing at the receiver."""
    for name in ("ALERT_RULES", "ALERT_REMINDER_HOURS", "ALERT_QUARANTINE_REMINDER_DAYS", "ALERT_DELIVERY_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    set_targets(monkeypatch, receiver, *PATHS)
    return app_env


@pytest.fixture
async def api(alert_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_healthy_quarantined_still_quarantined_recovered_sends_open_reminder_resolve(
    alert_env: dict[str, str], demo_emulator: EmulatorServer, receiver: WebhookReceiver
) -> None:
    demo_emulator.set_tenant(healthy())
    first = await run_poll(trigger="test")
    assert first["alerts"]["status"] == "succeeded" and receiver.received == []

    demo_emulator.set_tenant(quarantined())
    opened = await run_poll(trigger="test")
    assert opened["status"] == "succeeded"
    assert opened["alerts"]["notifications"]["open"] == 1 and opened["alerts"]["delivery"]["delivered"] == 3
    assert {path: kinds(receiver, path) for path in PATHS} == {path: ["open"] for path in PATHS}

    for _ in range(2):  # still quarantined minutes later: nothing new
        assert (await run_poll(trigger="test"))["alerts"]["notifications"]["remind"] == 0
    # A day on (the rules take `now`): the reminder, with the days left before Entra disables the job.
    store = open_store(load_settings())
    reminded = await run_alerts(store, load_alert_settings(), now=datetime.now(UTC) + timedelta(hours=25))
    assert reminded["notifications"]["remind"] == 1

    demo_emulator.set_tenant(recovered())
    closed = await run_poll(trigger="test")
    assert closed["alerts"]["notifications"]["resolve"] == 1 and closed["alerts"]["openAlerts"] == 0
    await run_poll(trigger="test")

    assert {path: kinds(receiver, path) for path in PATHS} == {path: ["open", "remind", "resolve"] for path in PATHS}
    assert len(receiver.received) == 9  # nothing failed, nothing was sent twice
    ids = [[r.header(NOTIFICATION_ID_HEADER) for r in receiver.accepted(path)] for path in PATHS]
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 3

    generic = [r.json() for r in receiver.accepted("/hook")]
    assert all(r.signature_valid for r in receiver.accepted("/hook"))
    assert generic[0]["alert"]["headline"] == "Job entered quarantine: EncounteredQuarantineException"
    assert generic[0]["job"] == {
        "tenantId": alert_env["AZURE_TENANT_ID"].lower(),
        "servicePrincipalId": SP_ID,
        "servicePrincipalName": "Contoso SCIM",
        "jobId": JOB_ID,
        "templateId": "scim",
        "troubleshootingUrl": "https://portal.azure.com/#troubleshoot",
    }
    assert "about 27 days left before Entra disables it" in generic[1]["alert"]["headline"]
    assert generic[2]["alert"]["status"] == "resolved"


async def test_payloads_are_what_teams_slack_and_a_signed_webhook_take(
    alert_env: dict[str, str], demo_emulator: EmulatorServer, receiver: WebhookReceiver
) -> None:
    demo_emulator.set_tenant(quarantined())
    await run_poll(trigger="test")
    [teams] = receiver.accepted("/teams")
    message = teams.json()
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert {block["type"] for block in card["body"]} == {"RichTextBlock", "Container"}
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Troubleshoot in Entra", "url": "https://portal.azure.com/#troubleshoot"}
    ]
    facts = teams_facts(card)
    assert facts["reason"] == "EncounteredQuarantineException"
    assert facts["days left before Entra disables it"] == "about 28"

    [slack] = receiver.accepted("/slack")
    body = slack.json()
    assert body["text"].startswith("Alert: Quarantined - Contoso SCIM")
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "section", "actions", "context"]
    assert len(body["blocks"][2]["fields"]) <= 10

    [hook] = receiver.accepted("/hook")
    assert hook.signature_valid is True
    assert hook.header(NOTIFICATION_ID_HEADER) == hook.json()["notificationId"]
    assert hook.header(SIGNATURE_HEADER) is not None and hook.header(TIMESTAMP_HEADER) is not None
    assert not verify_signature(SECRET, hook.headers, hook.body + b" ")  # tampered
    assert not verify_signature("another-secret-0123456789", hook.headers, hook.body)
    stale = int(hook.header(TIMESTAMP_HEADER) or 0) + 3600
    assert not verify_signature(SECRET, hook.headers, hook.body, now=stale)  # replayed an hour later


async def test_hostile_names_and_errors_arrive_inert_and_the_portal_button_still_works(
    alert_env: dict[str, str], demo_emulator: EmulatorServer, receiver: WebhookReceiver
) -> None:
    """What a hostile app owner or SCIM target writes reaches no receiver as a link or a mention
    (shared/alerts/escaping.py names the Slack and Teams pages this follows)."""
    lure = "https://evil.example.com/login"
    hostile = quarantined()
    principal = hostile["servicePrincipals"][0]
    principal["displayName"] = f"Contoso [Sign in again]({lure}) <!channel> <at>CEO</at> *urgent*"
    quarantine = principal["jobs"][0]["status"]["quarantine"]
    quarantine["reason"] = f"`Expired` @here\nReset at www.evil.com/reset <{lure}|Microsoft>"
    quarantine["error"]["message"] = f"<b>Re-consent</b> at {lure}\r\n" + "x" * 5_000
    demo_emulator.set_tenant(hostile)
    await run_poll(trigger="test")

    [teams] = receiver.accepted("/teams")
    card = teams.json()["attachments"][0]["content"]
    assert {block["type"] for block in card["body"]} == {"RichTextBlock", "Container"}  # no Markdown element
    shown = " ".join([runs_text(card["body"][0]), *teams_facts(card).values()])
    assert "evil[.]example[.]com" in shown and "‹at›CEO‹/at›" in shown and "[@]here" in shown
    assert card["actions"][0]["url"] == "https://portal.azure.com/#troubleshoot"

    [slack] = receiver.accepted("/slack")
    message = slack.json()
    assert message["mrkdwn"] is False and "&lt;!channel&gt;" in message["text"]
    assert {obj["type"] for block in message["blocks"] for obj in _text_objects(block)} == {"plain_text"}

    [hook] = receiver.accepted("/hook")
    generic = hook.json()
    assert generic["job"]["servicePrincipalName"] == principal["displayName"]  # data stays raw
    assert "\n" not in generic["alert"]["headline"] and "[@]here" in generic["alert"]["headline"]

    for request in (teams, slack):
        raw = request.body.decode("utf-8")
        assert lure not in raw and "www.evil.com" not in raw and "<!channel>" not in raw and "@here" not in raw
    assert lure not in generic["alert"]["summary"] and lure not in generic["alert"]["headline"]


def _text_objects(block: dict[str, Any]) -> list[dict[str, Any]]:
    found = [block["text"]] if isinstance(block.get("text"), dict) else []
    return found + list(block.get("fields", [])) + [e for e in block.get("elements", []) if "url" not in e]


async def test_a_receiver_that_fails_twice_then_succeeds_gets_the_alert_once(
    app_env: dict[str, str],
    demo_emulator: EmulatorServer,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_targets(monkeypatch, receiver, "/hook")
    receiver.fail_next(2)
    demo_emulator.set_tenant(healthy())
    await run_poll(trigger="test")
    demo_emulator.set_tenant(quarantined())
    record = await run_poll(trigger="test")
    assert record["alerts"]["delivery"] == {
        "delivered": 1,
        "retrying": 0,
        "failed": 0,
        "waiting": 0,
        "attempts": 3,
    }
    arrived = receiver.received
    assert [r.status for r in arrived] == [500, 500, 200]
    assert len({r.header(NOTIFICATION_ID_HEADER) for r in arrived}) == 1 and len({r.body for r in arrived}) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(arrived)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95  # backoff 1 s then 2 s, each with up to half of it as jitter
    await run_poll(trigger="test")
    assert len(receiver.received) == 3 and len(receiver.accepted()) == 1


async def test_a_429_is_retried_after_its_retry_after(
    app_env: dict[str, str],
    demo_emulator: EmulatorServer,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_targets(monkeypatch, receiver, "/slack")
    receiver.fail_next(1, status=429, retry_after=1.5)
    demo_emulator.set_tenant(quarantined())
    await run_poll(trigger="test")
    throttled, accepted = receiver.received
    assert (throttled.status, accepted.status) == (429, 200)
    assert accepted.at - throttled.at >= 1.45


async def test_a_target_down_for_a_whole_run_gets_the_alert_once_on_a_later_run(
    alert_env: dict[str, str],
    demo_emulator: EmulatorServer,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    api: httpx.AsyncClient,
) -> None:
    monkeypatch.setenv("ALERT_DELIVERY_ATTEMPTS", "2")
    receiver.fail_next(1000, status=503, path="/teams")
    demo_emulator.set_tenant(quarantined())
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded"  # the poll did its work; delivery is reported beside it
    assert record["alerts"]["status"] == "partial"
    assert record["alerts"]["delivery"]["retrying"] == 1 and record["alerts"]["delivery"]["delivered"] == 2
    notifications = (await api.get("/api/v1/alerts/notifications", params={"status": "retrying"})).json()["value"]
    [stuck] = notifications
    assert (stuck["target"], stuck["kind"], stuck["attempts"], stuck["lastError"]) == ("teams", "open", 2, "HTTP 503")
    assert stuck["nextAttemptAt"] is not None

    # Recovered meanwhile: the resolve waits behind the open, so Teams sees them in order.
    demo_emulator.set_tenant(recovered())
    await run_poll(trigger="test")
    assert kinds(receiver, "/slack") == ["open", "resolve"] and kinds(receiver, "/teams") == []

    receiver.clear()  # Teams is back
    store = open_store(load_settings())
    settings = load_alert_settings()
    assert (await run_alerts(store, settings))["delivery"]["waiting"] == 2  # not before its nextAttemptAt
    for row in await undelivered(store):  # ... which a minute later has come
        await update_delivery(store, row, {"nextAttemptAt": isoformat_utc(datetime.now(UTC) - timedelta(seconds=1))})
    result = await run_alerts(store, settings)
    assert result["delivery"]["delivered"] == 2 and result["status"] == "succeeded"
    assert kinds(receiver, "/teams") == ["open", "resolve"]
    await run_alerts(store, settings)
    assert len(receiver.received) == 2
    delivered = (await api.get("/api/v1/alerts/notifications", params={"status": "delivered"})).json()["value"]
    assert len(delivered) == 6


async def test_an_evaluation_that_crashed_before_storing_its_state_sends_each_alert_once(
    alert_env: dict[str, str], demo_emulator: EmulatorServer, receiver: WebhookReceiver
) -> None:
    demo_emulator.set_tenant(healthy())
    await run_poll(trigger="test")
    demo_emulator.set_tenant(quarantined())
    from shared.poll import poll_tenant

    settings = load_settings()
    await poll_tenant(settings, trigger="test")  # jobs stored, no alert step
    store = open_store(settings)
    alert_settings = load_alert_settings()
    rows = await load_alert_rows(store)
    decided = evaluate(
        await store.list_jobs(),
        rows.states,
        rows.memories,
        [],
        now=datetime.now(UTC),
        config=alert_config(alert_settings),
        tenant_id=store.tenant_id,
    )
    # The outbox is written, then the process dies before the alert states are.
    assert await queue_notifications(store, decided.notifications, [t.kind for t in targets_of(alert_settings)]) == 3
    again = await run_alerts(store, alert_settings)
    assert again["outboxRowsQueued"] == 0  # the same decision, under the same ids
    await run_poll(trigger="test")
    assert {path: kinds(receiver, path) for path in PATHS} == {path: ["open"] for path in PATHS}


async def test_overlapping_runs_decide_and_send_once(
    alert_env: dict[str, str], demo_emulator: EmulatorServer, receiver: WebhookReceiver
) -> None:
    demo_emulator.set_tenant(quarantined())
    from shared.poll import poll_tenant

    settings = load_settings()
    await poll_tenant(settings, trigger="test")
    store = open_store(settings)
    alert_settings = load_alert_settings()
    results = await asyncio.gather(*(run_alerts(store, alert_settings) for _ in range(3)))
    assert sum(r.get("notifications", {}).get("open", 0) for r in results) == 1
    assert {path: kinds(receiver, path) for path in PATHS} == {path: ["open"] for path in PATHS}
    assert len(receiver.received) == 3


async def test_mute_and_unmute_through_the_api(
    alert_env: dict[str, str],
    demo_emulator: EmulatorServer,
    receiver: WebhookReceiver,
    api: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No sign-in here: writes only with the key-only switch (tests/api/test_api_security.py has the roles).
    refused = await api.post("/api/v1/alerts/mute", json={"servicePrincipalId": SP_ID, "jobId": JOB_ID, "hours": 1})
    assert refused.status_code == 403 and "API_KEY_ONLY_WRITES" in refused.json()["detail"]
    monkeypatch.setenv("API_KEY_ONLY_WRITES", "true")
    unknown = await api.post("/api/v1/alerts/mute", json={"servicePrincipalId": SP_ID, "jobId": "nope", "hours": 1})
    assert unknown.status_code == 404
    demo_emulator.set_tenant(healthy())
    await run_poll(trigger="test")
    bad = await api.post(
        "/api/v1/alerts/mute",
        json={"servicePrincipalId": SP_ID, "jobId": JOB_ID, "hours": 1, "until": "2030-01-01T00:00:00Z"},
    )
    assert bad.status_code == 400 and "exactly one of until and hours" in bad.json()["detail"]
    muted = await api.post(
        "/api/v1/alerts/mute",
        json={"servicePrincipalId": SP_ID, "jobId": JOB_ID, "hours": 2, "reason": "rotating credentials"},
    )
    assert muted.status_code == 200 and muted.json()["rule"] is None
    assert muted.json()["createdBy"] == {"name": "function key", "objectId": None, "via": "functionKey"}
    assert len((await api.get("/api/v1/alerts/mutes")).json()["value"]) == 1

    demo_emulator.set_tenant(quarantined())
    await run_poll(trigger="test")
    assert receiver.received == []  # muted: nothing sent
    [alert] = (await api.get("/api/v1/alerts")).json()["value"]
    assert (alert["rule"], alert["status"], alert["announced"]) == ("quarantined", "open", False)
    assert alert["mutedUntil"] == muted.json()["until"]

    unmuted = await api.post("/api/v1/alerts/unmute", json={"servicePrincipalId": SP_ID, "jobId": JOB_ID})
    assert unmuted.json() == {"removed": 1}
    events = (await api.get(f"/api/v1/jobs/{SP_ID}/{JOB_ID}")).json()["events"]
    audited = [(e["kind"], e["current"], e["reason"], e["actor"]["via"]) for e in events if e.get("actor")]
    assert audited == [
        ("alertsUnmuted", "every rule", None, "functionKey"),
        ("alertsMuted", "every rule", "rotating credentials", "functionKey"),
    ]
    await run_poll(trigger="test")  # still open after the mute: sent now
    assert {path: kinds(receiver, path) for path in PATHS} == {path: ["open"] for path in PATHS}

    demo_emulator.set_tenant(recovered())
    await run_poll(trigger="test")
    resolved = (await api.get("/api/v1/alerts", params={"status": "resolved"})).json()["value"]
    assert [(a["rule"], a["resolution"]) for a in resolved] == [("quarantined", "condition cleared")]
    assert (await api.get("/api/v1/alerts", params={"status": "open"})).json()["value"] == []
    assert len((await api.get("/api/v1/alerts")).json()["value"]) == 1  # recent ones by default
    assert (await api.get("/api/v1/alerts", params={"rule": "bogus"})).status_code == 400

    document = (await api.get("/api/openapi.json")).json()
    for path, method in (
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/mute", "post"),
        ("/api/v1/alerts/unmute", "post"),
        ("/api/v1/alerts/mutes", "get"),
        ("/api/v1/alerts/notifications", "get"),
    ):
        assert method in document["paths"][path], path


async def test_alerts_failing_never_fail_the_poll_and_never_show_a_target(
    app_env: dict[str, str],
    demo_emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "webhookb2/secret-token-0123456789"
    monkeypatch.setenv("ALERT_TEAMS_WEBHOOK_URL", f"http://hooks.example.com/{token}")  # not https
    demo_emulator.set_tenant(quarantined())
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded" and record["alerts"]["status"] == "failed"
    assert "ALERT_TEAMS_WEBHOOK_URL must use https" in record["alerts"]["error"]
    stored = await open_store(load_settings()).last_poll()
    assert stored is not None and stored["alerts"]["status"] == "failed"

    # A target nobody answers (loopback, nothing listening): retried later, reported now.
    monkeypatch.setenv("ALERT_TEAMS_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/{token}")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/{token}")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ALERT_DELIVERY_ATTEMPTS", "1")
    record = await run_poll(trigger="test")
    assert record["status"] == "succeeded" and record["alerts"]["status"] == "partial"
    assert record["alerts"]["delivery"]["retrying"] == 2
    assert "not delivered" in caplog.text
    everything = caplog.text + json.dumps(record)
    assert token not in everything and SECRET not in everything
