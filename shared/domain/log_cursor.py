"""Where the provisioning-log collector is in the log, and what one read makes of it (pure).
The state is kept in the ProvisioningErrors table (`!cursor` row); shared/provisioning_logs.py
does the reads and the writes.

The log is read oldest first (`$orderby=activityDateTime asc`, which Graph documents for this
property) from `cursor`: every hour before it is counted and stored. A read that ends its
window is counted whole. A read cut short (by the page budget or the deadline) is in time
order, so every event before the last one read has been read: the hours before the last
event's hour are whole and stored, the cursor moves to that hour, and what was read of it so
far waits in the state (`carried` counts up to `resumeAt`, the last event's instant, whose own
events are read again as more of that second may follow). The next poll reads on from
`resumeAt`: no page is read twice, and an hour of any size is finished over as many polls as
it needs.

If Graph ever answers a cut read out of order (it ignored `$orderby`), what was read says
nothing about which hours are whole: nothing of the window is counted, and it is read again,
smaller (as before ordering was asked for). A window already one hour long cannot shrink, so
the next poll gets twice the pages instead; so does a read that could not get past the
instant where it began (a single second holding more events than the budget).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise

from shared.domain.provisioning_logs import ErrorGroupHour, LogEvent, count_hours, group_id, hour_of
from shared.domain.timestamps import isoformat_utc, parse_timestamp

HOUR = timedelta(hours=1)
DEFAULT_WINDOW_HOURS = 6
MAX_WINDOW_HOURS = 24
MAX_BUDGET_FACTOR = 8  # a raised page budget stops at 8x PROVISIONING_LOG_PAGES (memory)
# The carried counts live in the cursor's entity (1 MiB, strings count twice): a part-read
# hour with more error groups than this is read again from its start rather than carried.
CARRY_LIMIT_CHARS = 300_000
# After a cut, the next window is the span the whole budget would cover at the rate just read,
# and half again: in time order a cut costs nothing, a window that ends early costs a query.
_WINDOW_MARGIN = 1.5


def floor_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class LogCursor:
    cursor: datetime  # on the hour: every hour before it is stored
    window_hours: int = DEFAULT_WINDOW_HOURS  # how far past `cursor` the next read asks
    resume: datetime | None = None  # inside the cursor's hour: its events before this are `carried`
    carried: list[ErrorGroupHour] = field(default_factory=list)
    page_budget: int | None = None  # pages for the next poll, when raised above the setting

    @property
    def read_from(self) -> datetime:
        return self.resume or self.cursor

    def budget(self, pages: int) -> int:
        """The next poll's page budget: the setting's, or the raised one."""
        return max(pages, min(self.page_budget or 0, pages * MAX_BUDGET_FACTOR))

    @classmethod
    def from_document(cls, document: Mapping[str, object] | None, first: datetime) -> LogCursor:
        """The stored state (`first` when there is none). A part-read hour that does not fit
        the cursor is dropped: that hour is then read again from its start, which is safe."""
        document = document or {}
        cursor = parse_timestamp(document.get("cursor"))
        cursor = floor_hour(cursor) if cursor else first
        window = document.get("windowHours")
        window = window if isinstance(window, int) and 1 <= window <= MAX_WINDOW_HOURS else DEFAULT_WINDOW_HOURS
        budget = document.get("pageBudget")
        resume = parse_timestamp(document.get("resumeAt"))
        carried = document.get("carried")
        hour = hour_of(cursor)
        if (
            resume is None
            or not cursor < resume < cursor + HOUR
            or not isinstance(carried, list)
            or not all(isinstance(row, dict) and row.get("hour") == hour for row in carried)
        ):
            resume, carried = None, []
        return cls(
            cursor=cursor,
            window_hours=window,
            resume=resume,
            carried=list(carried),
            page_budget=budget if isinstance(budget, int) and budget > 0 else None,
        )

    def to_document(self) -> dict[str, object]:
        document: dict[str, object] = {"cursor": isoformat_utc(self.cursor), "windowHours": self.window_hours}
        if self.resume is not None:
            document["resumeAt"] = isoformat_utc(self.resume)
            document["carried"] = list(self.carried)
        if self.page_budget is not None:
            document["pageBudget"] = self.page_budget
        return document


@dataclass(frozen=True)
class ReadOutcome:
    """What one read did: the next state, the whole hours to store, and the events counted
    (stored or carried) or read for nothing (they will be read again)."""

    state: LogCursor
    rows: list[ErrorGroupHour]
    counted: int
    discarded: int
    unordered: bool = False
    stalled: bool = False  # cut by the page budget without getting past where it began


def in_time_order(events: Sequence[LogEvent]) -> bool:
    return all(earlier.at <= later.at for earlier, later in pairwise(events))


def merge_group_hours(
    earlier: Sequence[ErrorGroupHour], later: Sequence[ErrorGroupHour], samples: int
) -> list[ErrorGroupHour]:
    """Rows counted from two stretches of time, `earlier` wholly before `later`, as the rows
    `count_hours` would make of both stretches' events at once."""
    merged: dict[tuple[str, str, str], ErrorGroupHour] = {}
    for row in [*earlier, *later]:
        key = (row["jobId"], row["hour"], group_id(row["status"], row["action"], row["errorCode"]))
        group = merged.get(key)
        if group is None:
            merged[key] = {**row, "samples": list(row["samples"])[:samples]}
            continue
        group["count"] += row["count"]
        group["lastSeen"] = row["lastSeen"]
        group["reason"] = row["reason"] or group["reason"]
        group["servicePrincipalId"] = group["servicePrincipalId"] or row["servicePrincipalId"]
        group["samples"] = [*group["samples"], *row["samples"]][:samples]
    return list(merged.values())


def after_read(
    state: LogCursor,
    served: Sequence[LogEvent],
    *,
    end: datetime,
    complete: bool,
    pages: int,
    budget: int,
    samples: int,
) -> ReadOutcome:
    """The state after reading [state.read_from, end): `served` is every event the read got,
    in the order Graph served them; `complete` says it reached the window's end; `pages` is
    what it read of this poll's `budget`. A read that is not complete and read the whole
    budget was stopped by it (not by the deadline, nor by the pages earlier reads took): if
    it cannot move, the next poll gets more pages."""
    start = state.read_from
    cut_by_pages = not complete and pages >= budget
    events = [event for event in served if start <= event.at < end]
    if complete:
        through = end
    elif not in_time_order(served):  # Graph ignored $orderby: read the window again, smaller
        if state.window_hours > 1:
            return ReadOutcome(replace(state, window_hours=state.window_hours // 2), [], 0, len(events), True)
        return ReadOutcome(_raised(state, budget, cut_by_pages), [], 0, len(events), True, cut_by_pages)
    else:
        through = max((event.at for event in events), default=start)  # the events at it may go on
        if through <= start:
            return ReadOutcome(_raised(state, budget, cut_by_pages), [], 0, len(events), False, cut_by_pages)
    counted = [event for event in events if event.at < through]
    rows = merge_group_hours(state.carried, count_hours(counted, samples), samples)
    hour = floor_hour(through)  # complete: the window's end, on the hour, so nothing is carried
    whole = [row for row in rows if row["hour"] < hour_of(hour)]
    carried = [row for row in rows if row["hour"] >= hour_of(hour)]
    resume: datetime | None = through if through > hour else None
    discarded = len(events) - len(counted)  # those at `through`, read again with what follows
    if carried and len(json.dumps(carried)) > CARRY_LIMIT_CHARS:
        # Too many groups to carry: the part-read hour is read again from its start, earlier
        # polls' share of it included.
        dropped = sum(1 for event in counted if event.at >= hour)
        earlier = sum(row["count"] for row in state.carried) if state.cursor == hour else 0
        counted, discarded = counted[: len(counted) - dropped], discarded + dropped + earlier
        carried, resume = [], None
    if complete:
        window = min(MAX_WINDOW_HOURS, state.window_hours * 2) if pages <= 1 else state.window_hours
    else:
        rate = (through - start) / HOUR / max(1, pages)  # hours per page, as just read
        window = max(1, min(MAX_WINDOW_HOURS, math.ceil(_WINDOW_MARGIN * rate * budget)))
    moved = LogCursor(cursor=hour, window_hours=window, resume=resume, carried=carried)
    if moved.read_from <= start:  # the hour it began in, too large to carry: stalled
        return ReadOutcome(_raised(moved, budget, cut_by_pages), whole, len(counted), discarded, False, cut_by_pages)
    return ReadOutcome(moved, whole, len(counted), discarded)


def _raised(state: LogCursor, budget: int, cut_by_pages: bool) -> LogCursor:
    """After a read that could not move: twice this poll's pages for the next, if pages were
    what stopped it (a deadline is not helped by more pages)."""
    return replace(state, page_budget=budget * 2) if cut_by_pages else state
