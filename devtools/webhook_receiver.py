"""A webhook receiver on loopback: records every request it gets and can be told to fail.

Tests point the alert targets at it (`receiver.url("/teams")`) and count what arrived, when,
and with which headers; `fail_next(2)` answers the next two requests with 500 (or 429 with a
Retry-After). From a shell, it prints each request as one JSON line:

    python -m devtools.webhook_receiver --port 8099 --secret <the ALERT_WEBHOOK_SECRET>

then set e.g. ALERT_WEBHOOK_URL=http://127.0.0.1:8099/hook. It binds loopback only.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from devtools.graph_emulator.server import is_loopback, url_host

MAX_BODY = 1_000_000


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the receiver answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival
    status: int
    signature_valid: bool | None = None  # None: no secret to check against

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class _Failure:
    count: int
    status: int
    retry_after: str | None
    path: str | None


@dataclass
class _State:
    secret: str | None
    received: list[Received] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)
    echo: bool = False

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    # Imported here: the receiver checks signatures exactly as docs/alerts.md tells receivers to.
    from shared.alerts.webhooks import verify_signature

    return verify_signature(secret, headers, body)


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length)
            headers = dict(self.headers.items())
            with state.lock:
                failure = next(
                    (f for f in state.failures if f.count > 0 and f.path in (None, self.path)),
                    None,
                )
                if failure is not None:
                    failure.count -= 1
                status = failure.status if failure is not None else 200
                has_signature = any(k.lower() == "x-entra-sync-monitor-signature" for k in headers)
                signed = _verify(state.secret, headers, body) if state.secret and has_signature else None
                item = Received(self.path, headers, body, time.time(), status, signed)
                state.received.append(item)
                state.arrived.notify_all()
            if state.echo:
                text = body.decode("utf-8", "replace")
                print(json.dumps({"path": self.path, "status": status, "signatureValid": signed, "body": text}))
            answer = b"1" if status < 300 else b'{"error":"told to fail"}'
            self.send_response(status)
            if failure is not None and failure.retry_after is not None:
                self.send_header("Retry-After", failure.retry_after)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read `received` instead

    return Handler


class WebhookReceiver:
    """`with WebhookReceiver() as receiver:` then POST to `receiver.url("/hook")`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, secret: str | None = None) -> None:
        if not is_loopback(host):
            raise ValueError(f"the receiver binds loopback only, not {host!r}")
        self._state = _State(secret)
        self._server = ThreadingHTTPServer((host.strip("[]"), port), _handler(self._state))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://{url_host(self.host)}:{self.port}{path}"

    def fail_next(
        self, count: int, *, status: int = 500, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """Answer the next `count` requests (to `path`, or any) with `status`."""
        with self._state.lock:
            after = None if retry_after is None else f"{retry_after:g}"
            self._state.failures.append(_Failure(count, status, after, path))

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    def accepted(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (what a real target would have taken), to `path` or any."""
        return [r for r in self.received if 200 <= r.status < 300 and path in (None, r.path)]

    def wait_for(self, count: int, *, timeout: float = 10.0, path: str | None = None) -> list[Received]:
        """Block until `count` accepted requests arrived (to `path`, or any), or time out."""
        deadline = time.monotonic() + timeout
        with self._state.arrived:
            while True:
                got = [r for r in self._state.received if 200 <= r.status < 300 and path in (None, r.path)]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._state.arrived.wait(left)

    def clear(self) -> None:
        with self._state.lock:
            self._state.received.clear()
            self._state.failures.clear()

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", help="check X-Entra-Sync-Monitor-Signature with this key")
    parser.add_argument("--fail", type=int, default=0, help="answer the first N requests with 500")
    args = parser.parse_args()
    receiver = WebhookReceiver(host=args.host, port=args.port, secret=args.secret)
    receiver._state.echo = True
    if args.fail:
        receiver.fail_next(args.fail)
    print(f"listening on {receiver.url('/')} (Ctrl-C stops)", flush=True)
    receiver.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
