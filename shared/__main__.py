"""Local commands on the same code paths as the Function app's triggers.

python -m shared poll                          one poll, exactly as the timer runs it
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


async def _poll(discover: bool) -> dict[str, Any]:
    from shared.graph.reader import close_graph_reader
    from shared.poll import run_poll
    from shared.storage.store import close_store

    try:
        return await run_poll(trigger="discovery" if discover else "cli", discover=discover)
    finally:
        await close_graph_reader()
        await close_store()


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


def _command_poll(discover: bool) -> int:
    from shared.poll import PollFailedError

    try:
        load_settings()  # fail fast, before any client is made
        record = asyncio.run(_poll(discover))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except PollFailedError as error:
        print(f"poll failed: {error}", file=sys.stderr)
        print(json.dumps(error.record, separators=(",", ":")))
        return 1
    print(json.dumps(record, separators=(",", ":")))
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
    commands.add_parser("retention", help="delete history older than RETENTION_DAYS")
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_sdk_loggers()
    if args.command == "poll":
        return _command_poll(args.discover)
    if args.command == "retention":
        return _command_retention()
    return _command_serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
