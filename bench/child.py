"""One measured poll in its own process: `python -m bench.child app|baseline [--discover]`.

Settings come from the environment, as for `python -m shared poll`. The process prints one
JSON line last: the poll's wall time (measured here, around the poll call only), the RSS
before the poll and the peak RSS (VmHWM) after it, and the poll's own record (kept for
cross-checking; the harness counts Graph requests and Table operations itself).

A poll that fans out (more than WORK_INLINE_MAX_PRINCIPALS service principals to read) returns
`dispatched` with none of its work items done: the child then does the items itself, as
`python -m shared poll` does (shared.work.drain_own_poll), so the measured poll is the whole
poll and its record the completed one.

The measured poll runs warm, as in a Functions worker that has polled before: with `--warm-sp`
the app first polls that one service principal (SERVICE_PRINCIPAL_IDS) into other tables, which
loads every module and code path a poll uses (msgraph's lazily imported request builders, the
async Table and HTTP clients). With `--handshake` the child then prints READY and waits for a
line on stdin, so the harness can reset its counters after the warm-up; only then is the clock
started. The import and warm-up cost is in the harness's `processSeconds` and in cold start.

`python -m bench.child history --emulator URL --until-runs N --advance S --max-polls K` polls the
app repeatedly, moving the emulator clock on by S seconds before each poll, until the polls
have stored N runs: how the benchmark grows stored history.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Imported lazily by the app's poll; a module missing here is simply not pre-imported.
_APP_LAZY_MODULES = ("shared.graph.reader",)


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB (Linux); empty elsewhere."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


async def _close_app_clients() -> None:
    """What `python -m shared poll` does after its poll: close the per-process clients."""
    for module_name, function in (
        ("shared.graph.reader", "close_graph_reader"),
        ("shared.storage.store", "close_store"),
    ):
        module = sys.modules.get(module_name)
        close = getattr(module, function, None) if module is not None else None
        if close is not None:
            await close()


def _handshake(enabled: bool) -> None:
    """Say READY and wait for GO: the harness resets its counters in between."""
    if enabled:
        print("READY", flush=True)
        sys.stdin.readline()


async def _app_poll(
    discover: bool, warm_env: dict[str, str] | None = None, handshake: bool = False
) -> tuple[dict[str, Any], float, dict[str, int]]:
    from shared import poll
    from shared.settings import load_settings

    settings = load_settings()
    if warm_env is not None:
        # A tiny poll of one pinned service principal into other tables: every module and code path
        # a poll needs is loaded, as in a Functions worker that has polled before.
        try:
            await poll.poll_tenant(load_settings(warm_env), trigger="bench-warmup")
        except poll.PollFailedError:
            pass
        finally:
            await _close_app_clients()
    _handshake(handshake)
    kwargs: dict[str, Any] = {"trigger": "bench"}
    if discover:
        kwargs["discover"] = True
    before = proc_status()
    try:
        started = time.perf_counter()
        try:
            record = await poll.poll_tenant(settings, **kwargs)
        except poll.PollFailedError as error:
            record = error.record
        if record.get("status") == "dispatched":
            # Fanned out through the work queue (more than WORK_INLINE_MAX_PRINCIPALS to read): the
            # poll is not done until its items are, so this process does them, as `python -m shared
            # poll` does with no worker running (shared.work.drain_own_poll), inside the clock.
            record = await _drain_dispatched(settings, record, started)
        return record, time.perf_counter() - started, before
    finally:
        await _close_app_clients()


async def _drain_dispatched(settings: Any, record: dict[str, Any], started: float) -> dict[str, Any]:
    from shared.work import drain_own_poll

    dispatched_seconds = time.perf_counter() - started
    deadline = time.monotonic() + settings.poll_deadline_seconds
    completed = await drain_own_poll(settings, record["startedAt"], record["pollId"], deadline)
    completed = dict(completed or record)
    completed["benchDispatchSeconds"] = dispatched_seconds
    return completed


def supports_discovery() -> bool:
    from shared.poll import poll_tenant

    return "discover" in inspect.signature(poll_tenant).parameters


def _import_app() -> float:
    started = time.perf_counter()
    importlib.import_module("shared.poll")
    for name in _APP_LAZY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return time.perf_counter() - started


def _measure(which: str, discover: bool, warm_sp: str | None, handshake: bool) -> dict[str, Any]:
    if which == "app":
        import_seconds = _import_app()
        warm_env = None
        if warm_sp:
            prefix = os.environ.get("TABLE_PREFIX") or "syncmon"
            warm_env = {**os.environ, "TABLE_PREFIX": f"warm{prefix}"[:41], "SERVICE_PRINCIPAL_IDS": warm_sp}
            # With PROVISIONING_LOGS on, one page of the log is enough to load the collector's code path.
            warm_env["PROVISIONING_LOG_PAGES"] = "1"
        record, seconds, before = asyncio.run(_app_poll(discover, warm_env, handshake))
        summary = {
            "status": record.get("status"),
            "jobsRead": record.get("jobsRead"),
            "jobsChanged": record.get("jobsChanged"),
            "runsStored": record.get("runsStored"),
            "servicePrincipalsScanned": record.get("servicePrincipalsScanned"),
            "servicePrincipalsWithJobs": record.get("servicePrincipalsWithJobs"),
            "discovery": record.get("discovery"),
            "graph": record.get("graph"),
            "errorsByKind": record.get("errorsByKind"),
            "work": record.get("work"),
            "provisioningLogs": record.get("provisioningLogs"),
            "durationSeconds": record.get("durationSeconds"),
            "dispatchSeconds": record.get("benchDispatchSeconds"),
        }
    else:
        started = time.perf_counter()
        from bench import baseline

        import_seconds = time.perf_counter() - started
        _handshake(handshake)
        before = proc_status()
        started = time.perf_counter()
        try:
            summary = baseline.poll()
        except Exception as error:  # the harness reports it as a failed poll
            summary = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        seconds = time.perf_counter() - started
    after = proc_status()
    return {
        "pollSeconds": seconds,
        "importSeconds": import_seconds,
        "rssBeforePollKB": before.get("VmRSS"),
        "peakRssKB": after.get("VmHWM"),
        "record": summary,
    }


def _history(emulator: str, until_runs: int, advance: float, max_polls: int) -> dict[str, Any]:
    from devtools.graph_emulator import EmulatorControl

    _import_app()
    stored = polls = 0
    statuses: list[str] = []
    with EmulatorControl(emulator) as control:
        while stored < until_runs and polls < max_polls:
            control.advance_clock(advance)
            record, _, _ = asyncio.run(_app_poll(False))
            polls += 1
            stored += int(record.get("runsStored") or 0)
            statuses.append(str(record.get("status")))
    return {"polls": polls, "runsStored": stored, "statuses": statuses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("which", choices=("app", "baseline", "history"))
    parser.add_argument("--discover", action="store_true")
    parser.add_argument("--warm-sp", help="app: warm up with a poll of this one service principal first")
    parser.add_argument("--handshake", action="store_true", help="print READY and wait for a line before polling")
    parser.add_argument("--emulator", help="emulator root URL (history)")
    parser.add_argument("--until-runs", type=int, default=0)
    parser.add_argument("--advance", type=float, default=7200.0)
    parser.add_argument("--max-polls", type=int, default=40)
    args = parser.parse_args(argv)
    if args.which == "history":
        result = _history(args.emulator, args.until_runs, args.advance, args.max_polls)
    else:
        result = _measure(args.which, args.discover, args.warm_sp, args.handshake)
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
