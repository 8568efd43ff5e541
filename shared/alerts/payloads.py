"""What each target receives: the same notification as a Teams card, a Slack message, or
the generic JSON (docs/alerts.md shows each). Rendered at send time from the outbox document,
the same bytes on every attempt."""

from __future__ import annotations

import json
from typing import Any

from shared.alerts.records import Notification, TargetKind, job_label

_KIND_LABELS = {"open": "Alert", "update": "Update", "remind": "Reminder", "resolve": "Resolved"}
_TEAMS_COLORS = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}
_TEXT_LIMIT = 1_000


def _label(notification: Notification) -> str:
    return f"{_KIND_LABELS.get(notification['kind'], 'Alert')}: {notification['title']} - {job_label(notification)}"


def _facts(notification: Notification) -> list[tuple[str, str]]:
    facts = [("job", job_label(notification)), *notification["facts"].items()]
    facts.append(("opened", notification["openedAt"]))
    if resolved := notification.get("resolvedAt"):
        facts.append(("resolved", resolved))
    return [(name, str(value)[:_TEXT_LIMIT]) for name, value in facts]


def _https(url: object) -> str | None:
    return url if isinstance(url, str) and url.startswith("https://") else None


def generic_payload(notification: Notification) -> dict[str, Any]:
    """The generic webhook's JSON (docs/alerts.md): the notification as data."""
    return {
        "type": "entra-sync-monitor.alert",
        "version": 1,
        "notificationId": notification["notificationId"],
        "kind": notification["kind"],
        "at": notification["at"],
        "alert": {
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
        },
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


def teams_payload(notification: Notification) -> dict[str, Any]:
    """An Adaptive Card 1.4 in the message envelope Teams incoming webhooks and the Workflows
    "post to a channel when a webhook request is received" template accept."""
    color = "Good" if notification["kind"] == "resolve" else _TEAMS_COLORS.get(notification["severity"], "Default")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _label(notification), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": notification["headline"], "color": color, "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": notification["summary"], "wrap": True, "spacing": "Small"},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(notification)]},
        {
            "type": "TextBlock",
            "text": f"{notification['severity']} - alert {notification['alertId']} - "
            f"notification {notification['notificationId']}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        },
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if url := _https(notification.get("troubleshootingUrl")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Troubleshoot in Entra", "url": url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Incoming-webhook message: `text` (notifications, fallback) and Block Kit `blocks`."""
    label = _label(notification)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": label[:150], "emoji": False}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{_slack_escape(notification['headline'])}*\n{_slack_escape(notification['summary'])}"[:3000],
            },
        },
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{_slack_escape(name)}*\n{_slack_escape(value)}"[:2000]}
        for name, value in _facts(notification)[:10]  # Slack takes at most 10 fields
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if url := _https(notification.get("troubleshootingUrl")):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Troubleshoot in Entra"}, "url": url}
                ],
            }
        )
    context = (
        f"{notification['severity']} | alert {notification['alertId']} | notification {notification['notificationId']}"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{label}: {notification['headline']}"[:3000], "blocks": blocks}


def render(target_kind: TargetKind, notification: Notification) -> bytes:
    """The request body for a target: the same bytes on every attempt."""
    payload = {"teams": teams_payload, "slack": slack_payload}.get(target_kind, generic_payload)(notification)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
