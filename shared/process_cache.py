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
        self._value: T | None = None
        self._key: tuple[Any, asyncio.AbstractEventLoop] | None = None

    def get(self, settings: Any, create: Callable[[], T]) -> T:
        key = (settings, asyncio.get_running_loop())
        if self._value is None or self._key != key:
            self._value, self._key = create(), key
        return self._value

    async def close(self) -> None:
        value, key = self._value, self._key
        self._value = self._key = None
        if value is not None and key is not None and key[1] is asyncio.get_running_loop():
            await value.close()
