"""The micro-batching queue in front of the encoder: batches form under load, never block the event loop, and a
failure or a departed client harms nobody else."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from photo2cad.service.batcher import BatcherStopped, MicroBatcher


class Recorder:
    """A batch function that doubles its items, records the batches, and can be held to simulate a busy model."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.seconds = seconds
        self.release = threading.Event()
        self.release.set()
        self.running = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.running.set()
        self.release.wait(5)
        time.sleep(self.seconds)
        self.batches.append(list(items))
        return [2 * item for item in items]


async def wait_until_running(recorder: Recorder) -> None:
    while not recorder.running.is_set():
        await asyncio.sleep(0.001)


def test_each_caller_gets_its_own_result() -> None:
    async def scenario() -> list[int]:
        batcher = MicroBatcher(Recorder(), max_size=8, max_wait_s=0.0)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)))
        await batcher.stop()
        return [r.result for r in results]

    assert asyncio.run(scenario()) == [0, 2, 4, 6, 8, 10]


def test_requests_arriving_while_the_model_is_busy_form_one_batch() -> None:
    recorder = Recorder()

    async def scenario() -> list[int]:
        batcher = MicroBatcher(recorder, max_size=16, max_wait_s=0.0)
        batcher.start()
        recorder.release.clear()
        first = asyncio.create_task(batcher.submit(0))
        await wait_until_running(recorder)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        recorder.release.set()
        done = await asyncio.gather(first, *rest)
        await batcher.stop()
        return [r.batch_size for r in done]

    assert asyncio.run(scenario()) == [1, 5, 5, 5, 5, 5]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


def test_a_lone_request_never_waits_for_company() -> None:
    async def scenario() -> float:
        batcher = MicroBatcher(Recorder(), max_size=16, max_wait_s=0.5)
        batcher.start()
        await batcher.submit(1)  # warm: the worker thread exists
        started = time.perf_counter()
        await batcher.submit(2)
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert asyncio.run(scenario()) < 0.25  # nobody announced a photo: the 0.5 s max_wait_s does not apply


def test_a_batch_waits_for_photos_still_being_prepared() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(recorder, max_size=16, max_wait_s=0.3)
        batcher.start()

        async def request(item: int, decode_s: float) -> None:
            with batcher.expecting():
                await asyncio.sleep(decode_s)
            await batcher.submit(item)

        await asyncio.gather(*(request(i, 0.02 * i) for i in range(4)))
        await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches == [[0, 1, 2, 3]]


def test_a_batch_leaves_after_max_wait_even_if_a_photo_is_still_coming() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(recorder, max_size=16, max_wait_s=0.05)
        batcher.start()

        async def slow() -> None:
            with batcher.expecting():
                await asyncio.sleep(0.3)
            await batcher.submit(1)

        late = asyncio.create_task(slow())
        await batcher.submit(0)
        await late
        await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches == [[0], [1]]


def test_batches_never_exceed_max_size() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(recorder, max_size=4, max_wait_s=0.0)
        batcher.start()
        recorder.release.clear()
        first = asyncio.create_task(batcher.submit(0))
        await wait_until_running(recorder)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.01)
        recorder.release.set()
        await asyncio.gather(first, *rest)
        await batcher.stop()

    asyncio.run(scenario())
    assert [len(b) for b in recorder.batches] == [1, 4, 4, 1]


def test_the_event_loop_keeps_running_while_a_batch_computes() -> None:
    async def scenario() -> int:
        batcher = MicroBatcher(Recorder(seconds=0.3), max_size=4, max_wait_s=0.0)
        batcher.start()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await batcher.submit(1)
        ticker.cancel()
        await batcher.stop()
        return ticks

    assert asyncio.run(scenario()) >= 5  # ~30 in 0.3 s if the loop is free, 0 if the model blocked it


def test_a_failing_batch_fails_its_callers_and_the_next_batch_works() -> None:
    calls = 0

    def flaky(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("out of memory")
        return list(items)

    async def scenario() -> int:
        batcher = MicroBatcher(flaky, max_size=4, max_wait_s=0.0)
        batcher.start()
        with pytest.raises(RuntimeError, match="out of memory"):
            await batcher.submit(1)
        result = await batcher.submit(7)
        await batcher.stop()
        return result.result

    assert asyncio.run(scenario()) == 7


def test_a_request_cancelled_while_queued_is_not_computed() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(recorder, max_size=16, max_wait_s=0.0)
        batcher.start()
        recorder.release.clear()
        first = asyncio.create_task(batcher.submit(0))
        await wait_until_running(recorder)
        gone = asyncio.create_task(batcher.submit(99))
        stays = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client disconnected
        recorder.release.set()
        await asyncio.gather(first, stays)
        await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches == [[0], [1]]


def test_stopping_refuses_what_is_still_queued() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(recorder, max_size=1, max_wait_s=0.0)
        batcher.start()
        recorder.release.clear()
        running = asyncio.create_task(batcher.submit(0))
        await wait_until_running(recorder)
        queued = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.01)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.01)
        recorder.release.set()
        await stopping
        for task in (running, queued):
            with pytest.raises(BatcherStopped):
                await task
        with pytest.raises(BatcherStopped):
            await batcher.submit(2)

    asyncio.run(scenario())
