"""The many-tenants benchmark (`python -m bench --tenants-only`): a regular poll of many tenants
through the work queue (shared/tenant_polls.py), done by `python -m shared work --processes N`.

One emulator serves every tenant: the home tenant (AZURE_TENANT_ID) at its root, the others
(TENANTS) under their own path, each with its own clock, counters and latency. Each tenant is a
generated tenant cut at the fewest service principals that hold `--jobs-per-tenant` jobs, so
every tenant has that many (one more where the last principal holds two).

Everything goes through the app's command line, as an operator would run it:

1. the first poll of every tenant (each a discovery: it stores every principal, job and run),
   `poll --dispatch-only` and then F workers: the "first sweep", shown apart;
2. `--tenant-repeats` rounds, each with a regular poll per worker count (in turn, the order
   reversed every other round, so the machine's drift falls on each count alike) and one with
   `poll` alone (it does the tenants' messages in-process); every tenant's clock moved one cycle
   before each, so each poll finds about the same number of new runs.

Timing follows bench/fanout.py: the workers are started ahead of the dispatch (their Python
start and imports done); a poll is timed from the dispatch to the last tenant record's
`endedAt` (same machine clock), both from the dispatch command's spawn and from the moment the
dispatch made the messages (every tenant record's `startedAt`), which the throughput is computed
from. Graph requests are the emulator's counters, summed over the tenants; Table operations come
from the counting proxy (the harness reads the records around it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from bench.fanout import IDLE_SECONDS, MAX_WORK_RUNS, TIMEOUT, WarmWorkers, epoch, failed_tries
from bench.machine import CpuUse, ForeignLoad
from devtools.graph_emulator import EmulatorControl, generated_tenant

if TYPE_CHECKING:
    from bench.run import Harness

_DONE = frozenset({"succeeded", "partial", "failed"})
# The harness's long-running children, by a piece of their command line (bench/run.py starts them).
SERVERS = {"azuriteTable": "azurite-table", "azuriteQueue": "azurite-queue", "emulator": "devtools.graph_emulator"}
# A warm worker that has had no message this long after its start gives up (`work --wait-seconds`
# is the warm-up plus this): with few tenants one worker may take every message, and the others
# must not wait out bench/fanout.py's 15 minutes. Longer than any dispatch takes here.
DISPATCH_MARGIN = 20.0


def bench_tenant_id(number: int) -> str:
    """The id of the benchmark's `number`th extra tenant: a lower-case GUID, the same every run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra-sync-monitor/bench/tenant/{number}"))


def principals_holding(jobs: int, job_ratio: float, seed: int, tenant_id: str | None = None) -> tuple[int, int]:
    """The fewest service principals of a generated tenant that hold at least `jobs` jobs, and
    how many they hold. A generated tenant's first N principals are the same at any size."""
    if jobs < 1 or job_ratio <= 0:
        raise ValueError("a tenant of the benchmark holds at least one job")
    limit = int(4 * jobs / job_ratio) + 100
    tenant = generated_tenant(limit, job_ratio, seed, tenant_id=tenant_id)
    held = 0
    for index in range(limit):
        held += len(tenant.profiles(index))
        if held >= jobs:
            return index + 1, held
    raise ValueError(f"{limit} principals hold only {held} jobs")


class TenantsRun:
    def __init__(self, harness: Harness) -> None:
        options = harness.options
        self.harness = harness
        self.options = options
        home = generated_tenant(0, options.tenant_job_ratio, options.seed).tenant_id
        self.tenant_ids = [home] + [bench_tenant_id(i) for i in range(1, options.tenants)]
        self.controls: dict[str, EmulatorControl] = {home: harness.emulator}
        for tenant_id in self.tenant_ids[1:]:
            self.controls[tenant_id] = harness.emulator.for_tenant(tenant_id)
        jobs, ratio, seed = options.jobs_per_tenant, options.tenant_job_ratio, options.seed
        self.sizes = {
            tenant_id: principals_holding(jobs, ratio, seed, None if tenant_id == home else tenant_id)
            for tenant_id in self.tenant_ids
        }
        self.prefix = f"ten{options.tenants}x{options.jobs_per_tenant}"
        watched = json.dumps(
            [
                {"tenantId": tenant_id, "displayName": f"Bench {i}", "graphBaseUrl": self.controls[tenant_id].base_url}
                for i, tenant_id in enumerate(self.tenant_ids[1:], start=1)
            ]
        )
        extra = {"TENANTS": watched, "POLL_DEADLINE_SECONDS": "3600"}
        self.env = {**harness.env(self.prefix, home), **extra}
        # The harness reads the records straight from Azurite: its reads are not the poll's.
        self.read_env = {**harness.env(self.prefix, home, counted=False), **extra}
        self.seen: set[str] = set()

    def log(self, message: str) -> None:
        self.harness.log(f"{len(self.tenant_ids)} tenants: {message}")

    def shared(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "shared", *args]

    def serve_tenants(self) -> None:
        options = self.options
        for tenant_id, control in self.controls.items():
            principals, _ = self.sizes[tenant_id]
            if control is self.harness.emulator:
                control.set_generated_tenant(principals, options.tenant_job_ratio, options.seed)
            else:
                tenant = generated_tenant(principals, options.tenant_job_ratio, options.seed, tenant_id=tenant_id)
                self.harness.emulator.add_tenant(tenant_id, tenant)
            control.set_faults({"latencyMs": options.latency_ms})

    def records(self, sent: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Each tenant's record of the poll sent to it, as stored now (None: not stored yet)."""
        from shared.settings import load_settings
        from shared.storage.store import close_store, open_store
        from shared.tenants import find_tenant

        async def read() -> list[dict[str, Any] | None]:
            settings = load_settings(self.read_env)
            found: list[dict[str, Any] | None] = []
            try:
                for brief in sent:
                    tenant = await find_tenant(settings, brief["tenantId"])
                    stored = None
                    if tenant is not None:
                        store = open_store(settings.for_tenant(tenant))
                        stored = await store.poll_with_etag(brief["startedAt"], brief["pollId"])
                    found.append(dict(stored[0]) if stored else None)
                return found
            finally:
                await close_store()

        return asyncio.run(read())

    def graph_stats(self) -> dict[str, Any]:
        total: dict[str, Any] = {"requests": 0, "batchRequests": 0, "batchItems": 0, "perTenant": []}
        statuses: Counter[str] = Counter()
        for control in self.controls.values():
            stats = control.stats()
            for key in ("requests", "batchRequests", "batchItems"):
                total[key] += stats[key]
            total["perTenant"].append(stats["requests"])
            # Top-level answers by status, and those of `$batch` items under "items".
            for key, value in (stats.get("statusCounts") or {}).items():
                counts = value if isinstance(value, dict) else {"": value}
                statuses.update({f"{key}:{k}" if k else str(key): int(v) for k, v in counts.items()})
        total["statusCounts"] = dict(sorted(statuses.items()))
        return total

    def measure(self, label: str, workers: int, *, repeat: int = 0) -> dict[str, Any]:
        """One poll of every tenant dispatched, then done by `workers` processes (0: by `poll` itself)."""
        from bench.run import last_json_line, run_measured

        harness = self.harness
        for control in self.controls.values():
            control.reset_stats()
        harness.counter.reset()
        cpu, foreign = CpuUse(SERVERS).start(), ForeignLoad(interval=1.0).start()
        work_args = ["work", "--processes", str(workers), "--idle-seconds", str(IDLE_SECONDS)]
        warm = None
        if workers:
            warm_seconds = self.options.tenant_warm_seconds
            waiting = self.shared(*work_args, "--wait-seconds", str(warm_seconds + DISPATCH_MARGIN))
            warm = WarmWorkers(waiting, self.env, warm_seconds)
        spawned = time.time()
        poll_args = ["poll", "--dispatch-only"] if workers else ["poll"]
        dispatch = run_measured(self.shared(*poll_args), self.env, timeout=TIMEOUT)
        try:
            answer = last_json_line(dispatch, "poll " + " ".join(poll_args))
            sent = answer.get("tenants")
            if not sent or (workers and answer.get("status") != "dispatched"):
                raise RuntimeError(f"{label}: the poll was not sent to the queue as tenant polls: {answer}")
        except Exception:
            if warm is not None:
                warm.stop()
            raise
        if self.seen & {brief["pollId"] for brief in sent}:
            raise RuntimeError(f"{label}: a tenant poll id came back again")
        self.seen.update(brief["pollId"] for brief in sent)
        tallies: list[dict[str, Any]] = []
        records: list[dict[str, Any] | None] = []
        while warm is not None and len(tallies) < MAX_WORK_RUNS:
            done = warm.result() if not tallies else run_measured(self.shared(*work_args), self.env, TIMEOUT)
            tallies.append(last_json_line(done, "work"))
            records = self.records(sent)
            if all(record and record.get("status") in _DONE for record in records):
                break
            self.log(f"{label}: queue empty but not every tenant's poll complete; workers again")
            time.sleep(IDLE_SECONDS)
        if warm is None:  # `poll` alone returned once every tenant's poll was done
            records = self.records(sent)
        graph = self.graph_stats()
        tables = harness.counter.snapshot()
        measured = self._measured(
            label, workers, repeat, spawned, dispatch.seconds, sent, records, tallies, graph, tables
        )
        # From the workers' start (their imports included) to their exit, not only the timed span.
        measured["cpuSeconds"] = cpu.stop()
        measured["foreignLoad"] = foreign.stop()
        self.log(f"{label}: CPU s {measured['cpuSeconds']}, other processes {measured['foreignLoad']}")
        return measured

    def _measured(
        self,
        label: str,
        workers: int,
        repeat: int,
        spawned: float,
        dispatch_seconds: float,
        sent: list[dict[str, Any]],
        records: list[dict[str, Any] | None],
        tallies: list[dict[str, Any]],
        graph: dict[str, Any],
        tables: Any,
    ) -> dict[str, Any]:
        stored = [record for record in records if record]
        statuses = Counter(str(record.get("status")) if record else "notStored" for record in records)
        ended = [e for record in stored if (e := epoch(record.get("endedAt"))) is not None]
        started = [s for brief in sent if (s := epoch(brief.get("startedAt"))) is not None]
        last = max(ended) if len(ended) == len(sent) else None
        seconds = last - spawned if last is not None else None
        from_dispatch = last - min(started) if last is not None and started else None
        jobs = sum(int(record.get("jobsRead") or 0) for record in stored)
        per_tenant_jobs = [int(record.get("jobsRead") or 0) for record in stored]
        measured = {
            "label": label,
            "workers": workers,
            "repeat": repeat,
            "tenants": len(sent),
            "statuses": dict(sorted(statuses.items())),
            "tenantsSucceeded": statuses.get("succeeded", 0),
            "discoveries": sum(1 for record in stored if record.get("discovery")),
            "workRuns": len(tallies),
            "workerTallies": tallies,
            "itemsFailed": sum(failed_tries(tally) for tally in tallies),
            "principals": sum(int(record.get("servicePrincipalsScanned") or 0) for record in stored),
            "jobsRead": jobs,
            "jobsReadPerTenant": [min(per_tenant_jobs, default=0), max(per_tenant_jobs, default=0)],
            "jobsChanged": sum(int(record.get("jobsChanged") or 0) for record in stored),
            "runsStored": sum(int(record.get("runsStored") or 0) for record in stored),
            "seconds": seconds,  # the dispatch command spawned -> the last tenant's record completed
            "secondsFromDispatch": from_dispatch,  # the messages made -> the last tenant's record completed
            "dispatchProcessSeconds": dispatch_seconds,
            "tenantSeconds": sorted(float(record.get("durationSeconds") or 0) for record in stored),
            "tenantsPerSecond": len(sent) / from_dispatch if from_dispatch and len(stored) == len(sent) else None,
            "jobsPerSecond": jobs / from_dispatch if from_dispatch else None,
            "graphRequests": graph["requests"],
            "graphRequestsPerTenant": graph["perTenant"],
            "graphBatchRequests": graph["batchRequests"],
            "graphBatchItems": graph["batchItems"],
            "graphStatusCounts": graph["statusCounts"],
            "recordGraphRequests": sum(int((record.get("graph") or {}).get("requests") or 0) for record in stored),
            "tableRequests": tables.http_requests,
            "tableOperations": tables.total(),
            "entitiesWritten": tables.total("write"),
            "tables": tables.as_dict(self.prefix),
        }
        self.log(
            f"{label}: {seconds or 0:6.1f} s ({from_dispatch or 0:.1f} s from the dispatch), {jobs} jobs, "
            f"{graph['requests']} Graph req, {measured['tableOperations']} table ops, "
            f"{dict(statuses)}" + (f", {measured['itemsFailed']} item tries failed" if measured["itemsFailed"] else "")
        )
        return measured

    def cycle(self) -> None:
        for control in self.controls.values():
            control.advance_clock(self.options.cycle_seconds)

    def run(self) -> dict[str, Any]:
        options = self.options
        self.log(f"serving them ({options.jobs_per_tenant} jobs each)")
        self.serve_tenants()
        result: dict[str, Any] = {
            "tenants": len(self.tenant_ids),
            "jobsPerTenant": options.jobs_per_tenant,
            "jobRatio": options.tenant_job_ratio,
            "tenantIds": self.tenant_ids,
            "servicePrincipals": [self.sizes[t][0] for t in self.tenant_ids],
            "jobs": [self.sizes[t][1] for t in self.tenant_ids],
            "idleSeconds": IDLE_SECONDS,
            "warmWorkers": options.tenant_warm_seconds,
            "repeats": options.tenant_repeats,
        }
        result["first"] = self.measure("first sweep", options.tenant_first_workers)
        result["regular"] = []
        for repeat in range(options.tenant_repeats):
            order = options.tenant_workers if repeat % 2 == 0 else tuple(reversed(options.tenant_workers))
            for workers in (*order, 0):
                self.cycle()
                label = f"regular, {workers} workers" if workers else "regular, poll alone"
                result["regular"].append(self.measure(label, workers, repeat=repeat))
        return result


def run(harness: Harness) -> dict[str, Any]:
    return TenantsRun(harness).run()
