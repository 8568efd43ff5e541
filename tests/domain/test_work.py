"""Work items and the record made of their parts (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.poll_record import PollRecord
from shared.domain.timestamps import parse_timestamp
from shared.domain.work import DISPATCHED, WorkItemError, WorkItemPrincipal, complete_record, cut_items, parse_item

BASE = {"tenantId": "t", "pollId": "p", "pollStartedAt": "2026-11-30T10:00:00Z", "discovery": False}
GRAPH = {"requests": 0, "throttled": 0, "retries": 0, "statusCounts": {}, "throttledPastDeadline": 0}


def principals(count: int, name: str = "app") -> list[WorkItemPrincipal]:
    return [{"id": f"sp-{i:05d}", "appId": None, "displayName": name} for i in range(count)]


def test_items_hold_at_most_the_size_and_every_principal_once_in_order() -> None:
    sps = principals(450)
    items = cut_items(sps, {"sp-00003", "sp-00449"}, 200, base=BASE)
    assert [len(item["principals"]) for item in items] == [200, 200, 50]
    assert [sp for item in items for sp in item["principals"]] == sps
    assert [(item["item"], item["items"]) for item in items] == [(0, 3), (1, 3), (2, 3)]
    assert items[0]["mustRead"] == ["sp-00003"] and items[2]["mustRead"] == ["sp-00449"]
    assert cut_items([], set(), 200, base=BASE) == []


def test_items_of_long_names_stay_within_a_queue_message() -> None:
    items = cut_items(principals(200, "x" * 256), set(), 200, base=BASE)
    assert len(items) > 1
    assert all(len(json.dumps(item).encode()) < 64 * 1024 for item in items)
    assert sum(len(item["principals"]) for item in items) == 200


def test_a_message_is_read_back_as_the_item_it_was() -> None:
    [item] = cut_items(principals(3), set(), 200, base=BASE)
    assert parse_item(json.dumps(item)) == item
    assert parse_item(json.dumps(item).encode()) == item


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"v": 2}, "version 1"),
        ({"pollId": 7}, "pollId"),
        ({"principals": "sp-1"}, "principals"),
        ({"principals": [{"displayName": "no id"}]}, "principals"),
        ({"mustRead": "sp-1"}, "mustRead"),
        ({"item": 3, "items": 3}, "out of range"),
    ],
)
def test_a_message_that_is_no_work_item_says_why(change: dict[str, Any], why: str) -> None:
    [item] = cut_items(principals(3), set(), 200, base=BASE)
    with pytest.raises(WorkItemError, match=why):
        parse_item(json.dumps({**item, **change}))
    with pytest.raises(WorkItemError, match="JSON"):
        parse_item("{not json")


def part(status: str = "succeeded", **counts: int) -> Any:
    record = PollRecord("p", "t", parse_timestamp("2026-11-30T10:01:00Z"), "workItem")  # type: ignore[arg-type]
    for name, value in counts.items():
        setattr(record, name, value)
    return record.to_dict(status=status, ended_at=parse_timestamp("2026-11-30T10:02:00Z"), graph=GRAPH)  # type: ignore[arg-type]


def test_the_record_of_a_dispatched_poll_sums_its_parts() -> None:
    dispatched = part(DISPATCHED, service_principals_scanned=600)
    first, second = part(jobs_read=3, runs_stored=5), part(jobs_read=4, jobs_changed=1)
    second["graph"] = {**GRAPH, "requests": 7, "statusCounts": {"200": 7}}
    record = complete_record(dispatched, [first, second], ended_at="2026-11-30T10:05:00Z")
    assert (record["status"], record["endedAt"]) == ("succeeded", "2026-11-30T10:05:00Z")
    assert (record["jobsRead"], record["runsStored"], record["jobsChanged"]) == (7, 5, 1)
    assert record["servicePrincipalsScanned"] == 600  # the dispatcher's count, not summed
    assert record["graph"]["requests"] == 7 and record["graph"]["statusCounts"] == {"200": 7}


def test_a_part_with_errors_makes_the_poll_partial_and_only_failures_make_it_failed() -> None:
    failed = PollRecord("p", "t", parse_timestamp("2026-11-30T10:01:00Z"), "workItem")  # type: ignore[arg-type]
    failed.error("workItemPoisoned", "failed on every try", item=1)
    failed.not_read = {"sp-1": "poisoned"}
    poisoned = failed.to_dict(status="failed", ended_at=parse_timestamp("2026-11-30T10:02:00Z"), graph=GRAPH)  # type: ignore[arg-type]
    record = complete_record(part(DISPATCHED), [part(), poisoned], ended_at="2026-11-30T10:05:00Z")
    assert record["status"] == "partial"
    assert record["errorsByKind"] == {"workItemPoisoned": 1} and record["errorCount"] == 1
    assert record["servicePrincipalsNotRead"] == ["sp-1"] and record["servicePrincipalsNotReadCount"] == 1
    assert complete_record(part(DISPATCHED), [poisoned], ended_at="x")["status"] == "failed"
