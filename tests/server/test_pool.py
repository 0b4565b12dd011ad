"""The evaluation pool's admission: one job starts per core the workers may use; a job that
runs long (waiting on a provider, say) lets the next one start beside it, up to the workers."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import pytest

from esc_pulumi.server import pool


def timed_job(state: Any, name: str, seconds: float) -> tuple[str, float, float]:
    start = time.time()
    time.sleep(seconds)
    return name, start, time.time()


def run_jobs(p: pool.EvalPool, jobs: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    async def main() -> list[tuple[str, float, float]]:
        # Both workers up first (a new worker imports for a while; its job's wait counts).
        saved, p.overflow_after = p.overflow_after, 0.0
        await asyncio.gather(*(p.run(timed_job, "warm-up", 0.3) for _ in range(p.workers)))
        p.overflow_after = saved
        tasks = []
        for name, seconds in jobs:
            tasks.append(asyncio.ensure_future(p.run(timed_job, name, seconds)))
            await asyncio.sleep(0.02)  # in this order
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            await p.close()

    return asyncio.run(main())


def most_at_once(spans: list[tuple[str, float, float]]) -> int:
    edges = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    now = most = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    yield


def test_short_jobs_start_one_per_core(two_cores: None) -> None:
    p = pool.EvalPool(str, None, workers=2, timeout=30, overflow_after=5.0)
    p.start()
    spans = run_jobs(p, [(f"j{i}", 0.05) for i in range(6)])
    assert [n for n, _, _ in spans] == [f"j{i}" for i in range(6)]
    assert most_at_once(spans) == 1  # the other core is the request loops'


def test_a_long_job_lets_the_next_one_start(two_cores: None) -> None:
    p = pool.EvalPool(str, None, workers=2, timeout=30, overflow_after=0.2)
    p.start()
    spans = run_jobs(p, [("slow", 2.0), ("fast", 0.01), ("third", 0.01)])
    by_name = {n: (s, e) for n, s, e in spans}
    assert by_name["fast"][1] < by_name["slow"][1] and by_name["third"][1] < by_name["slow"][1]
    assert most_at_once(spans) <= 2  # beside the slow one, never more than the workers


def test_the_default_pool_starts_as_many_as_its_cores_allow(two_cores: None) -> None:
    assert pool.computing_at_once() == 1
    assert pool.default_workers() == 2


def big_answer(state: Any, size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


def sleepy(state: Any, seconds: float) -> str:
    time.sleep(seconds)
    return "late"


def exits(state: Any) -> None:
    import os
    os._exit(3)


def unpicklable(state: Any) -> Any:
    return lambda: None


def worker_pid(state: Any) -> int:
    import os
    return os.getpid()


def run_in(p: pool.EvalPool, *calls: tuple[Any, ...]) -> list[Any]:
    """Run the calls one after another; each gives its answer or the exception it raised."""
    async def main() -> list[Any]:
        out: list[Any] = []
        try:
            for fn, *args in calls:
                try:
                    out.append(await p.run(fn, *args))
                except Exception as e:  # noqa: BLE001 - the test looks at it
                    out.append(e)
        finally:
            await p.close()
        return out

    return asyncio.run(main())


def test_answers_of_many_megabytes_arrive_whole() -> None:
    p = pool.EvalPool(str, None, workers=1, timeout=30)
    first, second = run_in(p, (big_answer, 6 << 20), (big_answer, 1000))
    assert first == bytes(range(256)) * ((6 << 20) // 256)
    assert second == bytes(range(256)) * 3


def test_a_job_past_its_limit_is_stopped_and_its_worker_replaced() -> None:
    p = pool.EvalPool(str, None, workers=1, timeout=1.0)
    late, after = run_in(p, (sleepy, 30.0), (sleepy, 0.0))
    assert isinstance(late, pool.PoolTimeout)
    assert after == "late"  # a fresh worker answered the next job


def test_a_worker_that_dies_fails_its_job_only() -> None:
    p = pool.EvalPool(str, None, workers=1, timeout=30)
    died, after = run_in(p, (exits,), (sleepy, 0.0))
    assert isinstance(died, pool.PoolError)
    assert after == "late"


def test_an_answer_that_cannot_cross_is_an_error_and_the_worker_goes_on() -> None:
    p = pool.EvalPool(str, None, workers=1, timeout=30)
    before, bad, after = run_in(p, (worker_pid,), (unpicklable,), (worker_pid,))
    assert isinstance(bad, pool.PoolError) and "lambda" not in str(bad)
    assert before == after  # the same worker served the next job


def test_answers_are_read_on_the_event_loop_not_on_a_thread_per_job() -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Counting(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *a: Any, **k: Any) -> Any:
            Counting.submitted += 1
            return super().submit(*a, **k)

    p = pool.EvalPool(str, None, workers=1, timeout=30)
    p.start()

    async def main() -> tuple[list[str], int]:
        asyncio.get_running_loop().set_default_executor(Counting(max_workers=2))
        try:
            return [await p.run(sleepy, 0.01) for _ in range(5)], Counting.submitted
        finally:
            await p.close()  # kills the workers on a thread: not counted

    assert asyncio.run(main()) == (["late"] * 5, 0)
