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
