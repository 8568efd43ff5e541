"""`python -m devtools.graph_emulator`: serve the emulator and announce its Graph base URL.

Prints exactly one line, `GRAPH_BASE_URL=http://HOST:PORT/v1.0`, on stdout once it accepts
connections (logs go to stderr), so a parent process can read the port it picked.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .demo import demo_tenant
from .generated import generated_tenant
from .server import bind_socket, is_loopback, url_host, uvicorn_config
from .state import EmulatorState
from .tenant import Tenant


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: str) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self._announce, flush=True)


def _tenant(spec: str, seed: int) -> Tenant:
    if spec == "demo":
        return demo_tenant(seed)
    if spec.startswith("generated:"):
        size, _, ratio = spec.removeprefix("generated:").partition(":")
        return generated_tenant(int(size), float(ratio or 0.3), seed)
    loaded = json.loads(Path(spec).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{spec}: a tenant file holds one JSON object")
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.graph_emulator", description="Microsoft Graph emulator for Entra Sync Monitor"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tenant", default="demo", help="demo | generated:N[:JOB_RATIO] | path/to/tenant.json")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--frozen-clock", action="store_true", help="the clock moves only when advanced through the control API"
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="listen on a non-loopback address (it is a dev tool: no auth)"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(f"refusing to listen on non-loopback host {args.host!r} without --allow-remote")
    try:
        tenant = _tenant(args.tenant, args.seed)
    except (OSError, ValueError) as exc:
        parser.error(f"--tenant {args.tenant}: {exc}")
    state = EmulatorState(tenant, latency_ms=args.latency_ms, frozen_clock=args.frozen_clock)
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    announce = f"GRAPH_BASE_URL=http://{url_host(args.host)}:{port}/v1.0"
    server = _AnnouncingServer(uvicorn_config(create_app(state), args.log_level), announce)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
