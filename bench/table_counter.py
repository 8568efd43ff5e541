"""A counting TCP proxy in front of Azurite's Table endpoint: Table operations counted outside the app.

Every HTTP request a client sends is parsed just enough to classify it (request line, headers,
body framing) and forwarded unchanged; responses are piped back untouched. A `$batch` request
is one HTTP request carrying several operations: its multipart body is read and each
sub-request is counted as one operation, so "Table operations" means entity operations, not
HTTP round trips (both are reported).

Operation kinds:
- `write`  : an entity written (PUT/MERGE/PATCH on an entity = upsert/update, POST to a table = insert);
- `delete` : an entity deleted;
- `query`  : a GET of a table (one per page) or of one entity;
- `table`  : table administration (create, delete, list tables).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

_SUB_REQUEST = re.compile(rb"^(GET|PUT|POST|MERGE|PATCH|DELETE) (\S+) HTTP/1\.[01]\r?$", re.MULTILINE)
_WRITE_METHODS = frozenset({"PUT", "MERGE", "PATCH"})
_MAX_HEAD = 64 * 1024


@dataclass
class TableCounts:
    """What went through the proxy between two snapshots."""

    http_requests: int = 0
    batch_requests: int = 0
    operations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, kind) -> count

    def total(self, kind: str | None = None, *, exclude_tables: frozenset[str] = frozenset()) -> int:
        return sum(
            count
            for (table, op_kind), count in self.operations.items()
            if (kind is None or op_kind == kind) and table not in exclude_tables
        )

    def by_table(self, kind: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for (table, op_kind), count in self.operations.items():
            if op_kind == kind:
                found[table] = found.get(table, 0) + count
        return found

    def as_dict(self, prefix: str = "") -> dict[str, Any]:
        """JSON-ready, table names without `prefix` (each scenario has its own TABLE_PREFIX)."""

        def short(table: str) -> str:
            return table[len(prefix) :] if prefix and table.startswith(prefix) else table

        kinds = sorted({kind for _, kind in self.operations})
        return {
            "httpRequests": self.http_requests,
            "batchRequests": self.batch_requests,
            "operations": self.total(),
            "byKind": {kind: self.total(kind) for kind in kinds},
            "byTable": {
                kind: {short(table): count for table, count in sorted(self.by_table(kind).items())} for kind in kinds
            },
        }


def classify(method: str, target: str) -> tuple[str, str]:
    """(table, kind) of one Table REST request; `target` is a path or an absolute URL."""
    path = unquote(urlsplit(target).path if "://" in target else target.partition("?")[0])
    parts = [part for part in path.split("/") if part]
    resource = parts[1] if len(parts) >= 2 else (parts[0] if parts else "")
    table, _, keys = resource.partition("(")
    if table == "Tables":
        return "(tables)", "table"
    if method == "GET":
        return table, "query"
    if method == "DELETE":
        return table, "delete"
    if method == "POST" and not keys.strip(")"):
        return table, "write"  # insert
    if method in _WRITE_METHODS or method == "POST":
        return table, "write"
    return table, method.lower()


class TableCounter:
    """`with TableCounter(upstream_port) as proxy:` then point clients at `proxy.port`."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream_port = upstream_port
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._counts = TableCounts()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------ counters

    def reset(self) -> None:
        with self._lock:
            self._counts = TableCounts()

    def snapshot(self) -> TableCounts:
        with self._lock:
            counts = self._counts
            return TableCounts(counts.http_requests, counts.batch_requests, Counter(counts.operations))

    def _count(self, method: str, target: str, body: bytes) -> None:
        table, kind = classify(method, target)
        with self._lock:
            self._counts.http_requests += 1
            if table == "$batch":
                self._counts.batch_requests += 1
                for match in _SUB_REQUEST.finditer(body):
                    sub_method, sub_target = match.group(1).decode(), match.group(2).decode("latin-1")
                    self._counts.operations[classify(sub_method, sub_target)] += 1
            else:
                self._counts.operations[(table, kind)] += 1

    # ------------------------------------------------------------ proxy

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _read_chunked(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        """(bytes as sent, decoded body) of a chunked body (trailers are not used by Azure SDKs)."""
        raw, body = bytearray(), bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            chunk = await reader.readexactly(size + 2)
            raw += chunk
            body += chunk[:size]
            if size == 0:
                return bytes(raw), bytes(body)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.close()
            return
        responses = asyncio.ensure_future(self._pipe(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > _MAX_HEAD:
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, target = ([*lines[0].split(" "), "", ""])[:2]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                up_writer.write(head)  # head first: a client may wait for 100-continue
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    raw, body = await self._read_chunked(reader)
                else:
                    raw = body = await reader.readexactly(int(headers.get("content-length") or 0))
                self._count(method, target, body)
                up_writer.write(raw)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            up_writer.close()
            try:
                await asyncio.wait_for(responses, 5)
            except (TimeoutError, asyncio.CancelledError, ConnectionError):
                responses.cancel()
            writer.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._client, self.host, 0, limit=_MAX_HEAD * 2)
            self.port = int(self._server.sockets[0].getsockname()[1])

        loop.run_until_complete(start())
        self._ready.set()
        loop.run_forever()
        if self._server is not None:
            self._server.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def start(self) -> TableCounter:
        self._thread = threading.Thread(target=self._run, name="table-counter", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the table counter did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> TableCounter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
