"""Discovery's sweep: every service principal's jobs read in turn, across as many runs as the
tenant needs. Pure: the state is kept in the ServicePrincipals table (`!discovery` row).

A discovery lists every service principal id (cheap: 999 per request), then reads jobs in
this order until the poll's deadline: the principals known to have jobs (every poll reads
those), principals that appeared since the last listing, then the sweep's own order, service
principal ids ascending from where the last run stopped. The cursor moves past every id
that got an answer, so a tenant of any size is swept in a bounded number of runs; when it
reaches the last id the sweep is complete and the next one starts again from the first.
What a partial sweep learned (each answered principal's job count) is kept.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
from typing import TypedDict


@dataclass(frozen=True)
class SweepState:
    cursor: str = ""  # the last id covered by the sweep under way ("": it starts at the first)
    started_at: str | None = None  # when the sweep under way began
    completed_at: str | None = None  # when the last full sweep ended (None: never)


class SweepProgress(TypedDict):
    """A discovery's progress (its poll record's `sweep` section)."""

    principalsListed: int
    principalsRead: int  # service principals whose jobs read got an answer in this run
    principalsLeft: int  # of the sweep under way, not yet covered
    sweepStartedAt: str | None
    lastFullSweepAt: str | None


def sweep_order(listed: Sequence[str], known: Container[str], first: Collection[str], cursor: str) -> list[str]:
    """What a discovery reads after `first` (the principals with jobs): principals not `known`
    (not listed before), then the sweep's ids after `cursor`. `listed` is sorted."""
    new = [sp_id for sp_id in listed if sp_id not in known and sp_id not in first]
    rest = [sp_id for sp_id in listed[bisect_right(listed, cursor) :] if sp_id in known and sp_id not in first]
    return new + rest


def advance(state: SweepState, listed: Sequence[str], covered: Container[str], now: str) -> SweepState:
    """The sweep after a run that covered (got an answer for) `covered`: the cursor moves
    over the covered ids that follow it, and stops at the first id not covered."""
    start = bisect_right(listed, state.cursor) if state.cursor else 0
    end = start
    while end < len(listed) and listed[end] in covered:
        end += 1
    if end == len(listed):
        return SweepState("", None, now)  # swept: the next sweep starts from the first id
    cursor = listed[end - 1] if end > start else state.cursor
    return SweepState(cursor, state.started_at or now, state.completed_at)


def left_in_sweep(state: SweepState, listed: Sequence[str]) -> int:
    """Ids of the sweep under way still to be covered (0 after a full sweep)."""
    if state.cursor == "" and state.started_at is None:
        return 0 if state.completed_at is not None else len(listed)
    return len(listed) - bisect_right(listed, state.cursor)
