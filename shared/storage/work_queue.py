"""The work queue (`WORK_QUEUE_NAME`) and its poison queue, in the app's storage account.

In Azure the Functions host reads both (the queue triggers in function_app.py); this client
enqueues, and `python -m shared work` uses it to read them the way the host does. Messages
are raw JSON (host.json `messageEncoding: none`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.domain.work import TenantPoll, WorkItem
from shared.process_cache import ProcessCache
from shared.settings import Settings
from shared.storage.tables import STORAGE_CLIENT_OPTIONS

_SEND_CONCURRENCY = 16
POISON_SUFFIX = "-poison"  # the Functions host's name for a queue's poison queue


class WorkQueue:
    def __init__(self, service: QueueServiceClient, name: str) -> None:
        self._service = service
        self.name = name
        self.queue: QueueClient = service.get_queue_client(name)
        self.poison: QueueClient = service.get_queue_client(name + POISON_SUFFIX)
        self._ready = False

    async def close(self) -> None:
        await self.queue.close()
        await self.poison.close()
        await self._service.close()

    async def ensure(self) -> None:
        """Create both queues if missing (the host creates the poison queue only when needed)."""
        if self._ready:
            return
        for queue in (self.queue, self.poison):
            try:
                await queue.create_queue()
            except ResourceExistsError:
                pass
        self._ready = True

    async def send(self, items: Sequence[WorkItem] | Sequence[TenantPoll]) -> None:
        await self.ensure()
        limit = asyncio.Semaphore(_SEND_CONCURRENCY)

        async def send_one(item: WorkItem | TenantPoll) -> None:
            async with limit:
                await self.queue.send_message(json.dumps(item, separators=(",", ":"), ensure_ascii=False))

        await asyncio.gather(*(send_one(item) for item in items))

    async def receive(self, queue: QueueClient, count: int, lease_seconds: int) -> list[QueueMessage]:
        """Up to `count` messages, each invisible to others for `lease_seconds`."""
        messages: list[QueueMessage] = []
        async for message in queue.receive_messages(
            messages_per_page=count, max_messages=count, visibility_timeout=lease_seconds
        ):
            messages.append(message)
        return messages

    async def length(self) -> tuple[int, int]:
        """Approximate message counts of the queue and its poison queue."""
        await self.ensure()
        counts = []
        for queue in (self.queue, self.poison):
            properties = await queue.get_queue_properties()
            counts.append(int(properties.approximate_message_count or 0))
        return counts[0], counts[1]


def _service(settings: Settings) -> QueueServiceClient | None:
    storage = settings.storage
    # Fewer retries than the tables': a queue that cannot be reached makes the poll run
    # inline, and should cost it seconds, not its deadline.
    options: dict[str, Any] = {**STORAGE_CLIENT_OPTIONS, "retry_total": 2, "retry_backoff_factor": 0.2}
    if storage.connection_string:
        return QueueServiceClient.from_connection_string(storage.connection_string, **options)
    if not storage.queue_service_uri:
        return None
    from azure.identity.aio import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=storage.managed_identity_client_id)
    return QueueServiceClient(storage.queue_service_uri, credential=credential, **options)


_queues = ProcessCache[WorkQueue]()


def has_queue_service(settings: Settings) -> bool:
    """Whether the storage settings name a queue service. A connection string that names its
    Table endpoint but no Queue endpoint (an emulator serving tables only) has none."""
    connection = settings.storage.connection_string
    if connection:
        return "TableEndpoint=" not in connection or "QueueEndpoint=" in connection
    return bool(settings.storage.queue_service_uri)


def work_queue(settings: Settings) -> WorkQueue | None:
    """The process's work queue client; None when the storage settings name no queue service."""
    if not has_queue_service(settings):
        return None

    def create() -> WorkQueue:
        service = _service(settings)
        assert service is not None
        return WorkQueue(service, settings.work_queue_name)

    return _queues.get((settings.storage, settings.work_queue_name), create)


async def close_work_queue() -> None:
    await _queues.close()
