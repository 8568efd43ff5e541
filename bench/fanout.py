"""The work queue fan-out benchmark (`python -m bench --fanout`): a large tenant's polls cut into
work items (shared/fanout.py) and done by `python -m shared work --processes N`.

Everything goes through the app's command line, as an operator would run it:

1. a first discovery on empty tables (`poll --discover --dispatch-only`, then `work --processes F`):
   the "first sweep", which stores every principal, job and run;
2. for each N in the worker counts, the same discovery again (the emulator clock is frozen, so
   every sweep reads the same tenant state and does the same work): dispatch, then N workers;
3. for each N in the regular-poll worker counts, the clock moved one cycle, then a regular poll
   (only the principals known to have jobs) dispatched and done by N workers; and once more with
   `poll` alone, which does its own items in-process.

The workers are started WARM_SECONDS before the dispatch (Python's start and imports done, as
on running instances). Each sweep is timed from the dispatch command's spawn to the poll
record's completion (the completed record's `endedAt`, same machine clock), and by the record's
own `durationSeconds` (from its `startedAt`, after the dispatch process's imports), which the
throughput is computed from. Graph requests come from the
emulator's counters and Table operations from the counting proxy, both reset before the dispatch;
the record's own `graph.requests` (summed over its items) is kept to cross-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from devtools.graph_emulator import generated_tenant

if TYPE_CHECKING:
    from bench.run import Harness, ProcessResult

IDLE_SECONDS = 2.0  # a worker exits once the queue has been empty this long (not counted: see completion)
# Workers are started this long before the dispatch, so that their Python start and imports are
# done when the items arrive, as on running instances; they wait up to WAIT_SECONDS for them.
WARM_SECONDS, WAIT_SECONDS = 12.0, 900.0
TIMEOUT = 3600.0
# `work` exits once no message is visible, also while a failed item waits out host.json's
# visibilityTimeout before its retry; the workers are then started again (same N), up to this often.
MAX_WORK_RUNS = 5


def _completed_record(env: dict[str, str], started_at: str, poll_id: str) -> dict[str, Any] | None:
    from shared.settings import load_settings
    from shared.storage.store import close_store, open_store

    async def read() -> dict[str, Any] | None:
        try:
            found = await open_store(load_settings(env)).poll_with_etag(started_at, poll_id)
            return dict(found[0]) if found else None
        finally:
            await close_store()

    return asyncio.run(read())


def failed_tries(tally: dict[str, Any]) -> int:
    return sum(int(one.get("failed", 0)) for one in tally.get("processes", [tally]))


def epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class WarmWorkers:
    """`work` started `warm_seconds` ahead of the poll it is for, in a process group of its own."""

    def __init__(self, args: list[str], env: dict[str, str], warm_seconds: float = WARM_SECONDS) -> None:
        from bench.run import ROOT

        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.output = ThreadPoolExecutor(1).submit(self.process.communicate, timeout=TIMEOUT)
        time.sleep(warm_seconds)

    def result(self) -> ProcessResult:
        from bench.run import ProcessResult

        out, err = self.output.result()
        return ProcessResult(self.process.returncode, out, err, time.perf_counter() - self.started, 0)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.output.result()


class FanoutRun:
    def __init__(self, harness: Harness) -> None:
        from bench.run import last_json_line, run_measured

        self.harness = harness
        self.options = harness.options
        self._run = run_measured
        self._json = last_json_line
        n = self.options.fanout_principals
        tenant = generated_tenant(n, self.options.fanout_job_ratio, self.options.seed)
        self.tenant_id = tenant.tenant_id
        self.principals = n
        self.prefix = f"fan{n}"
        self.env = harness.env(self.prefix, self.tenant_id, inline_max=self.options.fanout_inline_max)
        self.env["POLL_DEADLINE_SECONDS"] = "3600"
        self.seen: set[str] = set()

    def log(self, message: str) -> None:
        self.harness.log(f"fan-out {self.principals:,} SPs: {message}")

    def shared(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "shared", *args]

    def measure(self, label: str, *, discover: bool, workers: int) -> dict[str, Any]:
        """One poll dispatched, then done by `workers` worker processes (0: by `poll` itself)."""
        harness = self.harness
        harness.emulator.reset_stats()
        harness.counter.reset()
        work_args = ["work", "--processes", str(workers), "--idle-seconds", str(IDLE_SECONDS)]
        warm = WarmWorkers(self.shared(*work_args, "--wait-seconds", str(WAIT_SECONDS)), self.env) if workers else None
        spawned = time.time()
        poll_args = ["poll"] + (["--discover"] if discover else []) + (["--dispatch-only"] if workers else [])
        dispatch = self._run(self.shared(*poll_args), self.env, timeout=TIMEOUT)
        record = self._json(dispatch, "poll " + " ".join(poll_args))
        if record.get("pollId") in self.seen:
            raise RuntimeError(f"{label}: the dispatch returned poll {record['pollId']} again (its items still out)")
        self.seen.add(str(record.get("pollId")))
        work: list[dict[str, Any]] = []
        work_seconds = 0.0
        fanned_out = bool(record.get("work"))
        if warm is not None and record.get("status") != "dispatched":
            warm.stop()  # done in one run: nothing for them
            warm = None
        while warm is not None and len(work) < MAX_WORK_RUNS:
            done = warm.result() if not work else self._run(self.shared(*work_args), self.env, timeout=TIMEOUT)
            work.append(self._json(done, "work"))
            work_seconds += done.seconds
            record = _completed_record(self.env, record["startedAt"], record["pollId"]) or record
            if record.get("status") != "dispatched":
                break
            self.log(f"{label}: queue empty but poll not complete (an item awaits its retry); workers again")
            time.sleep(IDLE_SECONDS)
        if fanned_out and not workers:
            record = _completed_record(self.env, record["startedAt"], record["pollId"]) or record
        graph = harness.emulator.stats()
        tables = harness.counter.snapshot()
        ended = epoch(record.get("endedAt"))
        wall = ended - spawned if ended is not None else None
        duration = record.get("durationSeconds")
        sweep = record.get("sweep") or {}
        principals = sweep.get("principalsRead") if discover else record.get("servicePrincipalsScanned")
        if principals is None:
            principals = record.get("servicePrincipalsScanned")
        jobs = record.get("jobsRead")
        measured = {
            "label": label,
            "discover": discover,
            "workers": workers,
            "status": record.get("status"),
            "fannedOut": fanned_out,
            "work": record.get("work"),
            "workerTallies": work,
            "workRuns": len(work),
            "itemsFailed": sum(failed_tries(tally) for tally in work),
            "principals": principals,
            "jobsRead": jobs,
            "jobsChanged": record.get("jobsChanged"),
            "runsStored": record.get("runsStored"),
            "sweep": sweep or None,
            "seconds": wall,  # dispatch command spawned -> record completed
            "durationSeconds": record.get("durationSeconds"),  # the record's own: startedAt -> completed
            "dispatchProcessSeconds": dispatch.seconds,
            "workProcessSeconds": work_seconds,
            # The record's own time: from the dispatch's start (after its imports) to completion.
            "principalsPerSecond": principals / duration if principals and duration else None,
            "graphRequests": graph["requests"],
            "graphBatchRequests": graph["batchRequests"],
            "graphBatchItems": graph["batchItems"],
            "graphItemsByPath": graph.get("itemsByPath"),
            "graphStatusCounts": graph.get("statusCounts"),
            "recordGraphRequests": (record.get("graph") or {}).get("requests"),
            # Item tries that failed, from the record: also those of `poll` doing its own items.
            "recordFailedTries": (record.get("graph") or {}).get("failedTries", 0),
            "graphRequestsPerJob": graph["requests"] / jobs if jobs else None,
            "tableRequests": tables.http_requests,
            "tableOperations": tables.total(),
            "entitiesWritten": tables.total("write"),
            "tables": tables.as_dict(self.prefix),
        }
        self.log(
            f"{label}: {wall or 0:7.1f} s (record {measured['durationSeconds']} s), {principals} SPs, "
            f"{graph['requests']} Graph req, {measured['tableOperations']} table ops, "
            f"{(record.get('work') or {}).get('items')} items, {measured['status']}"
            + (f", {measured['itemsFailed']} item tries failed" if measured["itemsFailed"] else "")
        )
        return measured

    def run(self) -> dict[str, Any]:
        options, emulator = self.options, self.harness.emulator
        self.log("tenant")
        emulator.set_generated_tenant(self.principals, options.fanout_job_ratio, options.seed)
        emulator.set_faults({"latencyMs": options.latency_ms})
        result: dict[str, Any] = {
            "servicePrincipals": self.principals,
            "jobRatio": options.fanout_job_ratio,
            "tenantId": self.tenant_id,
            "inlineMaxPrincipals": options.fanout_inline_max,
            "idleSeconds": IDLE_SECONDS,
            "warmWorkers": WARM_SECONDS,
        }
        result["first"] = self.measure("first sweep", discover=True, workers=options.fanout_first_workers)
        result["sweeps"] = [
            self.measure(f"sweep, {n} workers", discover=True, workers=n) for n in options.fanout_workers
        ]
        result["regular"] = []
        for n in (*options.fanout_regular_workers, 0):
            emulator.advance_clock(options.cycle_seconds)
            label = f"regular, {n} workers" if n else "regular, poll alone"
            result["regular"].append(self.measure(label, discover=False, workers=n))
        emulator.set_faults({"latencyMs": options.latency_ms})
        return result


def run(harness: Harness) -> dict[str, Any]:
    return FanoutRun(harness).run()
