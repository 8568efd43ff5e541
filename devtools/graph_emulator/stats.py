"""Counters of what clients asked the Graph surface, so tests can assert on traffic.

Top-level HTTP requests and batch items are counted apart: a `$batch` is one request however
many items it carries. Paths are normalised (`/servicePrincipals/{id}/synchronization/jobs`).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._batches = 0
            self._items = 0
            self._by_path: Counter[str] = Counter()
            self._items_by_path: Counter[str] = Counter()
            self._status: Counter[str] = Counter()
            self._item_status: Counter[str] = Counter()
            self._auth_seen = False
            self._auth_count = 0
            self._auth_values: Counter[str] = Counter()
            self._faults = 0
            self._recent: deque[dict[str, Any]] = deque(maxlen=100)

    def record(
        self,
        method: str,
        path: str,
        status: int,
        *,
        authorized: bool,
        in_batch: bool,
        faulted: bool = False,
        authorization: str | None = None,
    ) -> None:
        with self._lock:
            if in_batch:
                self._items += 1
                self._items_by_path[path] += 1
                self._item_status[str(status)] += 1
            else:
                self._requests += 1
                self._by_path[path] += 1
                self._status[str(status)] += 1
                if path == "/$batch":
                    self._batches += 1
            if authorized:
                self._auth_seen = True
                self._auth_count += 1
            if authorization is not None:
                self._auth_values[authorization] += 1
            self._faults += faulted
            self._recent.append({"method": method, "path": path, "status": status, "inBatch": in_batch})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "batchRequests": self._batches,
                "batchItems": self._items,
                "byPath": dict(self._by_path),
                "itemsByPath": dict(self._items_by_path),
                "statusCounts": {**self._status, "items": dict(self._item_status)},
                "authorizationHeaderSeen": self._auth_seen,
                "authorizationHeaders": self._auth_count,
                # The values themselves (a dev emulator sees only test tokens): what was sent.
                "authorizationValues": dict(self._auth_values),
                "faultsInjected": self._faults,
                "recent": list(self._recent),
            }
