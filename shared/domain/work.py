"""A poll fanned out through the work queue: its items, and one record made of their parts (pure).

A poll that must read more service principals than fit one timer run (`WORK_INLINE_MAX_PRINCIPALS`)
is dispatched: its principals are cut into work items of at most `WORK_ITEM_PRINCIPALS`, each
a queue message, and its record is stored `dispatched`. Each item, wherever the platform runs
it, stores its jobs and its part of the record; the last part to arrive completes the record
(`complete_record`). An item handled twice writes the same part under the same key.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NotRequired, TypedDict

from shared.domain.model import ServicePrincipal
from shared.domain.poll_record import GraphCounts, PollSummary

ITEM_VERSION = 1
# Queue messages hold 64 KiB; display names can be long, so items are cut by size as well.
_ITEM_BYTES = 48_000
_ERRORS_KEPT = 200
_NOT_READ_KEPT = 2_000

DISPATCHED = "dispatched"
_GRAPH_COUNTS = ("requests", "throttled", "retries", "throttledPastDeadline")


class WorkItemPrincipal(ServicePrincipal):
    jobCount: NotRequired[int | None]  # a discovery's: what it knew before (None: never read)


class WorkItem(TypedDict):
    """One queue message: read the jobs of these service principals, as part of poll `pollId`."""

    v: int
    tenantId: str
    pollId: str
    pollStartedAt: str
    discovery: bool
    item: int  # 0-based
    items: int
    principals: list[WorkItemPrincipal]
    mustRead: list[str]  # principals known to have jobs (the rest are a sweep's)


class TenantPoll(TypedDict):
    """One queue message of a deployment that watches several tenants: poll this tenant, as
    the timer does, under a poll id given when it was sent (so a retry stores the same record)."""

    v: int
    kind: str  # TENANT_POLL
    tenantId: str
    pollId: str
    pollStartedAt: str
    trigger: str
    discover: bool
    pastDue: bool


TENANT_POLL = "tenantPoll"


def is_tenant_poll(content: str | bytes) -> TenantPoll | None:
    """The message as a tenant poll; None when it is not one (a work item, or not JSON)."""
    try:
        message = json.loads(content)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("kind") != TENANT_POLL:
        return None
    for key, kind in (("tenantId", str), ("pollId", str), ("pollStartedAt", str), ("trigger", str)):
        if not isinstance(message.get(key), kind):
            raise WorkItemError(f"a tenant poll whose {key} is missing or not a {kind.__name__}")
    if message.get("v") != ITEM_VERSION:
        raise WorkItemError(f"not a version {ITEM_VERSION} tenant poll")
    message.setdefault("discover", False)
    message.setdefault("pastDue", False)
    return message  # type: ignore[return-value]


class WorkProgress(TypedDict):
    """A dispatched poll's `work` section."""

    queue: str
    items: int
    itemsDone: int
    itemsPoisoned: int
    itemsLost: int  # never reported (the poll was completed without them when they were too late)


class WorkItemError(ValueError):
    """A queue message that is not a work item this version can do."""


def cut_items(
    principals: Sequence[WorkItemPrincipal], must_read: set[str], size: int, *, base: dict[str, Any]
) -> list[WorkItem]:
    """The principals cut in order into items of at most `size`, each small enough for a message."""
    chunks: list[list[WorkItemPrincipal]] = []
    current: list[WorkItemPrincipal] = []
    current_bytes = 0
    for sp in principals:
        sp_bytes = len(json.dumps(sp)) + 60  # and its id again in mustRead, with some slack
        if current and (len(current) >= size or current_bytes + sp_bytes > _ITEM_BYTES):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(sp)
        current_bytes += sp_bytes
    if current:
        chunks.append(current)
    return [
        {
            "v": ITEM_VERSION,
            "tenantId": base["tenantId"],
            "pollId": base["pollId"],
            "pollStartedAt": base["pollStartedAt"],
            "discovery": base["discovery"],
            "item": index,
            "items": len(chunks),
            "principals": chunk,
            "mustRead": [sp["id"] for sp in chunk if sp["id"] in must_read],
        }
        for index, chunk in enumerate(chunks)
    ]


def parse_item(content: str | bytes) -> WorkItem:
    """A queue message as a work item, or WorkItemError saying why it is not one."""
    try:
        item = json.loads(content)
    except ValueError as error:
        raise WorkItemError(f"not JSON: {error}") from None
    if not isinstance(item, dict) or item.get("v") != ITEM_VERSION:
        raise WorkItemError(f"not a version {ITEM_VERSION} work item")
    for key, kind in (("tenantId", str), ("pollId", str), ("pollStartedAt", str), ("item", int), ("items", int)):
        if not isinstance(item.get(key), kind):
            raise WorkItemError(f"{key} missing or not a {kind.__name__}")
    principals = item.get("principals")
    if not isinstance(principals, list) or not all(
        isinstance(sp, dict) and isinstance(sp.get("id"), str) for sp in principals
    ):
        raise WorkItemError("principals must be a list of objects with an id")
    if not isinstance(item.get("mustRead"), list) or not 0 <= item["item"] < item["items"]:
        raise WorkItemError("mustRead missing, or item out of range")
    return item  # type: ignore[return-value]


def complete_record(dispatched: PollSummary, parts: Iterable[PollSummary], *, ended_at: str) -> PollSummary:
    """The record of a dispatched poll from its items' parts (each a record of its own
    principals): counts summed, lists joined, the status the worst of them."""
    # Read as plain dicts: parts were stored by versions that may lack keys added since.
    head: dict[str, Any] = dict(dispatched)
    tail: list[dict[str, Any]] = [dict(part) for part in parts]
    every = [head, *tail]
    record = dict(head)
    summed = (
        "servicePrincipalsWithJobs",
        "jobsRead",
        "jobsChanged",
        "jobsSkipped",
        "jobsRemoved",
        "runsStored",
        "events",
        "jobsNotObserved",
        "jobReads",
        "errorCount",
        "servicePrincipalsNotReadCount",
    )
    for key in summed:
        record[key] = sum(int(one.get(key) or 0) for one in every)
    for key in ("errorsByKind", "errorsByServicePrincipal", "forbiddenReads"):
        total: Counter[str] = Counter()
        for one in every:
            total.update(one.get(key) or {})
        record[key] = dict(total)
    record["errors"] = [error for one in every for error in one.get("errors") or []][:_ERRORS_KEPT]
    record["unfinishedServicePrincipals"] = [
        sp_id for one in every for sp_id in one.get("unfinishedServicePrincipals") or []
    ]
    not_read = sorted({sp_id for one in every for sp_id in one.get("servicePrincipalsNotRead") or []})
    record["servicePrincipalsNotRead"] = not_read if record["servicePrincipalsNotReadCount"] <= _NOT_READ_KEPT else None
    record["graph"] = add_graph_counts([one.get("graph") for one in every])
    statuses = {one.get("status") for one in tail}
    if "failed" in statuses and not statuses - {"failed"}:
        status = "failed"  # nothing of it worked
    elif record["errorCount"] or record["unfinishedServicePrincipals"] or statuses - {"succeeded"}:
        status = "partial"
    else:
        status = "succeeded"
    record["status"] = status
    record["endedAt"] = ended_at
    completed: PollSummary = record  # type: ignore[assignment]
    return completed


def add_graph_counts(sections: Sequence[Any]) -> GraphCounts:
    """Graph request counts summed (records' or parts' `graph` sections; others skipped)."""
    codes: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for section in sections:
        if isinstance(section, dict):
            totals.update({key: int(section.get(key) or 0) for key in _GRAPH_COUNTS})
            codes.update(section.get("statusCounts") or {})
    return {
        "requests": totals["requests"],
        "throttled": totals["throttled"],
        "retries": totals["retries"],
        "statusCounts": dict(codes),
        "throttledPastDeadline": totals["throttledPastDeadline"],
    }
