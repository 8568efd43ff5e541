"""Local commands on the same code paths as the Function app's triggers.

python -m shared poll                          one poll, exactly as the timer runs it (and its work items)
python -m shared work [--processes N]          drain the work queue, as the queue trigger would
python -m shared serve [--host H] [--port P]   the HTTP API, as the Functions host serves it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from shared.logs import quiet_sdk_loggers
from shared.settings import SettingsError, is_loopback_host, load_settings


async def _poll(discover: bool, dispatch_only: bool) -> dict[str, Any]:
    import time

    from shared.domain.work import DISPATCHED
    from shared.poll import run_poll

    deadline = time.monotonic() + load_settings().poll_deadline_seconds
    try:
        record = await run_poll(trigger="discovery" if discover else "cli", discover=discover)
        if record["status"] != DISPATCHED or dispatch_only:
            return record
        if "tenants" in record:  # several tenants, each poll a queue message: do them here
            from shared.tenant_polls import worst_status
            from shared.work import drain_tenant_polls

            tenants = await drain_tenant_polls(load_settings(), record["tenants"], deadline)
            return {**record, "status": worst_status(tenants), "tenants": tenants}
        # A poll fanned out: with no worker running this process does its items itself.
        from shared.work import drain_own_poll

        return await drain_own_poll(load_settings(), record["startedAt"], record["pollId"], deadline)
    finally:
        await _close_clients()


async def _close_clients() -> None:
    from shared.graph.reader import close_graph_reader
    from shared.storage.store import close_store
    from shared.storage.work_queue import close_work_queue

    await close_graph_reader()
    await close_store()
    await close_work_queue()


async def _work(lease_seconds: int, idle_seconds: float, wait_seconds: float) -> dict[str, Any]:
    from shared.work import LocalWorker, queue_options

    try:
        tally = await LocalWorker(load_settings(), queue_options(), lease_seconds=lease_seconds).run(
            idle_seconds=idle_seconds, wait_seconds=wait_seconds
        )
        return tally.as_dict()
    finally:
        await _close_clients()


def _command_work(processes: int, lease_seconds: int, idle_seconds: float, wait_seconds: float) -> int:
    try:
        load_settings()
        if processes > 1:
            from shared.work import run_processes

            tallies = run_processes(
                processes,
                [
                    *("--lease-seconds", str(lease_seconds)),
                    *("--idle-seconds", str(idle_seconds)),
                    *("--wait-seconds", str(wait_seconds)),
                ],
            )
            print(json.dumps({"processes": tallies}, separators=(",", ":")))
            return 0 if all("exitCode" not in tally for tally in tallies) else 1
        result = asyncio.run(_work(lease_seconds, idle_seconds, wait_seconds))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, separators=(",", ":")))
    return 0


async def _retention() -> dict[str, Any]:
    from shared.retention import run_retention
    from shared.storage.store import close_store

    try:
        return await run_retention()
    finally:
        await close_store()


def _command_retention() -> int:
    try:
        load_settings()
        result = asyncio.run(_retention())
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, separators=(",", ":")))
    return 0


def _command_poll(discover: bool, dispatch_only: bool) -> int:
    from shared.poll import PollFailedError

    try:
        load_settings()  # fail fast, before any client is made
        record = asyncio.run(_poll(discover, dispatch_only))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except PollFailedError as error:
        print(f"poll failed: {error}", file=sys.stderr)
        print(json.dumps(error.record, separators=(",", ":")))
        return 1
    print(json.dumps(record, separators=(",", ":")))
    if "tenants" in record:  # several tenants: each failure is that tenant's; 1 only if all failed
        failed = [t["tenantId"] for t in record["tenants"] if t.get("status") == "failed"]
        if failed:
            print(
                f"poll failed for {len(failed)} of {len(record['tenants'])} tenants: {', '.join(failed)}",
                file=sys.stderr,
            )
        return 1 if record["tenants"] and len(failed) == len(record["tenants"]) else 0
    return 0


def _command_serve(host: str, port: int) -> int:
    import uvicorn

    from shared.api.app import create_app

    try:
        load_settings()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if not is_loopback_host(host):
        print(
            f"warning: serving on {host} without the Functions host's key check; "
            "anyone who can reach it can read the API",
            file=sys.stderr,
        )
    uvicorn.run(create_app(), host=host, port=port, log_level="info")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    poll = commands.add_parser("poll", help="run one poll cycle and print its record as one JSON line")
    poll.add_argument("--discover", action="store_true", help="read every service principal (as discovery does)")
    poll.add_argument(
        "--dispatch-only",
        action="store_true",
        help="a poll fanned out only enqueues its work items (for workers to do) instead of doing them too",
    )
    work = commands.add_parser("work", help="do the work queue's items, as the queue trigger does, until it is empty")
    work.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    work.add_argument(
        "--lease-seconds", type=int, default=60, help="how long a taken item stays invisible between renewals"
    )
    work.add_argument("--idle-seconds", type=float, default=5.0, help="stop after the queues stay empty this long")
    work.add_argument(
        "--wait-seconds",
        type=float,
        default=0.0,
        help="before the first item, wait this long for one (workers started ahead of a poll)",
    )
    commands.add_parser("retention", help="delete history older than RETENTION_DAYS")
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_sdk_loggers()
    if args.command == "poll":
        return _command_poll(args.discover, args.dispatch_only)
    if args.command == "work":
        if args.processes < 1 or args.lease_seconds < 1 or args.idle_seconds < 0 or args.wait_seconds < 0:
            parser.error("--processes and --lease-seconds must be at least 1, --idle/--wait-seconds not negative")
        return _command_work(args.processes, args.lease_seconds, args.idle_seconds, args.wait_seconds)
    if args.command == "retention":
        return _command_retention()
    return _command_serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
