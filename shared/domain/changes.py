"""What a poll has to write: which jobs changed, their new and moved runs with the figures
derived from the run before, their transitions, and which jobs are gone. Pure: storage
writes a `JobChanges` as it is (`Store.save_job_changes`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared.domain.model import Event, Execution, Job
from shared.domain.normalize import distinct_runs, run_began, run_id
from shared.domain.transitions import job_removed, job_transitions


@dataclass(frozen=True)
class StoredJob:
    """A job's current state as stored, with the hash the next poll compares against."""

    content_hash: str
    document: Job


def content_hash(document: dict[str, Any], ignore: Iterable[str] = ()) -> str:
    skipped = set(ignore)
    data = {k: v for k, v in document.items() if k not in skipped}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def job_content_hash(job: Job) -> str:
    # observedAt moves every poll and healthReasons carry ages ("for 5 h"): the job has
    # changed only if something else did. The API recomputes reasons when it answers.
    return content_hash(dict(job), ignore=("observedAt", "healthReasons"))


def with_derived_figures(run: Execution, previous: Execution | None) -> Execution:
    """The run with its escrow change since the job's previous run (None without one)."""
    escrowed = run["countEscrowed"]
    before = previous["countEscrowed"] if previous is not None else None
    delta = escrowed - before if escrowed is not None and before is not None else None
    return {**run, "escrowDelta": delta}


class RunWrite(NamedTuple):
    run: Execution
    # The job's run just before it among those known (its stored state and the earlier new
    # runs); None when none is: storage then looks for an older stored run.
    previous: Execution | None


def with_predecessors(runs: Sequence[Execution], known: Sequence[Execution]) -> list[RunWrite]:
    """The runs oldest first, each with its predecessor among `known` and the earlier `runs`."""
    candidates = sorted(known, key=run_began)
    ordered = sorted(runs, key=run_began)
    writes = []
    for index, run in enumerate(ordered):
        older = [r for r in [*candidates, *ordered[:index]] if run_began(r) < run_began(run)]
        writes.append(RunWrite(run, max(older, key=run_began) if older else None))
    return writes


@dataclass(frozen=True)
class JobWrite:
    """One changed job: its new state, its new or changed runs, and its transitions."""

    job: Job
    runs: list[RunWrite]
    # Runs whose timeBegan moved, as stored before: the run is stored once, under its new key.
    moved_runs: list[Execution]
    events: list[Event]

    @property
    def days(self) -> set[str]:
        """The UTC days whose rollups these runs change."""
        return {run_began(run)[:10] for run in [*(write.run for write in self.runs), *self.moved_runs]}


def plan_job_write(job: Job, previous: StoredJob | None, *, removed_at: str | None = None) -> JobWrite | None:
    """What a job needs written: None when nothing changed since the stored state.
    `removed_at`: when the job was last removed, if it was (its appearance is keyed by it)."""
    if previous is not None and previous.content_hash == job_content_hash(job):
        return None
    stored_runs = distinct_runs(previous.document) if previous is not None else []
    known = {run_id(run): run for run in stored_runs}
    new_runs = [run for run in distinct_runs(job) if known.get(run_id(run)) != run]
    moved = [
        old for run in new_runs if (old := known.get(run_id(run))) is not None and run_began(old) != run_began(run)
    ]
    events = job_transitions(previous.document if previous is not None else None, job, removed_at=removed_at)
    return JobWrite(job, with_predecessors(new_runs, stored_runs), moved, events)


@dataclass(frozen=True)
class JobChanges:
    """Everything one poll writes about jobs, in the order storage writes it."""

    writes: list[JobWrite]
    removed: list[Job] = field(default_factory=list)
    removed_at: str = ""  # when the removed jobs were found gone

    @property
    def events(self) -> list[Event]:
        changed = [event for write in self.writes for event in write.events]
        return changed + [job_removed(job, self.removed_at) for job in self.removed]

    @property
    def runs_stored(self) -> int:
        return sum(len(write.runs) for write in self.writes)
