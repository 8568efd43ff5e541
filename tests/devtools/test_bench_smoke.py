"""The benchmark harness still works: one tiny run of `python -m bench`, every table produced.

Benchmarks are not tests: this asserts the harness's structure and that its numbers are sane
(consistent with each other and with the tenant), never what they should be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT

SIZE = 40


def _run(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    out, data = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--sizes",
            str(SIZE),
            "--latency-ms",
            "0",
            "--history-multiplier",
            "2",
            "--api-samples",
            "5",
            "--cold-runs",
            "1",
            "--out",
            str(out),
            "--json",
            str(data),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out.read_text(), json.loads(data.read_text())


def test_a_tiny_benchmark_run_produces_every_table_with_sane_numbers(tmp_path: Path) -> None:
    markdown, results = _run(tmp_path)

    for heading in (
        "## Machine and settings",
        "## Targets",
        "### First poll",
        "### Regular poll",
        "### Poll that sees no change",
        "### First poll, throttling on",
        "### Regular poll, throttling on",
        "## API latency",
        "## Cold start",
        "## How each figure is measured",
        "## Every poll",
    ):
        assert heading in markdown, heading
    assert "| CPU |" in markdown and "Python" in markdown

    size = results["sizes"][str(SIZE)]
    assert size["jobs"] > 0
    scenarios = size["scenarios"]
    for name in ("first", "regular", "noChange", "throttledFirst", "throttledRegular"):
        for which in ("app", "baseline"):
            poll = scenarios[name][which]
            assert poll["status"] == "succeeded", (name, which, poll)
            assert poll["graphRequests"] > 0
            assert poll["tableOperations"] >= poll["entitiesWritten"] >= poll["dataEntitiesWritten"] >= 0
            assert poll["tableOperations"] >= poll["tableRequests"] - poll["tables"]["batchRequests"]
            assert poll["pollSeconds"] > 0 and poll["processSeconds"] > poll["pollSeconds"]
            assert poll["peakRssMB"] > 10
    for name in ("first", "regular", "noChange"):
        naive = scenarios[name]["baseline"]
        # One page of service principals, then one request per service principal.
        assert naive["graphRequests"] == 1 + SIZE
        assert naive["graphBatchRequests"] == 0
        # No change detection: a job entity per job, every poll.
        assert naive["tables"]["byTable"]["write"]["Jobs"] == size["jobs"]
    assert scenarios["first"]["app"]["record"]["jobsRead"] == size["jobs"]
    assert scenarios["first"]["app"]["dataEntitiesWritten"] > 0

    api = size["api"]
    for level in ("1x", "Nx"):
        for endpoint in ("summary", "jobs", "executions"):
            latency = api[level]["endpoints"][endpoint]
            assert 0 < latency["p50ms"] <= latency["p95ms"]
    assert api["Nx"]["executionsStored"] >= 2 * api["1x"]["executionsStored"] > 0

    cold = results["coldStart"]["runs"][0]
    assert cold["status"] == 200
    assert 0 < cold["importSeconds"] and 0 < cold["firstAnswerSeconds"]
    assert isinstance(cold["msgraphAfterAnswer"], bool)

    assert {target["met"] for target in results["targets"]} <= {True, False, None}
    assert len(results["targets"]) == 6


TENANTS, JOBS_PER_TENANT = 3, 4


def test_a_tiny_many_tenants_run_polls_every_tenant_through_the_queue_with_each_worker_count(tmp_path: Path) -> None:
    out, data = tmp_path / "tenants.md", tmp_path / "tenants.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tenants-only",
            "--tenants",
            str(TENANTS),
            "--jobs-per-tenant",
            str(JOBS_PER_TENANT),
            "--tenant-workers",
            "1,2",
            "--tenant-first-workers",
            "1",
            "--tenant-repeats",
            "1",
            "--tenant-warm-seconds",
            "3",
            "--latency-ms",
            "0",
            "--out",
            str(out),
            "--json",
            str(data),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    markdown, tenants = out.read_text(), json.loads(data.read_text())["tenants"]

    assert f"## Many tenants: {TENANTS} tenants × {JOBS_PER_TENANT} jobs" in markdown
    assert len(set(tenants["tenantIds"])) == TENANTS
    assert all(JOBS_PER_TENANT <= jobs <= JOBS_PER_TENANT + 1 for jobs in tenants["jobs"])
    first = tenants["first"]
    assert first["discoveries"] == TENANTS  # a first poll of a tenant discovers it
    assert [m["workers"] for m in tenants["regular"]] == [1, 2, 0]
    for measured in (first, *tenants["regular"]):
        assert measured["statuses"] == {"succeeded": TENANTS}, measured["label"]
        # Every job of every tenant read once, as the emulator serves them.
        assert measured["jobsRead"] == sum(tenants["jobs"])
        assert len(measured["graphRequestsPerTenant"]) == TENANTS and min(measured["graphRequestsPerTenant"]) >= 1
        assert measured["recordGraphRequests"] == measured["graphRequests"]
        assert 0 < measured["secondsFromDispatch"] <= measured["seconds"]
        assert measured["tableOperations"] >= measured["entitiesWritten"] > 0
        assert measured["itemsFailed"] == 0
    for measured in tenants["regular"]:
        assert measured["discoveries"] == 0  # regular polls: only the principals known to have jobs
        assert measured["principals"] < first["principals"]
        assert measured["cpuSeconds"]["app"] > 0 and measured["cpuSeconds"]["azuriteTable"] > 0
        if measured["workers"]:
            processes = measured["workerTallies"][0].get("processes", measured["workerTallies"])
            assert len(processes) == measured["workers"]
            assert sum(process["items"] for process in processes) == TENANTS  # one tenant poll message each
