"""Provisioning log events as error groups per job and hour (pure). Events follow the failure
example of https://learn.microsoft.com/graph/api/provisioningobjectsummary-list (v1.0)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.domain.provisioning_logs import LogEventError, count_hours, merge_hours, normalize_log_event
from tests.support.paths import ROOT

EXAMPLES = ROOT / "tests" / "fixtures" / "graph" / "provisioning"

FAILURE: dict[str, Any] = {
    "id": "gc532ff9-r265-ec76-861e-42e2970a8218",
    "activityDateTime": "2019-06-24T20:53:08Z",
    "tenantId": "7928d5b5-7442-4a97-ne2d-66f9j9972ecn",
    "jobId": "ContosoOutDelta.7928d5b574424a97ne2d66f9j9972ecn",
    "cycleId": "44576n58-v14b-70fj-8404-3d22tt46ed93",
    "changeId": "eaad2f8b-e6e3-409b-83bd-e4e2e57177d5",
    "provisioningAction": "create",
    "durationInMilliseconds": 2785,
    "servicePrincipal": {"id": "chc46a42-966b-47d7-9774-576b1c8bd0b8", "displayName": "Contoso"},
    "sourceIdentity": {
        "id": "5e6c9rae-ab4d-5239-8ad0-174391d110eb",
        "displayName": "Self-service Pilot",
        "identityType": "Group",
        "details": {},
    },
    "targetIdentity": {"id": "", "displayName": "", "identityType": "Group", "details": {}},
    "provisioningStatusInfo": {
        "status": "failure",
        "errorInformation": {
            "errorCode": "ContosoEntryConflict",
            "reason": "Message: Contoso returned an error response with the HTTP status code 409.",
            "additionalDetails": None,
            "errorCategory": "nonServiceFailure",
            "recommendedAction": None,
        },
    },
}


def event(event_id: str, at: str, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(FAILURE)
    raw.update(id=event_id, activityDateTime=at, **changes)
    return raw


def test_the_documented_failure_event_is_read_with_its_error_and_object() -> None:
    read = normalize_log_event(FAILURE)
    assert (read.status, read.action, read.error_code, read.error_category) == (
        "failure",
        "create",
        "ContosoEntryConflict",
        "nonServiceFailure",
    )
    assert read.service_principal_id == "chc46a42-966b-47d7-9774-576b1c8bd0b8"
    assert read.sample["sourceDisplayName"] == "Self-service Pilot" and read.sample["targetId"] is None
    assert read.sample["identityType"] == "Group"


@pytest.mark.parametrize(
    ("example", "source_system", "target_system"),
    [
        # Example 2: an outbound app (ContosoOutDelta) provisions a group from Entra ID to Contoso.
        ("provisioning_list_failure", "Azure Active Directory", "Contoso"),
        # Example 1: an inbound event, from the Contoso app into Entra ID.
        ("provisioning_list_success", "Contoso", "Azure Active Directory"),
    ],
)
def test_each_example_keeps_the_systems_it_was_provisioned_from_and_to(
    example: str, source_system: str, target_system: str
) -> None:
    raw = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))["value"][0]
    sample = normalize_log_event(raw).sample
    assert (sample["sourceSystem"], sample["targetSystem"]) == (source_system, target_system)
    assert sample["sourceId"] == raw["sourceIdentity"]["id"]


def test_an_event_without_its_systems_keeps_none() -> None:
    sample = normalize_log_event(FAILURE).sample  # the trimmed copy has no sourceSystem / targetSystem
    assert (sample["sourceSystem"], sample["targetSystem"]) == (None, None)
    odd = normalize_log_event({**FAILURE, "sourceSystem": "Entra", "targetSystem": {"displayName": ""}})
    assert (odd.sample["sourceSystem"], odd.sample["targetSystem"]) == (None, None)


@pytest.mark.parametrize("missing", ["id", "jobId", "activityDateTime"])
def test_an_event_that_cannot_be_placed_says_so(missing: str) -> None:
    with pytest.raises(LogEventError):
        normalize_log_event({k: v for k, v in FAILURE.items() if k != missing})
    with pytest.raises(LogEventError):
        normalize_log_event(["not", "an", "object"])


def test_betas_action_and_a_missing_status_are_kept_as_they_come() -> None:
    raw = {k: v for k, v in FAILURE.items() if k not in ("provisioningAction", "provisioningStatusInfo")}
    read = normalize_log_event({**raw, "action": "Update"})
    assert (read.action, read.status, read.error_code) == ("Update", "unknown", "")


def test_events_are_counted_per_job_hour_and_group_once_each() -> None:
    events = [
        normalize_log_event(e)
        for e in [
            event("a", "2026-11-30T09:10:00Z"),
            event("b", "2026-11-30T09:50:00Z"),
            event("b", "2026-11-30T09:50:00Z"),  # read twice: counted once
            event("c", "2026-11-30T10:05:00Z"),
            event("d", "2026-11-30T09:20:00Z", provisioningAction="update"),
        ]
    ]
    rows = count_hours(events, samples=1)
    by_key = {(r["hour"], r["action"]): r for r in rows}
    assert set(by_key) == {("2026-11-30T09", "create"), ("2026-11-30T10", "create"), ("2026-11-30T09", "update")}
    nine = by_key[("2026-11-30T09", "create")]
    assert (nine["count"], nine["firstSeen"], nine["lastSeen"]) == (2, "2026-11-30T09:10:00Z", "2026-11-30T09:50:00Z")
    assert [s["eventId"] for s in nine["samples"]] == ["a"]
    assert count_hours(events, samples=0)[0]["samples"] == []
    # The same events in another order count the same.
    assert sorted(map(str, count_hours(list(reversed(events)), 1))) == sorted(map(str, rows))


def test_hours_merge_into_groups_with_a_trend_per_day_most_first() -> None:
    events = [normalize_log_event(event(f"e{i}", f"2026-11-{29 + i // 3}T0{i % 3}:00:00Z")) for i in range(5)]
    events.append(normalize_log_event(event("x", "2026-11-30T05:00:00Z", provisioningAction="delete")))
    groups = merge_hours(count_hours(events, samples=2), samples=3)
    assert [(g["action"], g["count"]) for g in groups] == [("create", 5), ("delete", 1)]
    assert groups[0]["days"] == {"2026-11-29": 3, "2026-11-30": 2}
    assert (groups[0]["firstSeen"], groups[0]["lastSeen"]) == ("2026-11-29T00:00:00Z", "2026-11-30T01:00:00Z")
    assert len(groups[0]["samples"]) == 3
