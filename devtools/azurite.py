"""Start and stop Azurite's Table and Queue services (the project's pinned npm package) on free ports.

Used by the tests, the demo and the benchmarks; never by the app, which only reads
`AzureWebJobsStorage`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AZURITE_TABLE = ROOT / "node_modules" / ".bin" / "azurite-table"
AZURITE_QUEUE = ROOT / "node_modules" / ".bin" / "azurite-queue"
# Azurite's well-known development account: published in Azurite's documentation, valid
# only against a local emulator, so not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[Any] | None, stop_signal: int = signal.SIGTERM) -> None:
    """Ask a child process to stop, wait up to 10 s, then kill it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class AzuriteServer:
    """`with AzuriteServer() as azurite:` gives `azurite.connection_string`.

    Data lives in a temporary folder (removed on exit) unless `location` is given, so the
    demo can keep its history between runs."""

    def __init__(self, port: int | None = None, location: Path | None = None) -> None:
        if not AZURITE_TABLE.exists():
            raise RuntimeError(f"{AZURITE_TABLE} is missing: run `npm ci` in {ROOT}")
        self.port = port or free_port()
        self.queue_port = free_port()
        self._own_location = location is None
        self.location = location or Path(tempfile.mkdtemp(prefix="azurite-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._queue_process: subprocess.Popen[bytes] | None = None

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"TableEndpoint={self.table_endpoint};QueueEndpoint={self.queue_endpoint};"
        )

    def start(self) -> AzuriteServer:
        self.location.mkdir(parents=True, exist_ok=True)
        self._process = self._service(AZURITE_TABLE, "table", self.port)
        self._queue_process = self._service(AZURITE_QUEUE, "queue", self.queue_port)
        # Node starts slowly on a loaded 2-core machine: two services, generous waits.
        try:
            wait_for_port(self.port, 90, self._process)
            wait_for_port(self.queue_port, 90, self._queue_process)
        except BaseException:
            self.stop()  # not one of them left running
            raise
        return self

    def _service(self, program: Path, service: str, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(program),
                f"--{service}Host",
                "127.0.0.1",
                f"--{service}Port",
                str(port),
                "--location",
                str(self.location),
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        # SIGINT is Azurite's graceful stop: it saves its data (autosaved only every 5 s).
        stop_process(self._process, signal.SIGINT)
        stop_process(self._queue_process, signal.SIGINT)
        self._process = self._queue_process = None

    def close(self) -> None:
        self.stop()
        if self._own_location:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> AzuriteServer:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
