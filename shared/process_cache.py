"""One client per process, bound to the event loop that created it.

The async SDK clients hold sessions tied to an event loop. The Functions worker keeps one
loop for the life of the process, so clients are made once and reused; a caller on another
loop (a test, a second `asyncio.run`) gets a fresh client instead of one whose loop is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class _Closable(Protocol):
    async def close(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class ProcessCache(Generic[T]):
    def __init__(self) -> None:
        self._values: dict[tuple[Any, asyncio.AbstractEventLoop], T] = {}

    def get(self, settings: Any, create: Callable[[], T]) -> T:
        key = (settings, asyncio.get_running_loop())
        if key not in self._values:
            # Clients of loops that are gone cannot be closed any more; just let them go.
            self._values = {k: v for k, v in self._values.items() if not k[1].is_closed()}
            self._values[key] = create()
        return self._values[key]

    async def close(self) -> None:
        """Close every client made on the running loop."""
        loop = asyncio.get_running_loop()
        mine = [key for key in self._values if key[1] is loop]
        for key in mine:
            await self._values.pop(key).close()
