"""How much work the service takes on at once: photos in flight (beyond: 503 at once), and pixels being decoded.

Both limits count work, not connections: a client that connects and sends nothing, or sends its body slowly, holds
neither, so it cannot lock anyone out (docs/service.md, "Under load").
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator

from photo2cad.service.errors import Busy

log = logging.getLogger(__name__)


class InFlightLimit:
    """At most `limit` photos between arrival and answer; one more is refused with 503 and Retry-After at once,
    rather than queued behind work that would make its caller time out anyway."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @contextlib.contextmanager
    def admit(self, photos: int = 1) -> Iterator[None]:
        if self.in_flight + photos > self.limit:
            raise Busy(
                f"the service is working on {self.in_flight} photos, its limit is {self.limit} "
                "(PHOTO2CAD_MAX_PHOTOS_IN_FLIGHT); retry in a moment"
            )
        self.in_flight += photos
        try:
            yield
        finally:
            self.in_flight -= photos


class DecodeBudget:
    """Pixels decoded at once, across requests. A photo waits until its pixels fit in what is left; among those
    waiting, the smallest photo goes first, so a phone snapshot never queues behind a burst of 40-megapixel PNGs.

    When the last decode of a burst ends, `on_idle` runs (off the event loop): the service hands the freed memory
    back to the operating system there."""

    def __init__(self, pixels: int, on_idle: Callable[[], None] | None = None, idle_after_pixels: int = 0) -> None:
        self.capacity = pixels
        self.in_use = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._on_idle = on_idle
        self._idle_after_pixels = idle_after_pixels
        self._decoded_since_idle = 0

    @contextlib.asynccontextmanager
    async def reserve(self, pixels: int) -> AsyncIterator[None]:
        cost = min(pixels, self.capacity)  # one photo larger than the budget still runs, alone
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (cost, next(self._order), future))
        self._grant()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(cost)  # granted in the same instant the caller went away
            raise
        try:
            yield
        finally:
            self._decoded_since_idle += cost
            self._release(cost)

    def _grant(self) -> None:
        while self._waiting:
            cost, _, future = self._waiting[0]
            if future.done():  # its caller went away while waiting
                heapq.heappop(self._waiting)
                continue
            if self.in_use + cost > self.capacity:
                return
            heapq.heappop(self._waiting)
            self.in_use += cost
            future.set_result(None)

    def _release(self, cost: int) -> None:
        self.in_use -= cost
        self._grant()
        if self.in_use == 0 and self._on_idle is not None and self._decoded_since_idle > self._idle_after_pixels:
            self._decoded_since_idle = 0
            task = asyncio.get_running_loop().run_in_executor(None, self._on_idle)
            task.add_done_callback(_log_failure)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("returning memory to the system failed: %s", future.exception())


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - glibc only; musl and macOS have no malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def return_freed_memory() -> None:
    """Hand the heap pages freed by a burst of decodes back to the system (glibc's malloc_trim; elsewhere nothing).

    glibc keeps freed memory in its arenas for reuse; after a burst of 40-megapixel decodes that was gigabytes held
    by an idle process."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
