"""The provisioning-log collector's cursor (pure): what a read cut short keeps, what it carries,
and that a log read over many polls is counted exactly as if read at once, with few pages
read twice. Graph is simulated by `Log` (events sorted by time, pages of `page_size`)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import log_cursor
from shared.domain.log_cursor import LogCursor, after_read, merge_group_hours
from shared.domain.provisioning_logs import ErrorGroupHour, LogEvent, count_hours, group_id

T0 = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
CODES = ("EntryConflict", "SystemForCrossDomainIdentityManagementBadResponse", "")


def make_event(n: int, at: datetime, *, job: str = "job-a", code: str = "EntryConflict") -> LogEvent:
    return LogEvent(
        event_id=f"e{n:07d}",
        at=at,
        job_id=job,
        service_principal_id="sp-1",
        status="failure" if code else "skipped",
        action="create",
        error_code=code,
        reason=f"reason of {n}",
        error_category="nonServiceFailure",
        sample={
            "eventId": f"e{n:07d}",
            "activityDateTime": at.isoformat(),
            "sourceId": f"user-{n}",
            "sourceDisplayName": None,
            "targetId": None,
            "targetDisplayName": None,
            "identityType": "User",
        },
    )


def random_log(count: int, hours: int, seed: int) -> list[LogEvent]:
    """`count` events over `hours` from T0, at whole seconds (many share one), two jobs."""
    rng = random.Random(seed)
    events = [
        make_event(
            n,
            T0 + timedelta(seconds=rng.randrange(hours * 3600)),
            job=rng.choice(("job-a", "job-b")),
            code=rng.choice(CODES),
        )
        for n in range(count)
    ]
    return sorted(events, key=lambda e: (e.at, e.event_id))


def keyed(rows: Sequence[ErrorGroupHour]) -> dict[tuple[str, str, str], ErrorGroupHour]:
    return {(r["jobId"], r["hour"], group_id(r["status"], r["action"], r["errorCode"])): r for r in rows}


@dataclass
class Log:
    """Graph's `/auditLogs/provisioning` over `events`: `gt`/`lt` on the time, pages of
    `page_size`, oldest first unless it ignores `$orderby` (then newest first, its default)."""

    events: list[LogEvent]
    page_size: int
    ordered: bool = True

    def read(self, start: datetime, end: datetime, max_pages: int) -> tuple[list[LogEvent], bool, int]:
        since = start.replace(microsecond=0) - SECOND  # the collector's filter: gt a second before
        matching = [e for e in self.events if since < e.at < end]
        if not self.ordered:
            matching = matching[::-1]
        needed = max(1, math.ceil(len(matching) / self.page_size))
        pages = min(max_pages, needed)
        return matching[: pages * self.page_size], pages == needed, pages


@dataclass
class Run:
    stored: dict[tuple[str, str, str], ErrorGroupHour]
    pages: int
    polls: int
    state: LogCursor
    unordered: int = 0
    stalls: int = 0


def collect(
    graph: Log, *, pages: int, until: datetime, samples: int = 2, state: LogCursor | None = None, polls: int = 200
) -> Run:
    """Polls as shared/provisioning_logs.py does, until the log is read up to `until`."""
    run = Run({}, 0, 0, state or LogCursor(T0))
    while run.state.read_from < until:
        assert run.polls < polls, f"not caught up after {polls} polls: {run.state}"
        run.polls += 1
        budget = run.state.budget(pages)
        left = budget
        while run.state.read_from < until and left > 0:
            end = min(run.state.cursor + timedelta(hours=run.state.window_hours), until)
            served, complete, read = graph.read(run.state.read_from, end, left)
            outcome = after_read(
                run.state,
                served,
                end=end,
                complete=complete,
                pages=read,
                budget=budget,
                samples=samples,
            )
            left -= read
            run.pages += read
            run.unordered += outcome.unordered
            run.stalls += outcome.stalled
            run.stored.update(keyed(outcome.rows))  # rows replace what was stored
            run.state = outcome.state
            if not complete:
                break
    return run


def test_a_backlog_is_counted_exactly_once_with_about_one_page_more_than_needed_per_poll() -> None:
    events = random_log(6_000, hours=24, seed=7)
    run = collect(Log(events, page_size=250), pages=5, until=T0 + timedelta(hours=24))
    assert run.stored == keyed(count_hours(events, 2))
    assert run.polls >= 5 and run.unordered == 0 and run.stalls == 0
    minimum = math.ceil(len(events) / 250)
    assert minimum <= run.pages <= minimum + run.polls


def test_a_read_cut_short_stores_the_hours_before_its_last_events_hour_and_carries_that_hour() -> None:
    events = [make_event(n, T0 + timedelta(minutes=20 * n)) for n in range(8)]  # 00:00 .. 02:20
    state = LogCursor(T0, window_hours=6)
    outcome = after_read(state, events[:5], end=T0 + timedelta(hours=6), complete=False, pages=1, budget=1, samples=5)
    assert {row["hour"] for row in outcome.rows} == {"2026-11-29T00"}  # 01:00 is not whole yet
    assert outcome.state.cursor == T0 + timedelta(hours=1)
    assert outcome.state.resume == events[4].at  # 01:20, read again: more of its second may follow
    assert [row["count"] for row in outcome.state.carried] == [1]  # 01:00
    assert (outcome.counted, outcome.discarded) == (4, 1)
    assert outcome.state.read_from == events[4].at and not outcome.unordered


def test_events_at_the_last_instant_read_are_read_again_not_counted_twice() -> None:
    at = T0 + timedelta(minutes=30)
    events = [make_event(0, T0 + timedelta(minutes=10))] + [make_event(n, at) for n in range(1, 7)]
    graph = Log(events, page_size=3)  # the first page ends inside the 00:30 second
    run = collect(graph, pages=1, until=T0 + timedelta(hours=1))
    assert run.stored == keyed(count_hours(events, 2))
    assert next(iter(run.stored.values()))["count"] == 7


def test_one_hour_of_five_page_budgets_is_finished_at_the_page_budget_with_no_page_read_twice() -> None:
    # As 50,000 events in an hour at 20 pages of 500 (scaled down: counting is the slow part).
    rng = random.Random(3)
    busy = T0 + timedelta(hours=5)
    events = sorted(
        [make_event(n, busy + timedelta(seconds=rng.randrange(3600))) for n in range(5_000)]
        + [make_event(5_000 + n, T0 + timedelta(minutes=37 * n)) for n in range(8)],
        key=lambda e: (e.at, e.event_id),
    )
    run = collect(Log(events, page_size=50), pages=20, until=T0 + timedelta(hours=8))
    assert run.stored == keyed(count_hours(events, 2))
    assert run.stalls == 0 and run.state.page_budget is None
    assert 5 <= run.polls <= 7  # 101 pages at 20 a poll: no poll needs more pages than the setting
    assert run.pages <= math.ceil(len(events) / 50) + run.polls


def test_a_cut_answer_out_of_time_order_stores_nothing_and_reads_the_window_again_smaller() -> None:
    events = [make_event(n, T0 + timedelta(minutes=10 * n)) for n in range(30)]  # 5 h
    state = LogCursor(T0, window_hours=6)
    newest_first = events[::-1][:10]
    outcome = after_read(
        state,
        newest_first,
        end=T0 + timedelta(hours=6),
        complete=False,
        pages=2,
        budget=2,
        samples=0,
    )
    assert outcome.unordered and outcome.rows == [] and outcome.counted == 0 and outcome.discarded == 10
    assert outcome.state == LogCursor(T0, window_hours=3)  # nothing moved; a smaller window


def test_graph_ignoring_the_order_still_counts_everything_once_smaller_windows_then_more_pages() -> None:
    events = random_log(3_000, hours=6, seed=11)  # ~500 an hour: more than 2 pages of 100
    run = collect(Log(events, page_size=100, ordered=False), pages=2, until=T0 + timedelta(hours=6))
    assert run.stored == keyed(count_hours(events, 2))
    assert run.unordered > 0 and run.stalls > 0  # one-hour windows, then a raised page budget
    assert run.state.page_budget is None  # back to the setting once past the hour


def test_a_second_holding_more_events_than_the_budget_raises_the_next_polls_budget() -> None:
    at = T0 + timedelta(minutes=5)
    events = [make_event(n, at) for n in range(250)]
    state = LogCursor(T0, window_hours=1, resume=at)  # an earlier read got as far as that second
    outcome = after_read(
        state,
        events[:100],
        end=T0 + timedelta(hours=1),
        complete=False,
        pages=1,
        budget=1,
        samples=0,
    )
    assert outcome.stalled and outcome.rows == [] and outcome.state.page_budget == 2
    run = collect(Log(events, page_size=100), pages=1, until=T0 + timedelta(hours=1))
    assert (
        run.stored == keyed(count_hours(events, 2)) and run.stalls == 2
    )  # to the second, stuck at 1 and 2 pages, then 4


def test_a_raised_budget_is_bounded_and_a_deadline_does_not_raise_it() -> None:
    assert LogCursor(T0, page_budget=10_000).budget(20) == 20 * log_cursor.MAX_BUDGET_FACTOR
    assert LogCursor(T0).budget(20) == 20
    at = T0 + timedelta(minutes=5)
    stuck = LogCursor(T0, resume=at)
    outcome = after_read(  # one page of five, stopped by the deadline, inside one second
        stuck,
        [make_event(n, at) for n in range(3)],
        end=T0 + timedelta(hours=1),
        complete=False,
        pages=1,
        budget=5,
        samples=0,
    )
    assert not outcome.stalled and outcome.state == stuck


def test_a_part_read_hour_with_too_many_groups_to_carry_is_read_again_from_its_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(log_cursor, "CARRY_LIMIT_CHARS", 2_000)
    rng = random.Random(5)
    events = sorted(  # every event its own group: the carried rows grow with the events
        [make_event(n, T0 + timedelta(seconds=rng.randrange(4 * 3600)), job=f"job-{n}") for n in range(60)],
        key=lambda e: (e.at, e.event_id),
    )
    run = collect(Log(events, page_size=5), pages=2, until=T0 + timedelta(hours=4))
    assert run.stored == keyed(count_hours(events, 2))
    assert run.state.resume is None and run.state.carried == []


def test_the_window_after_a_cut_is_what_the_budget_covers_at_the_rate_just_read() -> None:
    events = [make_event(n, T0 + timedelta(minutes=3 * n)) for n in range(100)]  # 20 an hour
    outcome = after_read(
        LogCursor(T0, window_hours=24),
        events[:40],  # 2 pages of 20: ~2 h
        end=T0 + timedelta(hours=24),
        complete=False,
        pages=2,
        budget=10,
        samples=0,
    )
    assert outcome.state.window_hours == math.ceil(1.5 * (events[39].at - T0) / timedelta(hours=1) / 2 * 10)
    quiet = after_read(
        LogCursor(T0, window_hours=3),
        [],
        end=T0 + timedelta(hours=3),
        complete=True,
        pages=1,
        budget=10,
        samples=0,
    )
    assert quiet.state == LogCursor(T0 + timedelta(hours=3), window_hours=6)  # quiet: larger steps


def test_merged_stretches_are_the_rows_of_their_events_read_at_once() -> None:
    events = random_log(400, hours=1, seed=2)
    for cut in (1, 57, 200, 399):
        if events[cut - 1].at == events[cut].at:
            continue  # stretches split inside one second are not what the collector merges
        merged = merge_group_hours(count_hours(events[:cut], 3), count_hours(events[cut:], 3), 3)
        assert keyed(merged) == keyed(count_hours(events, 3))


def test_the_state_document_round_trips_and_an_older_one_still_reads() -> None:
    carried = count_hours([make_event(1, T0 + timedelta(minutes=5))], 1)
    state = LogCursor(T0, window_hours=4, resume=T0 + timedelta(minutes=9), carried=carried, page_budget=40)
    assert LogCursor.from_document(state.to_document(), first=T0 - timedelta(days=1)) == state
    old = {"cursor": "2026-11-29T03:00:00Z", "windowHours": 6}  # before resumeAt was carried
    assert LogCursor.from_document(old, first=T0) == LogCursor(T0 + timedelta(hours=3), window_hours=6)
    assert LogCursor.from_document(None, first=T0) == LogCursor(T0)
    stray = {**state.to_document(), "resumeAt": "2026-11-29T02:00:00Z"}  # not in the cursor's hour
    assert LogCursor.from_document(stray, first=T0) == LogCursor(T0, window_hours=4, page_budget=40)
