"""What a poll writes, decided without storage: the change hash, derived run figures and
each run's predecessor, the plan of a job's writes, and the order of a timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.changes import (
    JobChanges,
    StoredJob,
    job_content_hash,
    plan_job_write,
    with_derived_figures,
    with_predecessors,
)
from shared.domain.model import EVENT_KINDS, Event, Execution, Job
from shared.domain.normalize import normalize_execution, normalize_job
from shared.domain.timestamps import Notes
from shared.domain.transitions import newest_first

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SP = {"id": "sp-1", "appId": "app-1", "displayName": "Contoso SCIM"}


def raw_run(activity: str, began: str, state: str = "Succeeded", **counts: object) -> dict[str, object]:
    ended = (datetime.fromisoformat(began.rstrip("Z")) + timedelta(minutes=1)).isoformat() + "Z"
    return {"activityIdentifier": activity, "state": state, "timeBegan": began, "timeEnded": ended, **counts}


def execution(activity: str, began: str, escrowed: int | None = None) -> Execution:
    found = normalize_execution(raw_run(activity, began, countEscrowed=escrowed), Notes(), "run")
    assert found is not None
    return found


def job(code: str = "Active", observed: datetime = NOW, **status: Any) -> Job:
    raw = {
        "id": "scim.1",
        "templateId": "scim",
        "schedule": {"interval": "PT40M", "state": "Active", "expiration": None},
        "status": {"code": code, "countSuccessiveCompleteFailures": 0, "escrowsPruned": False, **status},
    }
    return normalize_job(raw, tenant_id="t", service_principal=SP, observed_at=observed)  # type: ignore[arg-type]


def stored(document: Job) -> StoredJob:
    return StoredJob(job_content_hash(document), document)


def test_the_change_hash_ignores_what_moves_with_the_clock() -> None:
    first = job()
    later = {**first, "observedAt": "2026-11-25T13:00:00Z", "healthReasons": ["no run ended for 5 h"]}
    assert job_content_hash(later) == job_content_hash(first)  # type: ignore[arg-type]
    assert job_content_hash(job(code="Paused")) != job_content_hash(first)


def test_escrow_delta_is_the_change_since_the_previous_run() -> None:
    before, run = execution("r1", "2026-11-25T10:00:00Z", 5), execution("r2", "2026-11-25T11:00:00Z", 12)
    assert with_derived_figures(run, before)["escrowDelta"] == 7
    assert with_derived_figures(run, None)["escrowDelta"] is None
    assert with_derived_figures(run, execution("r0", "2026-11-25T09:00:00Z"))["escrowDelta"] is None


def test_each_run_gets_the_newest_older_run_among_known_and_new_ones() -> None:
    known = [execution("k2", "2026-11-25T08:00:00Z"), execution("k1", "2026-11-25T06:00:00Z")]
    new = [execution("n2", "2026-11-25T10:00:00Z"), execution("n0", "2026-11-25T05:00:00Z")]
    writes = with_predecessors(new, known)
    assert [(w.run["activityIdentifier"], w.previous and w.previous["activityIdentifier"]) for w in writes] == [
        ("n0", None),  # nothing known is older: storage is asked
        ("n2", "k2"),
    ]
    again = with_predecessors([execution("a", "2026-11-25T10:00:00Z"), execution("b", "2026-11-25T11:00:00Z")], [])
    assert [w.previous and w.previous["activityIdentifier"] for w in again] == [None, "a"]


def test_an_unchanged_job_plans_no_write() -> None:
    first = job(lastExecution=raw_run("r1", "2026-11-25T11:00:00Z"))
    assert plan_job_write({**first, "observedAt": "2026-11-25T12:30:00Z"}, stored(first)) is None


def test_a_changed_job_plans_its_new_and_moved_runs_and_transitions() -> None:
    first = job(lastExecution=raw_run("r1", "2026-11-25T10:00:00Z"))
    second = job(
        code="Paused",
        observed=NOW + timedelta(minutes=40),
        lastExecution=raw_run("r2", "2026-11-25T11:00:00Z"),
        lastSuccessfulExecution=raw_run("r1", "2026-11-24T23:59:00Z"),  # its timeBegan moved a day back
    )
    write = plan_job_write(second, stored(first))
    assert write is not None
    assert [(w.run["activityIdentifier"], w.previous and w.previous["activityIdentifier"]) for w in write.runs] == [
        ("r1", None),
        ("r2", "r1"),
    ]
    assert [run["activityIdentifier"] for run in write.moved_runs] == ["r1"]
    assert write.days == {"2026-11-24", "2026-11-25"}
    assert [event["kind"] for event in write.events] == ["statusCodeChanged", "healthChanged"]
    assert {event["since"] for event in write.events} == {first["observedAt"]}


def test_a_job_back_after_its_removal_appears_keyed_by_the_removal() -> None:
    write = plan_job_write(job(), None, removed_at="2026-11-20T00:00:00Z")
    assert write is not None
    assert [(event["kind"], event["since"]) for event in write.events] == [("jobAppeared", "2026-11-20T00:00:00Z")]


def test_job_changes_list_transitions_then_removals() -> None:
    appeared = plan_job_write(job(lastExecution=raw_run("r1", "2026-11-25T10:00:00Z")), None)
    assert appeared is not None
    gone = {**job(), "jobId": "scim.gone"}
    changes = JobChanges([appeared], [gone], removed_at="2026-11-25T12:00:00Z")  # type: ignore[list-item]
    assert [(event["kind"], event["at"]) for event in changes.events] == [
        ("jobAppeared", appeared.job["observedAt"]),
        ("jobRemoved", "2026-11-25T12:00:00Z"),
    ]
    assert changes.runs_stored == 1
    assert JobChanges([]).events == [] and JobChanges([]).runs_stored == 0


def event(kind: str, at: str) -> Event:
    return {
        "servicePrincipalId": "sp-1",
        "jobId": "scim.1",
        "at": at,
        "kind": kind,
        "previous": None,
        "current": None,
        "detail": None,
        "since": "",
    }


def test_a_timeline_is_newest_first_and_a_polls_events_keep_their_order() -> None:
    one_poll = [event(kind, "2026-11-25T12:00:00Z") for kind in EVENT_KINDS[1:6]]
    timeline = [
        event("jobAppeared", "2026-11-25T10:00:00Z"),
        *reversed(one_poll),
        event("mystery", "2026-11-25T12:00:00Z"),
    ]
    ordered = newest_first(timeline)
    assert [e["kind"] for e in ordered] == ["mystery", *reversed(EVENT_KINDS[1:6]), "jobAppeared"]
