"""A discovery that cannot cover the tenant before its deadline: each run goes on where the
last stopped, keeps what it learned, reads new principals first, and a full sweep finds every
job within a bounded number of runs. The real SDK against the emulator, real Azurite."""

from __future__ import annotations

import dataclasses
import math

from devtools.graph_emulator import EmulatorServer
from shared.poll import poll_tenant
from shared.settings import load_settings
from shared.storage.store import open_store
from tests.support import tenants

PRINCIPALS = 160
NEW_SP = "ffffffff-0000-4000-8000-000000000001"  # sorts last: the sweep's order would reach it last


async def stored_job_keys() -> set[tuple[str, str]]:
    return {(job["servicePrincipalId"], job["jobId"]) for job in await open_store(load_settings()).list_jobs()}


async def test_a_sweep_longer_than_one_run_finds_every_job_within_a_few_runs(
    app_env: dict[str, str], demo_emulator: EmulatorServer
) -> None:
    demo_emulator.set_generated_tenant(PRINCIPALS, job_ratio=0.15)
    tenant = demo_emulator.tenant()
    demo_emulator.set_tenant(tenant)
    # One batch of 20 at a time, each answered after 1.5 s, and 5 s per poll (storage reads
    # included): a run reads at most four batches, so the sweep needs several runs.
    demo_emulator.set_faults({"rules": [{"path": "^/\\$batch$", "mode": "slow", "delayMs": 1500, "inBatch": False}]})
    slow = dataclasses.replace(load_settings(), graph_max_concurrency=1, poll_deadline_seconds=5)
    await open_store(slow).ensure_tables()  # not on the first run's clock

    first = await poll_tenant(slow, trigger="test", discover=True)
    sweep = first["sweep"]
    assert sweep is not None and sweep["principalsListed"] == PRINCIPALS, first
    assert 0 < sweep["principalsRead"] < PRINCIPALS and sweep["lastFullSweepAt"] is None
    assert sweep["principalsLeft"] == PRINCIPALS - sweep["principalsRead"]
    known, state = await open_store(slow).load_principals()
    # What it learned is kept: every principal listed, the job counts of those it read.
    assert len(known) == PRINCIPALS and state.cursor
    assert sum(row["jobCount"] is not None for row in known.values()) == sweep["principalsRead"]

    # A principal created mid-sweep is read in the next run, not when the sweep gets to it.
    tenant["servicePrincipals"].append(
        {"id": NEW_SP, "appId": "new-app", "displayName": "New app", "jobs": [tenants.job("scim.new", "scim", None)]}
    )
    demo_emulator.set_tenant(tenant)
    runs, left = [first], sweep["principalsLeft"]
    record = await poll_tenant(slow, trigger="test", discover=True)
    assert (NEW_SP, "scim.new") in await stored_job_keys()
    runs.append(record)
    bound = math.ceil(PRINCIPALS / 20) + 2
    while (record["sweep"] or {}).get("lastFullSweepAt") is None and len(runs) < bound:
        assert record["sweep"] is not None and record["sweep"]["principalsLeft"] < left  # always progress
        left = record["sweep"]["principalsLeft"]
        record = await poll_tenant(slow, trigger="test", discover=True)
        runs.append(record)
    assert record["sweep"] is not None and record["sweep"]["lastFullSweepAt"], [r["sweep"] for r in runs]
    assert record["sweep"]["principalsLeft"] == 0

    truth = {(sp["id"], job["id"]) for sp in tenant["servicePrincipals"] for job in sp.get("jobs", [])}
    assert await stored_job_keys() == truth
    assert all(r["status"] == "succeeded" for r in runs), [r["errors"] for r in runs]

    # Swept: a regular poll reads only the principals with jobs, all of them.
    demo_emulator.clear_faults()
    regular = await poll_tenant(load_settings(), trigger="test")
    assert regular["discovery"] is False and regular["sweep"] is None
    assert regular["servicePrincipalsScanned"] == len({sp_id for sp_id, _ in truth})
