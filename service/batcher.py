"""An asyncio micro-batching queue in front of a blocking batch function (the encoder).

Requests submit one item each and await its result. One task collects items into batches of at most `max_size`
and runs the batch function in a single worker thread, so the event loop never blocks on the model and the model
never runs twice at once. While a batch runs, newcomers queue up and form the next batch by themselves.

A batch waits at most `max_wait_s` after its first item for more, and only while another item is on its way: a
request announces itself (`expecting()`) while it decodes its photo. So a lone request never waits, and under load a
batch does not leave without the photos that are a millisecond from ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatcherStopped(RuntimeError):
    """The service is shutting down; the item was not processed."""


@dataclass(frozen=True)
class Batched(Generic[Result]):
    result: Result
    queued_s: float  # from submit to the start of its batch
    run_s: float  # the batch function's wall time
    batch_size: int


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Sequence[Result]],
        max_size: int,
        max_wait_s: float,
        on_batch: Callable[[int, float], None] | None = None,
        thread_name: str = "batcher",
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._run_batch = run_batch
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._thread_name = thread_name
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Batched[Result]], float]] | None = None
        self._expected = 0  # items being prepared by requests that will submit them
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start collecting; call from the event loop that will submit."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        self._task = asyncio.create_task(self._collect_forever(), name=f"{self._thread_name}-collector")

    async def stop(self) -> None:
        """Stop collecting; callers still waiting get BatcherStopped (uvicorn drains requests before this runs)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            while not self._queue.empty():
                _, future, _ = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(BatcherStopped("the service is shutting down"))
        if self._executor is not None:
            # Waits for a batch still computing, off the loop: other requests are still being answered.
            await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._task = self._executor = None

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce an item that will be submitted when the block ends (or not at all, if it fails)."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1

    async def submit(self, item: Item) -> Batched[Result]:
        if self._queue is None or not self.running:
            raise BatcherStopped("the encoder is not running")
        future: asyncio.Future[Batched[Result]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future, time.perf_counter()))
        return await future

    async def _next_batch(self) -> list[tuple[Item, asyncio.Future[Batched[Result]], float]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self._max_wait_s
        while len(batch) < self._max_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._expected == 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        # A request whose client went away was cancelled while it queued: no need to embed it.
        return [entry for entry in batch if not entry[1].done()]

    async def _collect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            items = [item for item, _, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, items)
                if len(results) != len(items):
                    raise RuntimeError(f"the batch function returned {len(results)} results for {len(items)} items")
            except asyncio.CancelledError:
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(BatcherStopped("the service is shutting down"))
                raise
            except Exception as err:  # noqa: BLE001 - the callers get the error, the batcher lives on
                log.exception("a batch of %d failed", len(items))
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            run_s = time.perf_counter() - started
            if self._on_batch is not None:
                self._on_batch(len(items), run_s)
            for (_, future, submitted), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(Batched(result, started - submitted, run_s, len(items)))
