"""What the poll needs from a Graph reader, declared without importing msgraph: the answer to
one request (`ItemResult`) and the reader's methods (`JobsReader`). `shared.graph.reader`
implements them with the SDK; importing this module costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ItemResult:
    """The answer to one Graph GET, standalone or inside a batch."""

    status: int
    body: Any = None  # Graph's JSON: a service principal object, or a list of raw jobs
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        # A 200 whose body could not be read carries an error code: it is not an answer.
        return 200 <= self.status < 300 and self.error_code is None


@dataclass
class LogPages:
    """Provisioning log events of one filtered query, read page by page. `complete`: every
    page was read; else `status`/`error_code` say why not (0: stopped by the caller's limits)."""

    events: list[Any]
    pages: int = 0
    complete: bool = False
    status: int = 200
    error_code: str | None = None
    error_message: str | None = None


class JobsReader(Protocol):
    """The reads a poll makes: results by service principal id; ids left out of an answer
    were not read before `deadline` (a time.monotonic() instant)."""

    async def list_service_principals(self) -> list[dict[str, Any]]:
        """Every service principal in the tenant (the raw objects)."""
        ...

    async def get_service_principals(
        self, ids: Sequence[str], *, deadline: float | None = None
    ) -> dict[str, ItemResult]: ...

    async def get_jobs(self, ids: Sequence[str], *, deadline: float | None = None) -> dict[str, ItemResult]:
        """Each service principal's synchronization jobs (body: the list of raw jobs)."""
        ...

    async def provisioning_events(
        self,
        filter_: str,
        *,
        page_size: int,
        max_pages: int,
        deadline: float | None = None,
        orderby: str | None = None,
    ) -> LogPages:
        """`GET /auditLogs/provisioning?$filter=...` (and `$orderby=...` when given), every
        page, unless `max_pages` or `deadline` stop it first."""
        ...
