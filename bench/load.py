"""A bounded load test of the HTTP API on loopback: `python -m bench.load`.

Starts Azurite and the Graph emulator, polls the demo tenant (with some history), serves the
API with `python -m shared serve`, then runs N concurrent clients for D seconds over a mix of
endpoints and reports throughput, latency percentiles and errors. Every request goes to
127.0.0.1 only; the loop stops by itself at the deadline (and at --max-requests). Exits 1 if
any request failed or answered 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from bench.api_latency import percentile
from devtools.azurite import ROOT, AzuriteServer, free_port, stop_process, wait_for_port
from devtools.graph_emulator import DEMO_TENANT_ID, EmulatorServer, demo_tenant


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(name, []).append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _poll(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "shared", "poll"], cwd=ROOT, env=env, check=True, capture_output=True)


async def _client(
    http: httpx.AsyncClient, paths: list[tuple[str, str]], results: Results, stop: float, budget: list[int]
) -> None:
    while time.monotonic() < stop and budget[0] > 0:
        budget[0] -= 1
        name, path = random.choice(paths)
        started = time.perf_counter()
        try:
            response = await http.get(path)
            results.add(name, time.perf_counter() - started, response.status_code)
        except httpx.HTTPError as error:
            results.errors.append(f"{name}: {type(error).__name__}")


async def _load(base: str, clients: int, seconds: float, max_requests: int) -> tuple[Results, float]:
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=clients)) as http:
        jobs = (await http.get("/api/v1/jobs")).json()["value"]
        job = next(j for j in jobs if j["lastExecution"])
        job_path = f"/api/v1/jobs/{quote(job['servicePrincipalId'], safe='')}/{quote(job['jobId'], safe='')}"
        paths = [
            ("jobs", "/api/v1/jobs"),
            ("jobs?health", "/api/v1/jobs?health=quarantined&health=failing"),
            ("summary", "/api/v1/summary"),
            ("summary?7d", "/api/v1/summary?window=7d"),
            ("job", job_path),
            ("job executions", f"{job_path}/executions?top=50"),
            ("executions feed", "/api/v1/executions?state=Failed"),
            ("health", "/api/health"),
        ]
        results = Results()
        budget = [max_requests]
        started = time.monotonic()
        await asyncio.gather(*(_client(http, paths, results, started + seconds, budget) for _ in range(clients)))
        return results, time.monotonic() - started


def report(results: Results, elapsed: float, clients: int) -> str:
    total = sum(len(v) for v in results.latencies.values())
    lines = [
        f"{clients} clients, {elapsed:.1f} s, {total} requests, {total / elapsed:.0f} requests/s, "
        f"statuses {dict(sorted(results.statuses.items()))}, transport errors {len(results.errors)}",
        "",
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in sorted(results.latencies.items()):
        lines.append(
            f"| {name} | {len(values)} | {percentile(values, 50) * 1000:.0f} | {percentile(values, 95) * 1000:.0f}"
            f" | {percentile(values, 99) * 1000:.0f} | {max(values) * 1000:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--history-polls", type=int, default=6, help="polls (one cycle apart) before the load")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 500 and 0 < args.seconds <= 600):
        parser.error("--clients 1-500 and --seconds up to 600: the test is bounded")

    with AzuriteServer() as azurite, EmulatorServer(tenant=demo_tenant()) as emulator:
        env = {
            **os.environ,
            "AZURE_TENANT_ID": DEMO_TENANT_ID,
            "GRAPH_BASE_URL": emulator.base_url,
            "GRAPH_AUTH": "none",
            "AzureWebJobsStorage": azurite.connection_string,
            "TABLE_PREFIX": "load",
        }
        for _ in range(args.history_polls):
            _poll(env)
            emulator.advance_clock(40 * 60)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "shared", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, 30, server)
            results, elapsed = asyncio.run(
                _load(f"http://127.0.0.1:{port}", args.clients, args.seconds, args.max_requests)
            )
        finally:
            stop_process(server)
    print(report(results, elapsed, args.clients))
    failed = results.errors or any(status >= 500 for status in results.statuses)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
