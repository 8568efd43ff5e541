"""HTTP API latency over real HTTP: `python -m shared serve` (uvicorn) on a loopback port.

Requests are sent one at a time on one keep-alive connection (`httpx.Client`); each sample is
the time from sending the request to having read the whole body. A few warm-up requests per
endpoint are not counted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from devtools.azurite import stop_process

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], pct: float) -> float:
    """Linear-interpolated percentile (statistics.quantiles, inclusive)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]


class ApiServer:
    """`python -m shared serve` in a subprocess, with `client` pointed at it."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()
        self.client = httpx.Client(base_url=self.base_url, timeout=120.0)

    def start(self, timeout: float = 60.0) -> ApiServer:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "shared", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"`python -m shared serve` exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                if self.client.get("/api/openapi.json").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("`python -m shared serve` did not start")
            time.sleep(0.05)

    def log_tail(self, chars: int = 3000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-chars:]

    def stop(self) -> None:
        self.client.close()
        self._stderr.close()
        stop_process(self._process)
        self._process = None

    def get_json(self, path: str) -> Any:
        response = self.client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}; the server said:\n{self.log_tail()}")
        return response.json()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def executions_path(job: dict[str, Any]) -> str:
    sp, job_id = quote(job["servicePrincipalId"], safe=""), quote(job["jobId"], safe="")
    return f"/api/v1/jobs/{sp}/{job_id}/executions"


def busiest_job(server: ApiServer) -> dict[str, Any] | None:
    """A job whose history grows fastest: one that has run, with the shortest schedule interval."""
    jobs = server.get_json("/api/v1/jobs")["value"]
    ran = [job for job in jobs if job.get("lastExecution")]
    if not ran:
        return None
    return min(
        ran,
        key=lambda job: (
            job.get("scheduleIntervalSeconds") or float("inf"),
            job["servicePrincipalId"],
            job["jobId"],
        ),
    )


def count_executions(server: ApiServer, job: dict[str, Any]) -> int:
    url: str | None = f"{executions_path(job)}?top=1000"
    total = 0
    while url:
        page = server.get_json(url)
        total += len(page["value"])
        url = page.get("nextLink")
    return total


def sample(server: ApiServer, path: str, samples: int, warmup: int = 3) -> dict[str, Any]:
    times: list[float] = []
    size = 0
    for i in range(warmup + samples):
        started = time.perf_counter()
        response = server.client.get(path)
        body = response.content
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}; the server said:\n{server.log_tail()}")
        if i >= warmup:
            times.append(elapsed * 1000)
            size = len(body)
    return {
        "samples": len(times),
        "p50ms": percentile(times, 50),
        "p95ms": percentile(times, 95),
        "meanMs": statistics.fmean(times),
        "bytes": size,
    }


def measure(server: ApiServer, job: dict[str, Any] | None, samples: int) -> dict[str, Any]:
    """Latency of the three endpoints and the history they serve at this moment."""
    summary = server.get_json("/api/v1/summary")
    result: dict[str, Any] = {
        "executionsStored": summary["executions"]["total"],
        "jobs": summary["jobs"]["total"],
        "endpoints": {
            "summary": sample(server, "/api/v1/summary", samples),
            "jobs": sample(server, "/api/v1/jobs", samples),
        },
    }
    if job is not None:
        result["endpoints"]["executions"] = sample(server, executions_path(job), samples)
        result["jobExecutionsStored"] = count_executions(server, job)
    return result
