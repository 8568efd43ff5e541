"""The Graph fixture corpus (tests/fixtures/graph) is shaped the way Microsoft documents it.

Shape conformance only: keys, types and spellings of synchronizationJob and its parts as the
Graph v1.0 reference pages give them, timestamps as Graph writes them, and each case's own
premise (a partial last success, a running cycle, a re-imposed quarantine...). What the app
makes of them is for the normalize/health tests. The last test serves each fixture from the
emulator and reads it back through the real SDK reader: it must arrive unchanged.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgraph.generated.models.quarantine_reason import QuarantineReason
from msgraph.generated.models.synchronization_schedule_state import SynchronizationScheduleState
from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode
from msgraph.generated.models.synchronization_task_execution_result import SynchronizationTaskExecutionResult

from devtools.graph_emulator import EmulatorServer
from tests.fixtures.graph import HERE, fixture_names, load_fixture

SENTINEL = "0001-01-01T00:00:00Z"
MAX_SPAN = "P10675199DT2H48M5.4775807S"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d{1,7})?S)?)?$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CONTEXT = re.compile(
    r"^https://graph\.microsoft\.com/v1\.0/\$metadata#servicePrincipals\('([0-9a-f-]{36})'\)/synchronization/jobs$"
)
JOB_KEYS = {"id", "templateId", "schedule", "status", "synchronizationJobSettings"}
SCHEDULE_KEYS = {"expiration", "interval", "state"}
STATUS_KEYS = {
    "code",
    "countSuccessiveCompleteFailures",
    "escrowsPruned",
    "lastExecution",
    "lastSuccessfulExecution",
    "lastSuccessfulExecutionWithExports",
    "progress",
    "quarantine",
    "steadyStateFirstAchievedTime",
    "steadyStateLastAchievedTime",
    "synchronizedEntryCountByType",
    "troubleshootingUrl",
}
EXECUTIONS = ("lastExecution", "lastSuccessfulExecution", "lastSuccessfulExecutionWithExports")
COUNTS = (
    "countEntitled",
    "countEntitledForProvisioning",
    "countEscrowed",
    "countEscrowedRaw",
    "countExported",
    "countExports",
    "countImported",
    "countImportedDeltas",
    "countImportedReferenceDeltas",
)
EXECUTION_KEYS = {"activityIdentifier", "error", "state", "timeBegan", "timeEnded", *COUNTS}
ERROR_KEYS = {"code", "message", "tenantActionable"}
PROGRESS_KEYS = {"completedUnits", "progressObservationDateTime", "totalUnits", "units"}
QUARANTINE_KEYS = {"currentBegan", "nextAttempt", "reason", "seriesBegan", "seriesCount", "error"}
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1

# The documented members of each enum-typed property (the v1.0 pages and the SDK's models agree).
ENUMS: dict[str, set[str]] = {
    "status.code": {member.value for member in SynchronizationStatusCode},
    "schedule.state": {member.value for member in SynchronizationScheduleState},
    "execution.state": {member.value for member in SynchronizationTaskExecutionResult},
    "quarantine.reason": {member.value for member in QuarantineReason},
}
NAMES = fixture_names()


def parse(text: str) -> datetime:
    """A Graph timestamp (0-7 fractional digits, Z) as an aware datetime (microseconds kept)."""
    assert TIMESTAMP.match(text), f"not a Graph timestamp: {text!r}"
    whole, _, fraction = text[:-1].partition(".")
    return datetime.fromisoformat(whole + (f".{fraction[:6].ljust(6, '0')}" if fraction else "") + "+00:00")


def is_int(value: Any, top: int = INT64_MAX) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def jobs(name: str) -> list[dict[str, Any]]:
    answer, _ = load_fixture(name)
    return answer["value"]


def enum_values(job: dict[str, Any]) -> dict[str, list[str]]:
    status = job["status"]
    found = {
        "status.code": [status["code"]],
        "schedule.state": [job["schedule"]["state"]],
        "execution.state": [status[kind]["state"] for kind in EXECUTIONS if status[kind]],
        "quarantine.reason": [status["quarantine"]["reason"]] if status["quarantine"] else [],
    }
    return found


# ---------------------------------------------------------------- the corpus


def test_the_corpus_has_every_case_and_a_readme_naming_each_file() -> None:
    wanted = {
        "cloud_sync_partial_last_success",
        "cloud_sync_mid_cycle",
        "hr_inbound",
        "cross_tenant",
        "scim_gallery",
        "initial_cycle_long",
        "quarantine_reimposed",
        "escrows_pruned_paused",
        "sentinels",
        "unknown_enums",
    }
    assert wanted <= set(NAMES)
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"`{name}.json`" in readme, name
    assert "learn.microsoft.com" in readme


@pytest.mark.parametrize("name", NAMES)
def test_the_file_is_a_graph_answer_plus_only_fixture_keys(name: str) -> None:
    document = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    extra = {key for key in document if key not in ("@odata.context", "value")}
    assert extra and all(key.startswith("_fixture") for key in extra)
    answer, now = load_fixture(name)
    assert set(answer) == {"@odata.context", "value"}
    assert CONTEXT.match(answer["@odata.context"])
    assert TIMESTAMP.match(document["_fixtureNow"]) and now.tzinfo is not None
    assert isinstance(answer["value"], list) and answer["value"]
    ids = [job["id"] for job in answer["value"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_the_documented_shape(name: str) -> None:
    _, now = load_fixture(name)
    for job in jobs(name):
        where = f"{name}:{job.get('id')}"
        assert set(job) == JOB_KEYS, where
        assert isinstance(job["templateId"], str) and job["templateId"]
        # <templateId>.<32 hex>[.<tenant id>], as Microsoft's examples write job ids
        assert re.match(rf"^{re.escape(job['templateId'])}\.[0-9a-f]{{32}}(\.[0-9a-f-]{{36}})?$", job["id"]), where

        schedule = job["schedule"]
        assert set(schedule) == SCHEDULE_KEYS, where
        assert DURATION.match(schedule["interval"]), where
        assert isinstance(schedule["state"], str)
        assert schedule["expiration"] is None or TIMESTAMP.match(schedule["expiration"])

        status = job["status"]
        assert set(status) == STATUS_KEYS, where
        assert isinstance(status["code"], str)
        assert is_int(status["countSuccessiveCompleteFailures"])
        assert isinstance(status["escrowsPruned"], bool)
        for kind in EXECUTIONS:
            check_execution(status[kind], f"{where}:{kind}", now)
        assert isinstance(status["progress"], list)
        for entry in status["progress"]:
            assert set(entry) == PROGRESS_KEYS, where
            assert is_int(entry["completedUnits"], INT32_MAX) and is_int(entry["totalUnits"], INT32_MAX)
            assert entry["units"] is None or isinstance(entry["units"], str)
            assert parse(entry["progressObservationDateTime"]) <= now
        check_quarantine(status["quarantine"], where, now)
        for key in ("steadyStateFirstAchievedTime", "steadyStateLastAchievedTime"):
            assert parse(status[key]) <= now, where
        first, last = (parse(status[key]) for key in ("steadyStateFirstAchievedTime", "steadyStateLastAchievedTime"))
        assert last == parse(SENTINEL) or first <= last, where
        for pair in status["synchronizedEntryCountByType"]:
            assert set(pair) == {"key", "value"} and isinstance(pair["key"], str) and is_int(pair["value"])
        assert status["troubleshootingUrl"] is None or isinstance(status["troubleshootingUrl"], str)

        for setting in job["synchronizationJobSettings"]:
            assert set(setting) == {"name", "value"}
            assert isinstance(setting["name"], str) and isinstance(setting["value"], str)


def check_execution(execution: dict[str, Any] | None, where: str, now: datetime) -> None:
    if execution is None:
        return
    assert set(execution) == EXECUTION_KEYS, where
    assert execution["activityIdentifier"] is None or GUID.match(execution["activityIdentifier"]), where
    for name in COUNTS:
        assert is_int(execution[name]), (where, name)  # Int64: a JSON number, never a string
    assert isinstance(execution["state"], str)
    check_error(execution["error"], where)
    began, ended = parse(execution["timeBegan"]), parse(execution["timeEnded"])
    assert ended <= now, where
    assert execution["timeBegan"] == SENTINEL or began <= ended, where
    if execution["activityIdentifier"] is not None:
        assert execution["timeBegan"] != SENTINEL and execution["timeEnded"] != SENTINEL, where


def check_error(error: dict[str, Any] | None, where: str) -> None:
    if error is None:
        return
    assert set(error) == ERROR_KEYS, where
    assert isinstance(error["code"], str) and isinstance(error["message"], str)  # code: a string, not an enum
    assert isinstance(error["tenantActionable"], bool)


def check_quarantine(quarantine: dict[str, Any] | None, where: str, now: datetime) -> None:
    if quarantine is None:
        return
    assert set(quarantine) == QUARANTINE_KEYS, where
    assert isinstance(quarantine["reason"], str) and is_int(quarantine["seriesCount"])
    series, current = parse(quarantine["seriesBegan"]), parse(quarantine["currentBegan"])
    assert series <= current <= now, where
    assert quarantine["nextAttempt"] == SENTINEL or parse(quarantine["nextAttempt"]) > now, where
    check_error(quarantine["error"], where)


@pytest.mark.parametrize("name", [name for name in NAMES if name != "unknown_enums"])
def test_enum_properties_hold_documented_members(name: str) -> None:
    for job in jobs(name):
        for prop, values in enum_values(job).items():
            assert set(values) <= ENUMS[prop], (name, job["id"], prop, values)


def test_unknown_enums_has_unknownfuturevalue_and_a_new_member_in_every_enum_property() -> None:
    seen: dict[str, set[str]] = {prop: set() for prop in ENUMS}
    for job in jobs("unknown_enums"):
        for prop, values in enum_values(job).items():
            seen[prop].update(values)
    for prop, values in seen.items():
        unknown = values - ENUMS[prop]
        assert "unknownFutureValue" in unknown, prop
        assert unknown - {"unknownFutureValue"}, f"{prop}: no made-up member"


# ---------------------------------------------------------------- each case's premise


def only(name: str) -> tuple[dict[str, Any], datetime]:
    (job,) = jobs(name)
    return job, load_fixture(name)[1]


def test_cloud_sync_partial_last_success_is_the_articles_shape() -> None:
    job, now = only("cloud_sync_partial_last_success")
    assert (job["templateId"], job["schedule"]["interval"], job["schedule"]["state"]) == (
        "AD2AADProvisioning",
        "PT2M",
        "Active",
    )
    status = job["status"]
    assert status["code"] == "Active"
    partial = status["lastSuccessfulExecution"]
    assert partial["activityIdentifier"] is None and partial["timeBegan"] == SENTINEL
    assert partial["timeEnded"] != SENTINEL and now - parse(partial["timeEnded"]) < timedelta(hours=1)
    assert any(partial[name] for name in COUNTS)
    last = status["lastExecution"]
    assert last["activityIdentifier"] and last["timeBegan"] != SENTINEL
    assert status["lastSuccessfulExecutionWithExports"] is None
    assert {pair["key"] for pair in status["synchronizedEntryCountByType"]} == {"user to User", "group to Group"}


def test_cloud_sync_mid_cycle_has_recent_progress_and_an_older_last_run() -> None:
    job, now = only("cloud_sync_mid_cycle")
    assert job["schedule"]["interval"] == "PT2M" and job["templateId"] == "AD2AADProvisioning"
    status = job["status"]
    assert now - parse(status["lastExecution"]["timeEnded"]) > timedelta(minutes=5)
    (progress,) = status["progress"]
    assert timedelta(0) < now - parse(progress["progressObservationDateTime"]) <= timedelta(minutes=1)
    assert progress["completedUnits"] < progress["totalUnits"]


def test_initial_cycle_long_has_no_finished_run_yet_but_recent_progress() -> None:
    job, now = only("initial_cycle_long")
    status = job["status"]
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Active"}
    assert status["code"] == "NotRun"
    last = status["lastExecution"]
    assert last is None or (last["activityIdentifier"] is None and last["timeEnded"] == SENTINEL)
    assert status["steadyStateFirstAchievedTime"] == status["steadyStateLastAchievedTime"] == SENTINEL
    (progress,) = status["progress"]
    assert now - parse(progress["progressObservationDateTime"]) <= timedelta(minutes=2)
    assert 0 < progress["completedUnits"] < progress["totalUnits"]


def test_quarantine_reimposed_within_one_series() -> None:
    job, now = only("quarantine_reimposed")
    status = job["status"]
    quarantine = status["quarantine"]
    assert status["code"] == "Quarantine" and quarantine["reason"] == "EncounteredQuarantineException"
    series, current = parse(quarantine["seriesBegan"]), parse(quarantine["currentBegan"])
    assert timedelta(hours=19) <= now - series <= timedelta(hours=21)
    assert timedelta(hours=1) <= now - current <= timedelta(hours=3)
    assert quarantine["seriesCount"] == 4 and parse(quarantine["nextAttempt"]) > now
    assert quarantine["error"]["code"] == status["lastExecution"]["error"]["code"]
    assert status["lastExecution"]["state"] == "Failed"


def test_escrows_pruned_then_paused() -> None:
    job, _ = only("escrows_pruned_paused")
    status = job["status"]
    assert status["escrowsPruned"] is True and status["code"] == "Paused"
    assert status["quarantine"] is None and status["lastExecution"]["countEscrowed"] > 0


def test_sentinels_cover_every_form() -> None:
    found = jobs("sentinels")
    never = [job for job in found if job["schedule"]["interval"] == MAX_SPAN]
    assert never and all(job["schedule"]["state"] == "Disabled" for job in never)
    statuses = [job["status"] for job in found]
    assert {"NotRun", "NotConfigured"} <= {status["code"] for status in statuses}
    assert any(all(status[kind] is None for kind in EXECUTIONS) for status in statuses)
    sentinel_records = [status[kind] for status in statuses for kind in EXECUTIONS if status[kind]]
    sentinel_records = [record for record in sentinel_records if record["activityIdentifier"] is None]
    assert {record["state"] for record in sentinel_records} == {"Succeeded", "Failed"}
    assert all(record["timeBegan"] == record["timeEnded"] == SENTINEL for record in sentinel_records)
    all_slots = [all(s[kind] and s[kind]["timeBegan"] == SENTINEL for kind in EXECUTIONS) for s in statuses]
    assert any(all_slots)  # a job with a sentinel record in every execution slot
    assert any(status["lastExecution"] is None and status["lastSuccessfulExecution"] for status in statuses)
    for status in statuses:
        if status["code"] != "Quarantine":
            assert status["quarantine"] is None and status["progress"] == []
            assert status["steadyStateFirstAchievedTime"] == status["steadyStateLastAchievedTime"] == SENTINEL
    assert any(status["quarantine"] and status["quarantine"]["nextAttempt"] == SENTINEL for status in statuses)


@pytest.mark.parametrize(
    ("name", "template"),
    [("hr_inbound", "API2AAD"), ("cross_tenant", "Azure2Azure"), ("scim_gallery", "Slack")],
)
def test_scenario_templates(name: str, template: str) -> None:
    job, _ = only(name)
    assert job["templateId"] == template and job["schedule"]["interval"] == "PT40M"


def test_times_are_within_a_year_of_the_fixtures_now() -> None:
    for name in NAMES:
        _, now = load_fixture(name)
        text = (HERE / f"{name}.json").read_text(encoding="utf-8")
        for stamp in re.findall(r'"(\d{4}-\d{2}-\d{2}T[^"]*Z)"', text):
            if stamp != SENTINEL:
                assert abs(parse(stamp) - now) < timedelta(days=365), (name, stamp)
        assert now == datetime(2026, 11, 30, 12, tzinfo=UTC)


# ---------------------------------------------------------------- through the emulator and the SDK


async def test_each_fixture_comes_back_through_the_sdk_reader_unchanged(
    app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    from shared.graph.reader import graph_reader
    from shared.settings import load_settings

    principals = []
    for name in NAMES:
        answer, _ = load_fixture(name)
        sp_id = CONTEXT.match(answer["@odata.context"]).group(1)  # type: ignore[union-attr]
        principals.append({"id": sp_id, "appId": sp_id, "displayName": name, "jobs": answer["value"]})
    demo_emulator.set_tenant({"tenantId": "fixtures", "servicePrincipals": principals})
    results = await graph_reader(load_settings()).get_jobs([sp["id"] for sp in principals])
    for sp in principals:
        result = results[sp["id"]]
        assert result.ok, (sp["displayName"], result)
        assert result.body == sp["jobs"], sp["displayName"]
