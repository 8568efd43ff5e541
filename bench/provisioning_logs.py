"""The provisioning-log benchmark (issue 16, item 6): `python -m bench.provisioning_logs`.

What one poll costs when the provisioning log (`GET /auditLogs/provisioning`) holds a job with
10,000 failure events in the window the collector reads (`shared/provisioning_logs.py`): Graph
requests, Table operations and entities written, poll time; how many polls the backlog takes with
the default `PROVISIONING_LOG_PAGES` (20 pages of 500); and a steady-state poll afterwards. The
same tenant polled with `PROVISIONING_LOGS=off` is the baseline, in the same run.

Harness steps (the app is driven only through `bench.child`, one poll per process, counted from
outside as in `python -m bench`):

1. The emulator clock (frozen) is set `EMULATOR_BEHIND` (3 h) behind the wall clock, then a
   generated tenant of `--principals` SPs plus the "Benchmark Failing SCIM App" with
   `--failure-events` is built: its log holds the day before the emulator's now (E). The collector
   windows on the *wall* clock (`datetime.now` in shared/poll.py) and reads only up to 15 minutes
   before it, so with the emulator behind, every event of that day is inside the readable range.
2. Per mode (off, counts, samples) its own tables (prefix `plog<mode>`): a setup poll with the
   logs off stores the tenant's jobs (not measured for the logs; the later polls are no-change
   polls for the jobs, so the only difference between modes is the log collection).
3. The collector's cursor is seeded (`Store.save_log_cursor({"cursor": floor_hour(E - 24 h),
   "windowHours": 6})`, 6 being the collector's default window): a first poll would otherwise start
   at the wall clock's day back, 3 h after the log's first events. The window then holds the whole
   day: ground truth from the emulator's control API (`/provisioning`) is recorded next to it.
4. Polls with the mode on until the record's `provisioningLogs.behindHours` is 0 ("catch-up").
5. "Steady, same hour": one more poll; the cursor is already at the wall clock's last safe hour, so
   unless the wall clock's hour turned, nothing is read.
6. "Steady, hour turned": the cursor set one hour back (as when the wall clock's hour turns), the
   emulator still frozen (that hour has no events): the cost of the hourly read of a quiet log.
7. Baseline: `--off-repeats` no-change polls with the logs off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import ForeignLoad, machine_info  # noqa: E402
from bench.run import EmulatorProcess, Harness, Options  # noqa: E402
from bench.table_counter import TableCounter  # noqa: E402
from devtools.azurite import AzuriteServer  # noqa: E402
from devtools.graph_emulator import generated_tenant  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "provisioning-logs.json"
EMULATOR_BEHIND = timedelta(hours=3)
FIRST_WINDOW_HOURS = 6  # the collector's own default (shared/domain/log_cursor.py)
LOG_PATH = "/auditLogs/provisioning"
NON_SUCCESS = ("failure", "warning", "skipped")


def _floor_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _store_call(env: dict[str, str], action: str, state: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Load or save the collector's cursor through the app's own store (a harness step, not measured)."""
    from shared.settings import load_settings
    from shared.storage.store import close_store, open_store

    async def go() -> dict[str, Any] | None:
        try:
            store = open_store(load_settings(env))
            await store.ensure_error_tables()
            if action == "save":
                await store.save_log_cursor(state or {})
                return None
            return await store.load_log_cursor()
        finally:
            await close_store()

    return asyncio.run(go())


def _log_requests(measured: dict[str, Any]) -> int:
    return sum(count for path, count in (measured.get("graphByPath") or {}).items() if LOG_PATH in path)


def _row(label: str, measured: dict[str, Any]) -> dict[str, Any]:
    section = (measured.get("record") or {}).get("provisioningLogs") or {}
    tables = measured.get("tables") or {}
    return {
        "label": label,
        "status": measured.get("status"),
        "pollSeconds": measured.get("pollSeconds"),
        "processSeconds": measured.get("processSeconds"),
        "graphRequests": measured.get("graphRequests"),
        "logRequests": _log_requests(measured),
        "tableOperations": measured.get("tableOperations"),
        "entitiesWritten": measured.get("entitiesWritten"),
        "dataEntitiesWritten": measured.get("dataEntitiesWritten"),
        "peakRssMB": measured.get("peakRssMB"),
        "provisioningLogs": section or None,
        "tables": tables,
        "graphByPath": measured.get("graphByPath"),
    }


class ProvisioningLogsRun:
    def __init__(self, harness: Harness, args: argparse.Namespace) -> None:
        self.harness = harness
        self.args = args
        self.emulator = harness.emulator

    def log(self, message: str) -> None:
        self.harness.log(f"provisioning logs: {message}")

    def poll(self, label: str, prefix: str, mode: str, pages: int | None = None) -> dict[str, Any]:
        extra = {"PROVISIONING_LOGS": mode}
        if pages is not None:
            extra["PROVISIONING_LOG_PAGES"] = str(pages)
        measured = self.harness.poll("app", prefix, self.tenant_id, extra_env=extra)
        row = _row(label, measured)
        section = row["provisioningLogs"] or {}
        self.log(
            f"{mode:7} {label}: {row['pollSeconds']:.2f} s, {row['logRequests']} log req, "
            f"{section.get('eventsRead')} events, {section.get('rowsWritten')} rows, "
            f"{row['entitiesWritten']} writes, behind {section.get('behindHours')} h, {section.get('status')}"
        )
        return row

    def ground_truth(self, cursor: datetime) -> dict[str, Any]:
        events = self.emulator.provisioning_events()
        since = cursor.timestamp()
        in_window = [e for e in events if _parse(e["activityDateTime"]).timestamp() >= since]
        non_success = [e for e in in_window if e.get("status") in NON_SUCCESS]
        failing = [e for e in non_success if e.get("servicePrincipalId") == self.failing_sp]
        jobs = {e.get("jobId") for e in non_success}
        return {
            "eventsServed": len(events),
            "eventsInWindow": len(in_window),
            "nonSuccessInWindow": len(non_success),
            "failingJobNonSuccess": len(failing),
            "failingJobFailures": sum(1 for e in failing if e.get("status") == "failure"),
            "jobsWithNonSuccess": len(jobs),
            "pagesNeeded": -(-len(non_success) // 500),
        }

    def run(self) -> dict[str, Any]:
        args = self.args
        n, ratio, seed = args.principals, args.job_ratio, args.seed
        wall = datetime.now(UTC)
        emulator_now = _parse(self.emulator.advance_clock(-EMULATOR_BEHIND.total_seconds()))
        self.log(f"wall {_iso(wall)}, emulator {_iso(emulator_now)}; tenant {n} SPs + {args.failure_events} failures")
        self.emulator.set_generated_tenant(n, ratio, seed, failure_events=args.failure_events)
        tenant = generated_tenant(n, ratio, seed, now=emulator_now.timestamp(), failure_events=args.failure_events)
        self.tenant_id = tenant.tenant_id
        principals = tenant.service_principals()
        self.failing_sp = str(principals[-1]["id"])
        self.harness.warm_sp = next(
            (str(sp["id"]) for i, sp in enumerate(principals[:200]) if tenant.profiles(i)), str(principals[0]["id"])
        )
        cursor = _floor_hour(emulator_now - timedelta(days=1))
        truth = self.ground_truth(cursor)
        self.log(f"ground truth from {_iso(cursor)}: {truth}")
        result: dict[str, Any] = {
            "servicePrincipals": n,
            "jobRatio": ratio,
            "seed": seed,
            "failureEvents": args.failure_events,
            "latencyMs": args.latency_ms,
            "pages": args.pages,
            "wallAtSetup": _iso(wall),
            "emulatorNow": _iso(emulator_now),
            "seededCursor": _iso(cursor),
            "groundTruth": truth,
            "modes": {},
        }
        for mode in ("off", *args.modes):
            prefix = f"plog{mode}"
            entry: dict[str, Any] = {"prefix": prefix}
            entry["setup"] = self.poll("setup (stores the jobs)", prefix, "off")
            if mode == "off":
                entry["polls"] = [self.poll(f"no-change {i + 1}", prefix, "off") for i in range(args.off_repeats)]
                result["modes"][mode] = entry
                continue
            env = self.harness.env(prefix, self.tenant_id, counted=False)
            _store_call(env, "save", {"cursor": _iso(cursor), "windowHours": FIRST_WINDOW_HOURS})
            catch_up: list[dict[str, Any]] = []
            while len(catch_up) < args.max_polls:
                row = self.poll(f"catch-up {len(catch_up) + 1}", prefix, mode, args.pages)
                catch_up.append(row)
                section = row["provisioningLogs"] or {}
                if section.get("status") != "ok" or not section.get("behindHours"):
                    break
            entry["catchUp"] = catch_up
            entry["steadySameHour"] = self.poll("steady, same hour", prefix, mode, args.pages)
            state = _store_call(env, "load") or {}
            if state.get("cursor"):
                back = _parse(state["cursor"]) - timedelta(hours=1)
                _store_call(env, "save", {**state, "cursor": _iso(back)})
                entry["steadyHourTurnCursor"] = _iso(back)
                entry["steadyHourTurn"] = self.poll("steady, hour turned", prefix, mode, args.pages)
            result["modes"][mode] = entry
        off = [row["pollSeconds"] for row in result["modes"]["off"]["polls"]]
        result["offMedianPollSeconds"] = statistics.median(off) if off else None
        return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    foreign = ForeignLoad().start()
    options = Options(sizes=(), latency_ms=args.latency_ms, job_ratio=args.job_ratio, seed=args.seed)
    results: dict[str, Any] = {"command": _command(args), "machine": machine_info()}
    with AzuriteServer() as azurite, TableCounter(azurite.port) as counter:
        emulator = EmulatorProcess().start()
        try:
            harness = Harness(options, azurite, counter, emulator)
            results["provisioningLogs"] = ProvisioningLogsRun(harness, args).run()
        finally:
            emulator.stop()
    results["totalSeconds"] = time.monotonic() - started
    results["machine"]["foreignLoad"] = foreign.stop()
    return results


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m bench.provisioning_logs"]
    defaults = vars(parse_args([]))
    for name, value in vars(args).items():
        if name != "json_out" and value != defaults[name]:
            text = ",".join(value) if isinstance(value, list | tuple) else value
            parts.append(f"--{name.replace('_', '-')} {text}")
    return " ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.provisioning_logs", description=__doc__.split("\n")[0])
    parser.add_argument("--principals", type=int, default=50, help="generated tenant's service principals")
    parser.add_argument("--failure-events", type=int, default=10_000, help="the failing job's failures in the day")
    parser.add_argument("--job-ratio", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=40, help="Graph latency per HTTP request")
    parser.add_argument("--pages", type=int, help="PROVISIONING_LOG_PAGES (default: the app's, 20)")
    parser.add_argument("--modes", type=lambda s: tuple(s.split(",")), default=("counts", "samples"))
    parser.add_argument("--max-polls", type=int, default=10, help="catch-up polls at most per mode")
    parser.add_argument("--off-repeats", type=int, default=3, help="baseline no-change polls with the logs off")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, dest="json_out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.json_out} ({results['totalSeconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
