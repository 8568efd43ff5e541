"""Alert payloads cannot be used to phish: text from Graph (names, ids, reasons, a SCIM target's
error message) reaches Teams, Slack and the generic webhook with no link, mention, formatting or
extra line its author chose, while the troubleshooting button, to a Microsoft portal, still works.

Followed: Slack "Formatting text for app surfaces" (docs.slack.dev/messaging/formatting-message-text,
escaping &, <, >) and Block Kit "Text object" (plain_text); Teams "Format cards in Teams"
(learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format: Markdown in
TextBlock, Fact.Title, Fact.Value, no HTML) and Adaptive Cards "Text features"
(learn.microsoft.com/adaptive-cards/create/textfeatures: RichTextBlock takes no Markdown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shared.alerts.conditions import AlertConfig
from shared.alerts.escaping import ELLIPSIS, defang, neutral, portal_link, slack_text, teams_text
from shared.alerts.payloads import generic_payload, render, slack_payload, teams_payload
from shared.alerts.records import Notification
from shared.domain.model import Job
from shared.domain.normalize import normalize_job
from tests.support.alerting import TENANT, Alerting, at, iso, run

PORTAL = "https://portal.azure.com/#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/ProvisioningStatus"
LURE = "https://evil.example.com/login"
HOSTILE_NAME = "Contoso *HR* [Re-authenticate here](https://evil.example.com/login) <!channel> <at>CEO</at>"
HOSTILE_REASON = "`EncounteredQuarantineException` @here\n\nURGENT: visit www.evil.com/reset <@U024BE7LH>"
HOSTILE_ERROR = (
    "CredentialsInvalid <https://evil.example.com|Microsoft Login> &amp; <b>bold</b> \u202eknil\u202c "
    "{{DATE(2017-02-14T06:00:00Z)}}\r\nhttps://evil.example.com/sso " + "x" * 5_000
)
HOSTILE = (HOSTILE_NAME, HOSTILE_REASON, HOSTILE_ERROR)
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")  # Slack: every & starts one of its three entities


def hostile_job(now_hours: float = 1.0, troubleshooting_url: str | None = PORTAL) -> Job:
    """A quarantined job whose app name, reason and target error a hostile party wrote."""
    now, began = at(now_hours), at(now_hours - 0.1)
    quarantine = {
        "reason": HOSTILE_REASON,
        "currentBegan": iso(began),
        "seriesBegan": iso(began),
        "nextAttempt": iso(now + timedelta(hours=6)),
        "error": {"code": "CredentialsInvalid", "message": HOSTILE_ERROR},
    }
    raw = {
        "id": "scim.0a1b2c3d.https://evil.example.com",
        "templateId": "scim *[x](https://evil.example.com)*",
        "schedule": {"interval": "PT40M", "state": "Active"},
        "status": {
            "code": "Quarantine",
            "countSuccessiveCompleteFailures": 1,
            "lastExecution": run(began, "Failed"),
            "quarantine": quarantine,
            "troubleshootingUrl": troubleshooting_url,
        },
    }
    sp = {"id": "11111111-2222-3333-4444-555555555555", "appId": "app", "displayName": HOSTILE_NAME}
    return normalize_job(raw, tenant_id=TENANT, service_principal=sp, observed_at=now)  # type: ignore[arg-type]


def hostile_notification(troubleshooting_url: str | None = PORTAL) -> Notification:
    """The open notification the rules decide for the hostile job, as the outbox would hold it."""
    alerting = Alerting(AlertConfig(confirm_minutes=0))
    result = alerting.poll(at(1), hostile_job(1.0, troubleshooting_url))
    [notification] = [n for n in result.notifications if n["rule"] == "quarantined"]
    return notification


def strings(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string value in a payload, but those under the keys in `skip`."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                yield from strings(item, skip)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, skip)


def objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from objects(item)


def assert_inert(text: str) -> None:
    """No clickable URL, no line of its own, no bidi trick, no broadcast mention."""
    assert "://" not in text and "www.evil.com" not in text and "evil.example.com" not in text, text
    assert "\r" not in text and "\u202e" not in text, text
    assert "@here" not in text, text


# ---------------------------------------------------------------- the functions


@pytest.mark.parametrize(
    ("hostile", "inert"),
    [
        ("https://evil.example.com/login", "https[:]//evil[.]example[.]com/login"),
        ("[click](http://1.2.3.4:8080/x)", "[click](http[:]//1[.]2[.]3[.]4:8080/x)"),
        ("go to www.evil.zz/reset", "go to www[.]evil[.]zz/reset"),
        ("evil.com and evil.zip", "evil[.]com and evil[.]zip"),
        ("unknown.tld/path", "unknown[.]tld/path"),
        (
            "HTTPS:/evil.example.com https:\\\\evil.example.com",
            "HTTPS[:]/evil[.]example[.]com https[:]\\\\evil[.]example[.]com",
        ),
        ("mail admin@evil.io", "mail admin@evil[.]io"),
        ("javascript:alert(1) mailto:x@y.com", "javascript[:]alert(1) mailto[:]x@y[.]com"),
        ("@here @channel @everyone", "[@]here [@]channel [@]everyone"),
    ],
)
def test_defang_breaks_urls_domains_and_broadcast_mentions(hostile: str, inert: str) -> None:
    assert defang(hostile) == inert


@pytest.mark.parametrize(
    "ordinary",
    [
        "EncounteredQuarantineException",
        "System.IO.FileNotFoundException: at Contoso.Scim.Client",
        "scim.0a1b2c3d4e5f.alerts",
        "SCIM_ERROR-42: 3 of 4 users (75%) failed; retry at 09:12 UTC",
        "user@contoso (no domain)",
    ],
)
def test_defang_leaves_ordinary_error_text_readable(ordinary: str) -> None:
    assert defang(ordinary) == ordinary


def test_neutral_is_one_line_without_invisible_characters_and_clipped() -> None:
    text = neutral("a\nb\r\n\tc\u2028d \u202eevil\u200b\u2066 " + "x" * 500, 40)
    assert text.startswith("a b c d evil x") and len(text) == 40 and text.endswith(ELLIPSIS)
    assert neutral("  short  ", 40) == "short"


def test_slack_text_escapes_control_characters_and_never_cuts_an_entity() -> None:
    assert slack_text("<!channel> & <@U1> <https://x.com|y>", 200) == (
        "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https[:]//x[.]com|y&gt;"
    )
    for limit in range(5, 30):
        clipped = slack_text("a" * 3 + "<" * 40, limit)
        assert len(clipped) <= limit
        body = clipped.removesuffix(ELLIPSIS)
        assert body.replace("&lt;", "").strip("a") == "", clipped  # whole entities only


def test_teams_text_breaks_tags_and_template_functions() -> None:
    assert teams_text("<at>Boss</at> {{DATE(2017-02-14T06:00:00Z)}}", 200) == (
        "‹at›Boss‹/at› { {DATE(2017-02-14T06:00:00Z)}}"
    )


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (PORTAL, True),
        ("https://entra.microsoft.com/#view/x", True),
        ("https://portal.azure.us/#blade", True),
        ("http://portal.azure.com/", False),
        ("https://portal.azure.com@evil.example.com/", False),
        ("https://portal.azure.com.evil.example.com/", False),
        ("https://evilazure.com/", False),
        ("https://portal.azure.com:8443/", False),
        ("https://portal.azure.com/\nhttps://evil.example.com", False),
        ("javascript:alert(1)", False),
        (None, False),
    ],
)
def test_portal_link_only_to_microsoft_portals(url: str | None, kept: bool) -> None:
    assert portal_link(url) == (url if kept else None)


# ---------------------------------------------------------------- the payloads


def test_the_rules_carry_the_hostile_text_into_the_notification() -> None:
    """The cases below start from what the rules decide, not from a hand-made notification."""
    notification = hostile_notification()
    assert notification["servicePrincipalName"] == HOSTILE_NAME
    assert HOSTILE_REASON in notification["headline"] and HOSTILE_REASON in notification["summary"]
    assert notification["facts"]["error"].startswith("CredentialsInvalid - CredentialsInvalid <https://")


def test_teams_card_has_no_markdown_element_and_no_live_link_but_the_portal_button() -> None:
    card = teams_payload(hostile_notification())["attachments"][0]["content"]
    types = {obj["type"] for obj in objects(card["body"])}
    # TextBlock and FactSet render Markdown (and `<at>` mentions); TextRuns do not.
    assert types <= {"RichTextBlock", "TextRun", "Container", "ColumnSet", "Column"}
    texts = list(strings(card["body"], skip=frozenset({"type", "color", "weight", "size", "spacing"})))
    for text in texts:
        assert_inert(text)
        assert "<" not in text and ">" not in text and "{{" not in text, text
        assert len(text) <= 2_000
    joined = " ".join(texts)
    assert "https[:]//evil[.]example[.]com" in joined and "‹at›CEO‹/at›" in joined and "[@]here" in joined
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Troubleshoot in Entra", "url": PORTAL}]


def test_slack_message_is_plain_text_escaped_and_unfurls_nothing() -> None:
    message = slack_payload(hostile_notification())
    assert (message["mrkdwn"], message["unfurl_links"], message["unfurl_media"]) == (False, False, False)
    text_objects = [obj for obj in objects(message["blocks"]) if obj.get("type") in ("plain_text", "mrkdwn")]
    assert text_objects and all(obj["type"] == "plain_text" for obj in text_objects)
    texts = [message["text"], *(obj["text"] for obj in text_objects)]
    for text in texts:
        assert_inert(text)
        assert "<" not in text and ">" not in text and not BARE_AMPERSAND.search(text), text
    header, section, fields = message["blocks"][:3]
    assert len(header["text"]["text"]) <= 150 and len(section["text"]["text"]) <= 3_000
    assert section["text"]["text"].count("\n") == 1  # our one break, between headline and summary
    assert all(len(field["text"]) <= 2_000 and field["text"].count("\n") == 1 for field in fields["fields"])
    joined = " ".join(texts)
    assert "&lt;!channel&gt;" in joined and "&lt;@U024BE7LH&gt;" in joined and "[@]here" in joined
    [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
    assert actions["elements"][0]["url"] == PORTAL


def test_generic_webhook_keeps_data_raw_and_its_prose_neutral() -> None:
    notification = hostile_notification()
    payload = generic_payload(notification)
    assert payload["job"]["servicePrincipalName"] == HOSTILE_NAME  # data: the receiver escapes for its medium
    assert payload["job"]["templateId"] == notification["templateId"]
    assert payload["alert"]["facts"] == notification["facts"]
    for prose in (payload["alert"]["headline"], payload["alert"]["summary"]):
        assert_inert(prose)
        assert "\n" not in prose and "<" not in prose and ">" not in prose
    assert "https[:]//evil[.]example[.]com" in payload["alert"]["summary"]


def test_a_hostile_troubleshooting_url_gives_no_button() -> None:
    notification = hostile_notification(troubleshooting_url=LURE)
    assert "actions" not in teams_payload(notification)["attachments"][0]["content"]
    assert "actions" not in [block["type"] for block in slack_payload(notification)["blocks"]]
    assert generic_payload(notification)["job"]["troubleshootingUrl"] == LURE  # raw data, documented


@pytest.mark.parametrize("target", ["teams", "slack", "webhook"])
def test_every_rendered_body_is_json_without_the_lure_outside_raw_data(target: str) -> None:
    body = json.loads(render(target, hostile_notification()))  # type: ignore[arg-type]
    shown = " ".join(strings(body, skip=frozenset({"job", "facts", "url"})))
    assert LURE not in shown and "<!channel>" not in shown and "<at>" not in shown
    assert all(hostile not in shown for hostile in HOSTILE)


@pytest.mark.parametrize("target", ["teams", "slack", "generic"])
def test_every_alert_names_its_tenant(target: str) -> None:
    # One deployment may watch many tenants: a person must see which one the job is in.
    notification = hostile_notification()
    body = json.loads(render(target, notification))  # type: ignore[arg-type]
    assert any(notification["tenantId"] in text for text in strings(body))
