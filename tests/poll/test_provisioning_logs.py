"""The provisioning logs' errors, end to end: the real SDK reads `/auditLogs/provisioning` from
the emulator, the poll stores error groups in Azurite, the API serves them. The groups and
counts must be what the emulator served; reading the same events again counts nothing twice;
a backlog or an hour larger than the page budget is caught up over polls, each page read about
once; an answer out of time order is not counted until read whole; a 403 is reported, not fatal."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from devtools.graph_emulator import EmulatorServer
from shared.alerts.after_poll import run_alerts
from shared.alerts.settings import load_alert_settings
from shared.alerts.store import load_alert_rows
from shared.domain.provisioning_logs import ErrorGroupHour, hour_of
from shared.domain.timestamps import isoformat_utc, parse_timestamp
from shared.poll import poll_tenant
from shared.settings import load_settings
from shared.storage.store import Store, open_store
from tests.support.api import api_client
from tests.support.paths import ROOT

GroupKey = tuple[str, str, str, str]  # jobId, status, action, errorCode


@pytest.fixture
def logs_on(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PROVISIONING_LOGS", "samples")
    monkeypatch.setenv("PROVISIONING_LOG_SAMPLES", "2")
    return {**app_env, "PROVISIONING_LOGS": "samples"}


def served_groups(events: list[dict[str, Any]], start: str, end: str) -> Counter[GroupKey]:
    """What Graph served in [start, end), as the API groups it: every event but successes."""
    low, high = parse_timestamp(start), parse_timestamp(end)
    assert low is not None and high is not None
    counts: Counter[GroupKey] = Counter()
    for event in events:
        at = parse_timestamp(event["activityDateTime"])
        info = event.get("provisioningStatusInfo") or {}
        if at is None or not low <= at < high or info.get("status") == "success":
            continue
        code = (info.get("errorInformation") or {}).get("errorCode") or ""
        counts[(event["jobId"], info["status"], event["provisioningAction"], code)] += 1
    return counts


async def api_groups() -> tuple[Counter[GroupKey], list[dict[str, Any]]]:
    async with api_client() as api:
        answer = await api.get("/api/v1/errors", params={"window": "7d", "top": 1000})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["nextLink"] is None and body["collection"]["mode"] == "samples"
    counts = Counter({(g["jobId"], g["status"], g["action"], g["errorCode"]): g["count"] for g in body["value"]})
    return counts, body["value"]


async def collect_polls(emulator: EmulatorServer, *, polls: int = 10, reader: Any = None) -> list[dict[str, Any]]:
    """Collects until every hour it may read is read (a backlog takes a few runs); each run's
    section. Graph's clock is the emulator's, which earlier tests may have moved past the wall
    clock: the collector is told the emulator's now, as a poll against Graph is told the wall
    clock."""
    from shared.graph.reader import graph_reader
    from shared.provisioning_logs import collect_provisioning_logs

    now = parse_timestamp(emulator.now())
    assert now is not None
    sections: list[dict[str, Any]] = []
    for _ in range(polls):
        settings = load_settings()
        section = await collect_provisioning_logs(
            settings, reader or graph_reader(settings), open_store(settings), now=now, deadline=time.monotonic() + 120
        )
        assert section["status"] == "ok", section
        sections.append(dict(section))
        if section["behindHours"] == 0:
            return sections
    raise AssertionError(f"still behind after {polls} runs: {sections[-1]}")


async def collect_until_caught_up(emulator: EmulatorServer) -> dict[str, Any]:
    return (await collect_polls(emulator))[-1]


def small_pages(monkeypatch: pytest.MonkeyPatch, page_size: int, pages: int) -> None:
    """Pages of `page_size` events, `pages` a poll: a backlog the emulator serves quickly."""
    from shared import provisioning_logs

    monkeypatch.setattr(provisioning_logs, "PAGE_SIZE", page_size)
    monkeypatch.setenv("PROVISIONING_LOG_PAGES", str(pages))


def hour_before(emulator: EmulatorServer, delta: timedelta) -> datetime:
    """The hour `delta` before the emulator's now began."""
    now = parse_timestamp(emulator.now())
    assert now is not None
    return (now - delta).replace(minute=0, second=0, microsecond=0)


class IgnoresOrder:
    """Graph ignoring `$orderby`: it answers in its own order, newest first."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    async def provisioning_events(self, filter_: str, *, orderby: str | None = None, **limits: Any) -> Any:
        assert orderby == "activityDateTime asc"
        return await self._reader.provisioning_events(filter_, **limits)


async def collect_twelve_hours(emulator: EmulatorServer) -> tuple[Store, datetime, str, dict[str, Any]]:
    """The jobs stored first (a poll with the logs off: the errors endpoints answer known jobs),
    then the living demo tenant's last 12 hours of the log collected (the hours read are past,
    so what it served of them holds still). Returns the store, the emulator's now, where the
    collector started, and its last section."""
    await poll_tenant(dataclasses.replace(load_settings(), provisioning_logs="off"), trigger="test")
    store = open_store(load_settings())
    await store.ensure_error_tables()
    now = parse_timestamp(emulator.now())
    assert now is not None
    since = isoformat_utc((now - timedelta(hours=12)).replace(minute=0, second=0, microsecond=0))
    await store.save_log_cursor({"cursor": since, "windowHours": 3})
    return store, now, since, await collect_until_caught_up(emulator)


async def test_error_groups_are_what_graph_served_and_a_reread_counts_nothing_twice(
    logs_on: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    store, _, since, first = await collect_twelve_hours(demo_emulator)
    state = await store.load_log_cursor()
    assert state is not None and state["cursor"] == first["cursor"] > since

    served = demo_emulator.provisioning_events(full=True)
    counts, groups = await api_groups()
    expected = served_groups(served, since, first["cursor"])
    assert sum(expected.values()) > 0, "the demo tenant served no failures to compare"
    assert counts == expected
    # Groups come most events first, with a trend per day that adds up, and examples.
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert all(sum(g["days"].values()) == g["count"] for g in groups)
    assert all(1 <= len(g["samples"]) for g in groups)
    # Each example names the systems its event named: which of its ids is an Entra object.
    by_id = {event["id"]: event for event in served}
    for sample in (sample for g in groups for sample in g["samples"]):
        event = by_id[sample["eventId"]]
        assert (sample["sourceSystem"], sample["targetSystem"]) == (
            event["sourceSystem"]["displayName"],
            event["targetSystem"]["displayName"],
        )

    # The same hours read again (the cursor put back): the same rows, not twice the counts.
    await store.save_log_cursor({"cursor": since, "windowHours": 6})
    again = await collect_until_caught_up(demo_emulator)
    assert again["eventsRead"] > 0 and again["cursor"] == first["cursor"]
    assert (await api_groups())[0] == counts

    # A job's own endpoint answers its groups, and CSV.
    job_id = max(counts, key=lambda key: counts[key])[0]
    stored = {job["jobId"]: job for job in await open_store(load_settings()).list_jobs()}
    job = stored[job_id]
    async with api_client() as api:
        path = f"/api/v1/jobs/{job['servicePrincipalId']}/{job_id}/errors"
        own = await api.get(path, params={"window": "7d"})
        csv = await api.get(path, params={"window": "7d", "format": "csv"})
    assert own.status_code == 200 and {g["jobId"] for g in own.json()["value"]} == {job_id}
    assert sum(g["count"] for g in own.json()["value"]) == sum(n for key, n in counts.items() if key[0] == job_id)
    assert csv.status_code == 200 and csv.text.startswith("servicePrincipalId,jobId,status,action,errorCode")


async def test_graph_refusing_the_logs_is_reported_and_the_poll_goes_on(
    logs_on: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    demo_emulator.set_faults({"rules": [{"path": "^/auditLogs/provisioning", "status": 403}]})
    record = await poll_tenant(load_settings(), trigger="test")
    assert record["status"] == "succeeded" and record["jobsRead"] > 0
    section = record["provisioningLogs"]
    assert section is not None and section["status"] == "notPermitted"
    assert "AuditLog.Read.All" in section["error"]
    async with api_client() as api:
        health = await api.get("/api/health")
        errors = await api.get("/api/v1/errors")
    assert health.json()["lastPoll"]["provisioningLogs"] == "notPermitted"
    assert errors.json()["collection"]["status"] == "notPermitted" and errors.json()["value"] == []


def hour_row(sp_id: str, job_id: str, error_code: str, at: datetime) -> ErrorGroupHour:
    return {
        "jobId": job_id,
        "servicePrincipalId": sp_id,
        "hour": hour_of(at),
        "status": "failure",
        "action": "update",
        "errorCode": error_code,
        "reason": None,
        "errorCategory": None,
        "count": 3,
        "firstSeen": isoformat_utc(at),
        "lastSeen": isoformat_utc(at + timedelta(minutes=1)),
        "samples": [],
    }


async def test_alerts_learn_the_collected_codes_then_tell_a_code_new_to_a_job_once(
    logs_on: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    store, now, since, collected = await collect_twelve_hours(demo_emulator)

    # The first evaluation learns every failure code the polls stored, announcing none.
    alert_settings = load_alert_settings()
    first = await run_alerts(store, alert_settings, now=now, provisioning_logs=True)
    assert first["status"] == "succeeded"
    rows = await load_alert_rows(store)
    learned = {(job_id, name) for (_, job_id), memory in rows.memories.items() for name in memory.get("errorCodes", {})}
    served = {
        (job_id, code)
        for (job_id, status, _, code) in served_groups(
            demo_emulator.provisioning_events(full=True), since, collected["cursor"]
        )
        if status == "failure" and code
    }
    assert served and learned == served
    assert not any(state["rule"] == "newErrorCode" for state in rows.states.values())

    # A day and more on: one job fails with a code it never showed; another with a code its
    # stored history holds from three days before (learned from the table, not announced).
    later = now + timedelta(hours=26)
    (sp_a, job_a), (sp_b, job_b) = sorted(rows.memories)[:2]
    await store.save_error_hours(
        [
            (sp_a, hour_row(sp_a, job_a, "EntryExportTimedOut", later - timedelta(hours=2))),
            (sp_b, hour_row(sp_b, job_b, "LegacyCodeFromLastWeek", later - timedelta(hours=2))),
            (sp_b, hour_row(sp_b, job_b, "LegacyCodeFromLastWeek", now - timedelta(days=3))),
        ]
    )
    told = await run_alerts(store, alert_settings, now=later, provisioning_logs=True)
    rows = await load_alert_rows(store)
    new = {key[:2]: state for key, state in rows.states.items() if key[2] == "newErrorCode"}
    assert list(new) == [(sp_a, job_a)] and new[(sp_a, job_a)]["status"] == "open"
    assert new[(sp_a, job_a)]["facts"]["error codes"] == "EntryExportTimedOut"
    assert told["notifications"]["open"] >= 1
    assert rows.memories[(sp_b, job_b)]["errorCodes"]["LegacyCodeFromLastWeek"]["new"] is False
    # Evaluated again: nothing new is stored or said about it.
    await run_alerts(store, alert_settings, now=later + timedelta(minutes=10), provisioning_logs=True)
    again = await load_alert_rows(store)
    assert again.states[(sp_a, job_a, "newErrorCode")] == rows.states[(sp_a, job_a, "newErrorCode")]


async def test_a_backlog_larger_than_the_page_budget_is_caught_up_reading_each_page_about_once(
    logs_on: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A day of log (the first collection starts a day back), at 100 events a page and 5 pages
    # a poll: several polls, each cut short by the page budget, most hours larger than it.
    demo_emulator.freeze_clock(True)
    demo_emulator.set_generated_tenant(10, 0.5, seed=3, failure_events=2_000)
    await poll_tenant(dataclasses.replace(load_settings(), provisioning_logs="off"), trigger="test")
    small_pages(monkeypatch, 100, 5)
    since = hour_before(demo_emulator, timedelta(days=1))
    sections = await collect_polls(demo_emulator, polls=30)

    expected = served_groups(demo_emulator.provisioning_events(full=True), isoformat_utc(since), sections[-1]["cursor"])
    events = sum(expected.values())
    assert (await api_groups())[0] == expected  # nothing lost, nothing counted twice
    assert sum(s["eventsRead"] for s in sections) == events
    minimum = math.ceil(events / 100)
    pages = sum(s["pagesRead"] for s in sections)
    assert len(sections) >= 4 and any("resumeAt" in s for s in sections)
    assert minimum <= pages <= minimum + len(sections), (pages, minimum, sections)
    assert all(s["unorderedReads"] == 0 and s["pageBudget"] == 5 for s in sections)
    state = await open_store(load_settings()).load_log_cursor()
    assert state is not None and state["cursor"] == sections[-1]["cursor"] and "resumeAt" not in state


async def test_an_hour_larger_than_the_page_budget_is_finished_over_polls(
    logs_on: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,200 failures in one hour, three to a second (a cut may end inside a second: that
    # second is read again), at 100 a page and 3 pages a poll: the hour takes five polls, each
    # reading on from where the last stopped.
    template = json.loads((ROOT / "tests/fixtures/graph/provisioning/provisioning_list_failure.json").read_text())
    demo_emulator.freeze_clock(True)
    hour = hour_before(demo_emulator, timedelta(hours=3))
    events = [
        {
            **template["value"][0],
            "id": f"busy-{n:05d}",
            "activityDateTime": isoformat_utc(hour + (n // 3) * timedelta(seconds=9)),
        }
        for n in range(1_200)
    ]
    demo_emulator.set_tenant({"tenantId": "t", "servicePrincipals": [], "provisioningEvents": events})
    small_pages(monkeypatch, 100, 3)
    store = open_store(load_settings())
    await store.ensure_error_tables()
    await store.save_log_cursor({"cursor": isoformat_utc(hour), "windowHours": 6})
    sections = await collect_polls(demo_emulator, polls=10)

    rows = await store.error_hours_of_days([isoformat_utc(hour)[:10]])
    assert [(row["hour"], row["count"]) for row in rows] == [(isoformat_utc(hour)[:13], 1_200)]
    assert (
        rows[0]["firstSeen"] == events[0]["activityDateTime"] and rows[0]["lastSeen"] == events[-1]["activityDateTime"]
    )
    assert len(sections) >= 4 and sections[-1]["cursor"] > isoformat_utc(hour)
    assert all(s["cursor"] == isoformat_utc(hour) and "resumeAt" in s for s in sections[:-1])
    assert all("nextPageBudget" not in s for s in sections)  # never stuck: no larger budget needed
    assert sum(s["pagesRead"] for s in sections) <= 12 + len(sections)


async def test_an_answer_out_of_time_order_is_not_counted_until_read_whole(
    logs_on: dict[str, str], demo_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Graph ignoring $orderby (newest first): a read cut short says nothing about which hours
    # are whole, so nothing of it is kept; smaller windows, then more pages, read each hour whole.
    from shared.graph.reader import graph_reader

    demo_emulator.freeze_clock(True)
    demo_emulator.set_generated_tenant(10, 0.5, seed=3, failure_events=2_000)
    await poll_tenant(dataclasses.replace(load_settings(), provisioning_logs="off"), trigger="test")
    small_pages(monkeypatch, 50, 1)  # an hour holds more than one page
    store = open_store(load_settings())
    await store.ensure_error_tables()
    since = hour_before(demo_emulator, timedelta(hours=4))
    await store.save_log_cursor({"cursor": isoformat_utc(since), "windowHours": 6})
    sections = await collect_polls(demo_emulator, polls=40, reader=IgnoresOrder(graph_reader(load_settings())))

    expected = served_groups(demo_emulator.provisioning_events(full=True), isoformat_utc(since), sections[-1]["cursor"])
    assert sum(expected.values()) > 0
    assert (await api_groups())[0] == expected
    assert sum(s["unorderedReads"] for s in sections) > 0 and all("resumeAt" not in s for s in sections)
    assert any(s["pageBudget"] > 1 for s in sections)  # an hour larger than the budget got more pages
    unordered = [s for s in sections if s["unorderedReads"]]
    assert all(s["eventsDiscarded"] > 0 for s in unordered)
