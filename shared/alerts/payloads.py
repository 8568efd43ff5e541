"""What each target receives: the same notification as a Teams card, a Slack message, or
the generic JSON (docs/alerts.md shows each). Rendered at send time from the outbox document,
the same bytes on every attempt.

Names, ids, reasons and error texts come from Graph and from the provisioning targets behind it:
every one enters a payload through `shared.alerts.escaping` (Teams: TextRuns, no Markdown;
Slack: escaped plain_text; generic: its human-readable lines neutral, its data raw), so an alert
never carries a link, a mention or formatting its sender chose. The one link is the
troubleshooting button, and only to a Microsoft portal (`portal_link`)."""

from __future__ import annotations

import json
from typing import Any

from shared.alerts.escaping import portal_link, prose_text, slack_text, teams_text
from shared.alerts.records import Notification, TargetKind, job_label

_KIND_LABELS = {"open": "Alert", "update": "Update", "remind": "Reminder", "resolve": "Resolved"}
_TEAMS_COLORS = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}
_TEXT_LIMIT = 1_000
_NAME_LIMIT = 100  # a fact's name (error codes in live facts come from Graph)
_LABEL_LIMIT = 300
_HEADLINE_LIMIT = 500
_SUMMARY_LIMIT = 2_000


def _label(notification: Notification) -> str:
    return f"{_KIND_LABELS.get(notification['kind'], 'Alert')}: {notification['title']} - {job_label(notification)}"


def _facts(notification: Notification) -> list[tuple[str, str]]:
    """Raw (name, value) pairs; each payload makes them safe for its medium."""
    # The tenant: one deployment may watch many (docs/multitenant.md).
    facts = [("job", job_label(notification)), ("tenant", notification["tenantId"]), *notification["facts"].items()]
    facts.append(("opened", notification["openedAt"]))
    if resolved := notification.get("resolvedAt"):
        facts.append(("resolved", resolved))
    return [(str(name), str(value)) for name, value in facts]


def generic_payload(notification: Notification) -> dict[str, Any]:
    """The generic webhook's JSON (docs/alerts.md): the notification as data. `headline` and
    `summary` are prose a receiver may show as is: one line, URLs defanged, no mention, no tag
    (`prose_text`). Everything else is raw data (ids, names, facts, Graph's
    troubleshootingUrl) that a receiver matches on; it escapes them for its own medium, which
    no one escaping could fit (HTML, Markdown, mrkdwn each need their own)."""
    alert: dict[str, Any] = {
        key: notification[key]
        for key in (
            "alertId",
            "rule",
            "severity",
            "status",
            "title",
            "headline",
            "summary",
            "facts",
            "episode",
            "reminder",
            "openedAt",
            "resolvedAt",
        )
    }
    alert["headline"] = prose_text(notification["headline"], _HEADLINE_LIMIT)
    alert["summary"] = prose_text(notification["summary"], _SUMMARY_LIMIT)
    return {
        "type": "entra-sync-monitor.alert",
        "version": 1,
        "notificationId": notification["notificationId"],
        "kind": notification["kind"],
        "at": notification["at"],
        "alert": alert,
        "job": {
            key: notification[key]
            for key in (
                "tenantId",
                "servicePrincipalId",
                "servicePrincipalName",
                "jobId",
                "templateId",
                "troubleshootingUrl",
            )
        },
    }


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: dict[str, Any], **block: Any) -> dict[str, Any]:
    """A RichTextBlock: its TextRuns take no Markdown, unlike a TextBlock or a Fact."""
    return {"type": "RichTextBlock", "inlines": list(runs), **block}


def _teams_fact(name: str, value: str) -> dict[str, Any]:
    """One FactSet-like row, in TextRuns (a FactSet's title and value are Markdown)."""
    return {
        "type": "ColumnSet",
        "spacing": "None",
        "columns": [
            {"type": "Column", "width": 1, "items": [_rich(_run(teams_text(name, _NAME_LIMIT), weight="Bolder"))]},
            {"type": "Column", "width": 2, "items": [_rich(_run(teams_text(value, _TEXT_LIMIT)))]},
        ],
    }


def teams_payload(notification: Notification) -> dict[str, Any]:
    """An Adaptive Card 1.4 in the message envelope Teams incoming webhooks and the Workflows
    "post to a channel when a webhook request is received" template accept. Text is in
    RichTextBlocks only (see shared.alerts.escaping)."""
    color = "Good" if notification["kind"] == "resolve" else _TEAMS_COLORS.get(notification["severity"], "Default")
    ids = (
        f"{notification['severity']} - alert {notification['alertId']} - notification {notification['notificationId']}"
    )
    body: list[dict[str, Any]] = [
        _rich(_run(teams_text(_label(notification), _LABEL_LIMIT), weight="Bolder", size="Medium")),
        _rich(_run(teams_text(notification["headline"], _HEADLINE_LIMIT), color=color, weight="Bolder")),
        _rich(_run(teams_text(notification["summary"], _SUMMARY_LIMIT)), spacing="Small"),
        {"type": "Container", "items": [_teams_fact(name, value) for name, value in _facts(notification)]},
        _rich(_run(teams_text(ids, _LABEL_LIMIT), isSubtle=True, size="Small")),
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if url := portal_link(notification.get("troubleshootingUrl")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Troubleshoot in Entra", "url": url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Incoming-webhook message: `text` (notifications, fallback) and Block Kit `blocks`, all
    plain_text; `mrkdwn: false` and no unfurling, so nothing in `text` formats or previews."""
    label = _label(notification)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(slack_text(label, 150))},
        {
            "type": "section",
            "text": _plain(
                f"{slack_text(notification['headline'], _HEADLINE_LIMIT)}\n"
                f"{slack_text(notification['summary'], _SUMMARY_LIMIT)}"
            ),
        },
    ]
    fields = [
        _plain(f"{slack_text(name, _NAME_LIMIT)}\n{slack_text(value, _TEXT_LIMIT)}")
        for name, value in _facts(notification)[:10]  # Slack takes at most 10 fields
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if url := portal_link(notification.get("troubleshootingUrl")):
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": _plain("Troubleshoot in Entra"), "url": url}],
            }
        )
    context = (
        f"{notification['severity']} | alert {notification['alertId']} | notification {notification['notificationId']}"
    )
    blocks.append({"type": "context", "elements": [_plain(slack_text(context, _LABEL_LIMIT))]})
    return {
        "text": slack_text(f"{label}: {notification['headline']}", 3000),
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": blocks,
    }


def render(target_kind: TargetKind, notification: Notification) -> bytes:
    """The request body for a target: the same bytes on every attempt."""
    payload = {"teams": teams_payload, "slack": slack_payload}.get(target_kind, generic_payload)(notification)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
