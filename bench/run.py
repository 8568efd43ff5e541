"""The benchmark harness: `python -m bench [--quick] [--sizes 500,2000] [--latency-ms 40] ...`.

Starts Azurite (behind a counting proxy) and the Graph emulator (in a subprocess, clock frozen
so nothing changes unless the harness moves it), then for each tenant size measures the app and
the naive baseline (`bench/baseline.py`) side by side, and writes `docs/benchmarks.md` and a JSON
file with every figure. The app is driven only through its public entry points: polls through
`shared.poll.poll_tenant` in a child process (`bench/child.py`), the API through
`python -m shared serve`, cold start through `import function_app` (`bench/coldstart.py`).

One file, over 400 lines, on purpose: every measurement is a method of one `Harness`, which
owns the servers, the frozen clock and the counters they all read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import api_latency, fanout, report, tenants  # noqa: E402
from bench.machine import ForeignLoad, machine_info  # noqa: E402
from bench.table_counter import TableCounter  # noqa: E402
from devtools.azurite import AzuriteServer, free_port, stop_process  # noqa: E402
from devtools.graph_emulator import EmulatorControl, generated_tenant  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
# Tables that hold records about polls rather than data: writes to them are not "data entities".
RECORD_TABLES = ("Polls",)
POLL_TIMEOUT = 3600.0
# WORK_INLINE_MAX_PRINCIPALS for the one-run comparison: no poll of the benchmark's sizes fans out.
INLINE_MAX = 1_000_000


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (500, 2000)
    latency_ms: int = 40
    job_ratio: float = 0.3
    seed: int = 1
    cycle_seconds: int = 2400
    throttle_every: int = 50
    throttle_retry_after: int = 1
    api_samples: int = 50
    history_multiplier: int = 10
    history_max_sps: int = 500
    baseline_full_max_sps: int = 2000
    cold_runs: int = 3
    # Also poll each size with the one-run path (WORK_INLINE_MAX_PRINCIPALS set high), app only.
    inline_compare: bool = True
    # The work queue fan-out benchmark (bench/fanout.py); 0: not run.
    fanout_principals: int = 0
    fanout_job_ratio: float = 0.05
    fanout_workers: tuple[int, ...] = (1, 2, 4)
    fanout_first_workers: int = 4
    fanout_regular_workers: tuple[int, ...] = (1, 2)
    fanout_inline_max: int | None = None  # WORK_INLINE_MAX_PRINCIPALS for the fan-out run (None: the app's default)
    # The many-tenants benchmark (bench/tenants.py); 0: not run.
    tenants: int = 0
    jobs_per_tenant: int = 150
    tenant_job_ratio: float = 0.3
    tenant_workers: tuple[int, ...] = (1, 2, 4)
    tenant_first_workers: int = 2
    tenant_repeats: int = 3
    tenant_warm_seconds: float = 12.0
    out: Path = DEFAULT_OUT
    json_out: Path = DEFAULT_JSON
    command: str = "bench/run.sh"
    render: Path | None = None
    fanout_from: Path | None = None
    provisioning_logs_from: Path | None = None
    tenants_from: Path | None = None
    notes: tuple[str, ...] = ()

    def throttle_faults(self) -> dict[str, Any]:
        rule = {
            "path": "^/servicePrincipals",
            "status": 429,
            "retryAfter": self.throttle_retry_after,
            "every": self.throttle_every,
        }
        return {"latencyMs": self.latency_ms, "rules": [rule]}


# ---------------------------------------------------------------- processes


@dataclass
class ProcessResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_kb: int


def run_measured(
    args: list[str], env: dict[str, str], timeout: float = POLL_TIMEOUT, on_ready: Callable[[], None] | None = None
) -> ProcessResult:
    """Run a child to completion, with its wall time and wait4's ru_maxrss (a fallback only: on Linux it
    starts from the parent's RSS at fork, so children report their own VmHWM).

    With `on_ready`, the child is expected to print READY and wait: `on_ready()` runs, then the
    child is told to go on (a line on its stdin)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if on_ready else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert process.stdout is not None
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            if on_ready is not None:
                assert process.stdin is not None
                line = process.stdout.readline()
                try:
                    if line.strip() == b"READY":
                        on_ready()
                        process.stdin.write(b"GO\n")
                finally:
                    process.stdin.close()  # anything else: the child reads end-of-file and goes on (or has died)
            out = process.stdout.read()
            process.stdout.close()
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return ProcessResult(
            process.returncode,
            out.decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            int(usage.ru_maxrss),
        )


def last_json_line(result: ProcessResult, what: str) -> dict[str, Any]:
    lines = [line for line in result.stdout.strip().splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{what} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


class EmulatorProcess(EmulatorControl):
    """`python -m devtools.graph_emulator` in a subprocess, clock frozen, controlled over HTTP."""

    def __init__(self) -> None:
        super().__init__(timeout=300.0)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> EmulatorProcess:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.graph_emulator",
                "--port",
                "0",
                "--tenant",
                "generated:0",
                "--frozen-clock",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("GRAPH_BASE_URL="):
            self.stop()
            raise RuntimeError(f"the Graph emulator did not start (said {line!r})")
        self._root_url = line.split("=", 1)[1].removesuffix("/v1.0")
        return self

    def stop(self) -> None:
        self.close()
        stop_process(self._process)
        self._process = None


# ---------------------------------------------------------------- the harness


@dataclass
class Harness:
    options: Options
    azurite: AzuriteServer
    counter: TableCounter
    emulator: EmulatorProcess
    started: float = field(default_factory=time.monotonic)
    discovery_supported: bool = False
    warm_sp: str = ""

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)

    def storage(self, counted: bool) -> str:
        """Azurite's connection string, through the counting proxy or straight to Azurite."""
        connection = self.azurite.connection_string
        if counted:
            connection = connection.replace(f":{self.azurite.port}/", f":{self.counter.port}/")
        return connection

    def env(
        self, prefix: str, tenant_id: str, *, counted: bool = True, inline_max: int | None = None
    ) -> dict[str, str]:
        from shared.settings import SETTINGS

        env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
        env.update(
            {
                "AZURE_TENANT_ID": tenant_id,
                "GRAPH_BASE_URL": self.emulator.base_url,
                "GRAPH_AUTH": "none",
                "AzureWebJobsStorage": self.storage(counted),
                "TABLE_PREFIX": prefix,
                # Each prefix its own work queue: items of one scenario's poll are never done into another's tables.
                "WORK_QUEUE_NAME": f"bench-{prefix.lower()}"[:49],
                "PYTHONWARNINGS": "ignore",
            }
        )
        if inline_max is not None:
            env["WORK_INLINE_MAX_PRINCIPALS"] = str(inline_max)
        return env

    def set_faults(self, throttled: bool) -> None:
        if throttled:
            self.emulator.set_faults(self.options.throttle_faults())
        else:
            self.emulator.set_faults({"latencyMs": self.options.latency_ms})

    def poll(
        self,
        which: str,
        prefix: str,
        tenant_id: str,
        *,
        throttled: bool = False,
        discover: bool = False,
        inline: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One poll of `which` (app | baseline) in its own process, counted from outside;
        `extra_env` adds or overrides app settings (e.g. PROVISIONING_LOGS)."""

        def ready() -> None:  # after the child's warm-up, before its poll
            self.set_faults(throttled)  # also restarts the throttling rule's count: the same 429s for both
            self.emulator.reset_stats()
            self.counter.reset()

        args = [sys.executable, "-m", "bench.child", which, "--handshake"]
        if which == "app":
            args += ["--warm-sp", self.warm_sp] + (["--discover"] if discover else [])
        env = self.env(prefix, tenant_id, inline_max=INLINE_MAX if inline else None)
        env.update(extra_env or {})
        result = run_measured(args, env, on_ready=ready)
        child = last_json_line(result, f"{which} poll")
        graph = self.emulator.stats()
        tables = self.counter.snapshot()
        fired = sum(rule.get("fired", 0) for rule in self.emulator.faults().get("rules", []))
        # The child's own VmHWM: wait4's ru_maxrss starts from the forking parent's RSS on Linux.
        peak_kb = child.get("peakRssKB") or result.max_rss_kb
        before_kb = child.get("rssBeforePollKB") or 0
        measured = {
            "status": child["record"].get("status"),
            # Fanned out through the work queue (and its items done in the child), or done in one run.
            "fannedOut": bool(child["record"].get("work")),
            "workItems": (child["record"].get("work") or {}).get("items"),
            "graphRequests": graph["requests"],
            "graphBatchRequests": graph["batchRequests"],
            "graphBatchItems": graph["batchItems"],
            "throttledResponses": fired,
            "tableRequests": tables.http_requests,
            "tableOperations": tables.total(),
            "entitiesWritten": tables.total("write"),
            "dataEntitiesWritten": tables.total(
                "write", exclude_tables=frozenset(prefix + name for name in RECORD_TABLES)
            ),
            "tables": tables.as_dict(prefix),
            "graphByPath": graph.get("byPath"),
            "pollSeconds": child["pollSeconds"],
            "importSeconds": child["importSeconds"],
            "processSeconds": result.seconds,
            "peakRssMB": peak_kb / 1024,
            "pollRssIncrementMB": max(0, peak_kb - before_kb) / 1024,
            "record": child["record"],
        }
        self.log(
            f"  {which:8} {prefix:>14}: {measured['pollSeconds']:7.2f} s, {measured['graphRequests']:6} Graph req, "
            f"{measured['tableOperations']:6} table ops, {measured['entitiesWritten']:6} writes, "
            f"{measured['peakRssMB']:6.1f} MB, {measured['status']}"
            + (f", fanned out ({measured['workItems']} items)" if measured["fannedOut"] else "")
        )
        return measured

    # ------------------------------------------------------------ one size

    def size(self, n: int) -> dict[str, Any]:
        options = self.options
        tenant = generated_tenant(n, options.job_ratio, options.seed)
        tenant_id = tenant.tenant_id
        principals = tenant.service_principals()
        # The warm-up polls one service principal that has jobs (any, if none has).
        self.warm_sp = next(
            (str(sp["id"]) for i, sp in enumerate(principals[:200]) if tenant.profiles(i)), str(principals[0]["id"])
        )
        self.emulator.set_generated_tenant(n, options.job_ratio, options.seed)
        full_baseline = n <= options.baseline_full_max_sps
        app, base, inline = f"app{n}", f"naive{n}", f"appinl{n}"
        result: dict[str, Any] = {"servicePrincipals": n, "tenantId": tenant_id, "scenarios": {}}
        scenarios: dict[str, dict[str, Any]] = result["scenarios"]

        def run(
            name: str,
            *,
            baseline: bool = True,
            app_prefix: str = app,
            base_prefix: str = base,
            throttled: bool = False,
            discover: bool = False,
            one_run: bool = False,
        ) -> None:
            self.log(f"{n} SPs: {name}")
            entry: dict[str, Any] = {
                "app": self.poll("app", app_prefix, tenant_id, throttled=throttled, discover=discover)
            }
            if one_run and options.inline_compare:
                # The same poll of the same tenant state through the one-run path, into its own tables.
                entry["appInline"] = self.poll("app", inline, tenant_id, discover=discover, inline=True)
            if baseline:
                entry["baseline"] = self.poll("baseline", base_prefix, tenant_id, throttled=throttled)
            scenarios[name] = entry

        run("first", one_run=True)
        self.emulator.advance_clock(options.cycle_seconds)
        run("regular", one_run=True)
        run("noChange", baseline=full_baseline, one_run=True)
        if self.discovery_supported:
            run("discovery", baseline=False, discover=True, one_run=True)
        first_app = scenarios["first"]["app"]["record"]
        result["jobs"] = first_app.get("jobsRead")
        result["servicePrincipalsWithJobs"] = first_app.get("servicePrincipalsWithJobs")

        result["api"] = self.api(n, app, tenant_id)

        if options.throttle_every > 0:
            self.emulator.advance_clock(options.cycle_seconds)
            run(
                "throttledFirst",
                baseline=full_baseline,
                app_prefix=f"appthr{n}",
                base_prefix=f"naivethr{n}",
                throttled=True,
            )
            self.emulator.advance_clock(options.cycle_seconds)
            run(
                "throttledRegular",
                baseline=full_baseline,
                app_prefix=f"appthr{n}",
                base_prefix=f"naivethr{n}",
                throttled=True,
            )
        self.set_faults(False)
        return result

    def api(self, n: int, prefix: str, tenant_id: str) -> dict[str, Any]:
        """API latency at the history the polls left (1x), then after growing it (Nx)."""
        options = self.options
        env = self.env(prefix, tenant_id, counted=False)
        with api_latency.ApiServer(env, free_port()) as server:
            job = api_latency.busiest_job(server)
            self.log(f"{n} SPs: API latency at 1x history")
            one = api_latency.measure(server, job, options.api_samples)
            result: dict[str, Any] = {"job": job and {k: job[k] for k in ("servicePrincipalId", "jobId")}, "1x": one}
            if options.history_multiplier > 1 and n <= options.history_max_sps:
                wanted = (options.history_multiplier - 1) * one["executionsStored"]
                self.log(f"{n} SPs: growing history to {options.history_multiplier}x ({wanted} more runs)")
                self.emulator.set_faults({"latencyMs": 0})  # history is setup, not a measurement
                grown = run_measured(
                    [
                        sys.executable,
                        "-m",
                        "bench.child",
                        "history",
                        "--emulator",
                        self.emulator.root_url,
                        "--until-runs",
                        str(wanted),
                        "--advance",
                        str(3 * options.cycle_seconds),
                        "--max-polls",
                        str(8 * options.history_multiplier),
                    ],
                    self.env(prefix, tenant_id, counted=False),
                )
                result["history"] = last_json_line(grown, "history polls")
                result["history"]["seconds"] = grown.seconds
                self.set_faults(False)
                self.log(f"{n} SPs: API latency at {options.history_multiplier}x history")
                result["Nx"] = api_latency.measure(server, job, options.api_samples)
            return result

    # ------------------------------------------------------------ calibration

    def calibrate(self) -> dict[str, Any]:
        """What one Table operation and one Graph round trip cost on this machine, for reading the rest."""
        from concurrent.futures import ThreadPoolExecutor

        import httpx
        from azure.data.tables import TableServiceClient, UpdateMode

        service = TableServiceClient.from_connection_string(self.storage(counted=True))
        table = service.create_table_if_not_exists("calibration")

        def upserts(worker: int, count: int) -> None:
            client = service.get_table_client("calibration")
            for i in range(count):
                entity = {"PartitionKey": f"p{worker}", "RowKey": f"r{i}", "document": "x" * 1000}
                client.upsert_entity(entity, mode=UpdateMode.REPLACE)

        upserts(99, 20)  # warm-up
        started = time.perf_counter()
        upserts(0, 200)
        sequential = (time.perf_counter() - started) / 200
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda w: upserts(w, 50), range(1, 9)))
        concurrent = (time.perf_counter() - started) / 400
        table.close()
        service.close()
        self.set_faults(False)
        with httpx.Client(base_url=self.emulator.base_url) as client:
            client.get("/servicePrincipals?$top=1")
            started = time.perf_counter()
            for _ in range(20):
                client.get("/servicePrincipals?$top=1")
            graph = (time.perf_counter() - started) / 20
        return {
            "tableUpsertMs": sequential * 1000,
            "tableUpsertMsAt8Concurrent": concurrent * 1000,
            "graphRoundTripMs": graph * 1000,
        }

    # ------------------------------------------------------------ cold start

    def cold_start(self, prefix: str, tenant_id: str) -> dict[str, Any]:
        env = self.env(prefix, tenant_id, counted=False)
        runs = []
        for _ in range(self.options.cold_runs):
            result = run_measured([sys.executable, "-m", "bench.coldstart"], env, timeout=300)
            measured = last_json_line(result, "cold start")
            measured["processSeconds"] = result.seconds
            runs.append(measured)
        from bench.coldstart import serve_first_answer

        serve = [serve_first_answer(env, free_port()) for _ in range(self.options.cold_runs)]
        self.log(
            "cold start: import "
            + ", ".join(f"{r['importSeconds']:.2f}" for r in runs)
            + " s; first answer "
            + ", ".join(f"{r['firstAnswerSeconds']:.3f}" for r in runs)
            + " s"
        )
        return {"prefix": prefix, "runs": runs, "serve": serve}


def _discovery_supported() -> bool:
    from bench.child import supports_discovery

    try:
        return supports_discovery()
    except ImportError:
        return False


def run(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    foreign = ForeignLoad().start()
    results: dict[str, Any] = {
        "options": {
            k: v
            for k, v in asdict(options).items()
            if k not in ("out", "json_out", "render", "fanout_from", "provisioning_logs_from", "tenants_from", "notes")
        },
        "machine": machine_info(),
        "sizes": {},
    }
    with AzuriteServer() as azurite, TableCounter(azurite.port) as counter:
        emulator = EmulatorProcess().start()
        try:
            harness = Harness(options, azurite, counter, emulator, discovery_supported=_discovery_supported())
            results["calibration"] = harness.calibrate()
            for n in options.sizes:
                results["sizes"][str(n)] = harness.size(n)
            if options.sizes:
                smallest = min(options.sizes)
                harness.emulator.set_generated_tenant(smallest, options.job_ratio, options.seed)
                tenant_id = results["sizes"][str(smallest)]["tenantId"]
                results["coldStart"] = harness.cold_start(f"app{smallest}", tenant_id)
                results["coldStart"]["servicePrincipals"] = smallest
            if options.fanout_principals > 0:
                try:
                    results["fanout"] = fanout.run(harness)
                except Exception as error:  # keep every other figure; the report says it failed
                    harness.log(f"fan-out benchmark failed: {type(error).__name__}: {error}")
                    results["fanoutError"] = f"{type(error).__name__}: {error}"[:2000]
            if options.tenants > 0:
                try:
                    results["tenants"] = tenants.run(harness)
                except Exception as error:  # keep every other figure; the report says it failed
                    harness.log(f"many-tenants benchmark failed: {type(error).__name__}: {error}")
                    results["tenantsError"] = f"{type(error).__name__}: {error}"[:2000]
        finally:
            emulator.stop()
    results["totalSeconds"] = time.monotonic() - started
    results["machine"]["foreignLoad"] = foreign.stop()
    results["targets"] = report.targets(results)
    return results


QUICK_SIZES, QUICK_API_SAMPLES, QUICK_COLD_RUNS = (100, 400), 30, 2
FANOUT_PRINCIPALS, QUICK_FANOUT_PRINCIPALS = 50_000, 5_000
TENANTS, QUICK_TENANTS = 20, 5


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark the app against a naive baseline.")
    parser.add_argument("--quick", action="store_true", help="a few minutes: sizes 100,400, fewer samples")
    parser.add_argument("--sizes", help="comma-separated tenant sizes (service principals); default 500,2000")
    parser.add_argument("--latency-ms", type=int, default=Options.latency_ms, help="Graph latency per HTTP request")
    parser.add_argument("--job-ratio", type=float, default=Options.job_ratio, help="share of SPs with jobs")
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument(
        "--cycle-seconds",
        type=int,
        default=Options.cycle_seconds,
        help="emulator clock moved between a first and a regular poll",
    )
    parser.add_argument(
        "--throttle-every",
        type=int,
        default=Options.throttle_every,
        help="with throttling on, every Nth Graph read of a service principal is a 429",
    )
    parser.add_argument("--throttle-retry-after", type=int, default=Options.throttle_retry_after)
    parser.add_argument("--api-samples", type=int, help=f"requests per endpoint (default {Options.api_samples})")
    parser.add_argument(
        "--history-multiplier",
        type=int,
        default=Options.history_multiplier,
        help="stored history grown to this multiple of the first polls' (1: not grown)",
    )
    parser.add_argument(
        "--history-max-sps", type=int, default=Options.history_max_sps, help="grow history only at sizes up to this"
    )
    parser.add_argument(
        "--baseline-full-max-sps",
        type=int,
        default=Options.baseline_full_max_sps,
        help="above this size the baseline runs only its first and regular polls",
    )
    parser.add_argument("--cold-runs", type=int, help=f"cold start repetitions (default {Options.cold_runs})")
    parser.add_argument(
        "--no-inline-compare",
        action="store_true",
        help="do not also poll each size through the one-run path (WORK_INLINE_MAX_PRINCIPALS set high)",
    )
    parser.add_argument(
        "--fanout",
        action="store_true",
        help=f"also run the work queue fan-out benchmark ({FANOUT_PRINCIPALS:,} SPs; "
        f"{QUICK_FANOUT_PRINCIPALS:,} with --quick)",
    )
    parser.add_argument("--fanout-principals", type=int, help="the fan-out tenant's size (implies --fanout)")
    parser.add_argument("--fanout-only", action="store_true", help="run the fan-out benchmark only (no sizes)")
    parser.add_argument("--fanout-job-ratio", type=float, default=Options.fanout_job_ratio)
    parser.add_argument("--fanout-workers", default="1,2,4", help="worker processes per measured sweep")
    parser.add_argument("--fanout-first-workers", type=int, default=Options.fanout_first_workers)
    parser.add_argument("--fanout-regular-workers", default="1,2", help="worker processes per measured regular poll")
    parser.add_argument("--fanout-inline-max", type=int, help="WORK_INLINE_MAX_PRINCIPALS in the fan-out run")
    parser.add_argument(
        "--tenants",
        type=int,
        help=f"also run the many-tenants benchmark with this many tenants (--tenants-only alone: {TENANTS}; "
        f"{QUICK_TENANTS} with --quick)",
    )
    parser.add_argument("--tenants-only", action="store_true", help="run the many-tenants benchmark only (no sizes)")
    parser.add_argument("--jobs-per-tenant", type=int, default=Options.jobs_per_tenant)
    parser.add_argument("--tenant-job-ratio", type=float, default=Options.tenant_job_ratio)
    parser.add_argument("--tenant-workers", default="1,2,4", help="worker processes per measured regular poll")
    parser.add_argument("--tenant-first-workers", type=int, default=Options.tenant_first_workers)
    parser.add_argument(
        "--tenant-repeats", type=int, default=Options.tenant_repeats, help="rounds of regular polls (the median shown)"
    )
    parser.add_argument(
        "--tenant-warm-seconds",
        type=float,
        default=Options.tenant_warm_seconds,
        help="workers are started this long before the dispatch",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown report")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, dest="json_out", help="every figure, as JSON")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="measure nothing: write the report from an earlier run's JSON"
    )
    parser.add_argument(
        "--note", action="append", default=[], help="with --render: a sentence shown under 'This run' (repeatable)"
    )
    parser.add_argument(
        "--fanout-from",
        type=Path,
        metavar="JSON",
        help="with --render: take the fan-out figures from this other run's JSON (a separate --fanout-only run)",
    )
    parser.add_argument(
        "--provisioning-logs-from",
        type=Path,
        metavar="JSON",
        help="with --render: add the provisioning-log figures of a `python -m bench.provisioning_logs` run's JSON",
    )
    parser.add_argument(
        "--tenants-from",
        type=Path,
        metavar="JSON",
        help="with --render: take the many-tenants figures from this other run's JSON (a --tenants-only run)",
    )
    args = parser.parse_args(argv)
    default_sizes = QUICK_SIZES if args.quick else Options.sizes
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else default_sizes
    if not sizes or any(n < 1 for n in sizes):
        parser.error("--sizes must be positive whole numbers")
    fanout_principals = args.fanout_principals or 0
    if not fanout_principals and (args.fanout or args.fanout_only):
        fanout_principals = QUICK_FANOUT_PRINCIPALS if args.quick else FANOUT_PRINCIPALS
    if args.fanout_only or args.tenants_only:
        sizes = ()
    tenant_count = args.tenants or 0
    if not tenant_count and args.tenants_only:
        tenant_count = QUICK_TENANTS if args.quick else TENANTS
    if tenant_count and (tenant_count < 2 or args.jobs_per_tenant < 1 or args.tenant_repeats < 1):
        parser.error("--tenants needs at least 2 tenants, --jobs-per-tenant and --tenant-repeats at least 1")
    return Options(
        sizes=tuple(sorted(set(sizes))),
        latency_ms=args.latency_ms,
        job_ratio=args.job_ratio,
        seed=args.seed,
        cycle_seconds=args.cycle_seconds,
        throttle_every=args.throttle_every,
        throttle_retry_after=args.throttle_retry_after,
        api_samples=args.api_samples or (QUICK_API_SAMPLES if args.quick else Options.api_samples),
        history_multiplier=max(1, args.history_multiplier),
        history_max_sps=args.history_max_sps,
        baseline_full_max_sps=args.baseline_full_max_sps,
        cold_runs=args.cold_runs or (QUICK_COLD_RUNS if args.quick else Options.cold_runs),
        inline_compare=not args.no_inline_compare,
        fanout_principals=fanout_principals,
        fanout_job_ratio=args.fanout_job_ratio,
        fanout_workers=_counts(args.fanout_workers),
        fanout_first_workers=args.fanout_first_workers,
        fanout_regular_workers=_counts(args.fanout_regular_workers),
        fanout_inline_max=args.fanout_inline_max,
        tenants=tenant_count,
        jobs_per_tenant=args.jobs_per_tenant,
        tenant_job_ratio=args.tenant_job_ratio,
        tenant_workers=_counts(args.tenant_workers),
        tenant_first_workers=args.tenant_first_workers,
        tenant_repeats=args.tenant_repeats,
        tenant_warm_seconds=args.tenant_warm_seconds,
        out=args.out,
        json_out=args.json_out,
        command=_command_line(argv if argv is not None else sys.argv[1:]),
        render=args.render,
        fanout_from=args.fanout_from,
        provisioning_logs_from=args.provisioning_logs_from,
        tenants_from=args.tenants_from,
        notes=tuple(args.note),
    )


def _command_line(argv: list[str]) -> str:
    """The options that shape the measurements (where the output goes does not)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in (
            "--out",
            "--json",
            "--render",
            "--fanout-from",
            "--provisioning-logs-from",
            "--tenants-from",
            "--note",
        ):
            skip = "=" not in arg
            continue
        kept.append(arg)
    return " ".join(["bench/run.sh", *kept])


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    if options.render is not None:
        results = json.loads(options.render.read_text())
        if options.fanout_from is not None:
            other = json.loads(options.fanout_from.read_text())
            results["fanout"] = other["fanout"]
            results["fanout"]["run"] = {
                "command": other["options"]["command"],
                "date": other["machine"]["date"],
                "minutes": other["totalSeconds"] / 60,
                "foreignLoad": other["machine"].get("foreignLoad"),
            }
        if options.provisioning_logs_from is not None:
            other = json.loads(options.provisioning_logs_from.read_text())
            results["provisioningLogs"] = other["provisioningLogs"]
            results["provisioningLogs"]["run"] = {
                "command": other["command"],
                "date": other["machine"]["date"],
                "minutes": other["totalSeconds"] / 60,
                "foreignLoad": other["machine"].get("foreignLoad"),
            }
        if options.tenants_from is not None:
            other = json.loads(options.tenants_from.read_text())
            results["tenants"] = other["tenants"]
            results["tenants"]["run"] = {
                "command": other["options"]["command"],
                "date": other["machine"]["date"],
                "minutes": other["totalSeconds"] / 60,
                "foreignLoad": other["machine"].get("foreignLoad"),
                "commit": other["machine"].get("commit"),
                "calibration": other.get("calibration"),
                "latencyMs": other["options"]["latency_ms"],
                "cycleSeconds": other["options"]["cycle_seconds"],
            }
        if options.notes:
            results["notes"] = list(options.notes)
        results["targets"] = report.targets(results)
        merged = (options.fanout_from, options.provisioning_logs_from, options.tenants_from)
        if any(path is not None for path in merged):
            # The merged figures, so the JSON holds what the report shows.
            options.json_out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    else:
        results = run(options)
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        options.json_out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(report.render(results))
    written = options.out if options.render else f"{options.out} and {options.json_out}"
    print(f"wrote {written} ({results['totalSeconds']:.0f} s of measuring)", file=sys.stderr)
    for target in results["targets"]:
        verdict = {True: "met    ", False: "NOT MET", None: "n/a    "}[target["met"]]
        print(f"  {verdict}  {target['name']}: {target['measured']}", file=sys.stderr)
    return 0
