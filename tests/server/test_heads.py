"""Latest heads read together (.heads.LatestHeads): opens arriving while a read is in flight
share the next read; no read answers from before its request; errors reach every waiter."""
from __future__ import annotations

import asyncio
import threading
from typing import Sequence

import pytest

from esc_pulumi.server.heads import Key, LatestHeads


class Table:
    """A stand-in for the store's query: heads from a dict, each read recorded; a read can be
    held until released (a slow round trip)."""

    def __init__(self) -> None:
        self.heads: dict[Key, tuple[int, int]] = {}
        self.reads: list[list[Key]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.fail: Exception | None = None

    def query(self, keys: Sequence[Key]) -> list[tuple[int, int] | None]:
        self.hold.wait(10)
        self.reads.append(list(keys))
        if self.fail is not None:
            raise self.fail
        return [self.heads.get(k) for k in keys]


A, B, C = ("o", "p", "a"), ("o", "p", "b"), ("other", "p", "a")


def test_opens_arriving_during_a_read_share_the_next_one() -> None:
    t = Table()
    t.heads = {A: (1, 1), B: (2, 5), C: (3, 7)}
    heads = LatestHeads(t.query)

    async def main() -> list[list[tuple[int, int] | None]]:
        t.hold.clear()
        first = asyncio.ensure_future(heads.get([A]))
        await asyncio.sleep(0.05)  # its read is in flight
        rest = [asyncio.ensure_future(heads.get(keys)) for keys in ([A, B], [C, ("o", "p", "none")], [B])]
        await asyncio.sleep(0.05)
        t.hold.set()
        return [await first] + [await r for r in rest]

    got = asyncio.run(main())
    assert got == [[(1, 1)], [(1, 1), (2, 5)], [(3, 7), None], [(2, 5)]]
    assert len(t.reads) == 2  # one for the first, one for the three that came meanwhile
    assert sorted(t.reads[1]) == sorted([A, B, C, ("o", "p", "none")])  # each key once


def test_no_read_answers_from_before_its_request() -> None:
    t = Table()
    t.heads = {A: (1, 1)}
    heads = LatestHeads(t.query)

    async def main() -> tuple[list, list]:
        t.hold.clear()
        first = asyncio.ensure_future(heads.get([A]))
        await asyncio.sleep(0.05)
        t.heads[A] = (1, 2)  # a write acknowledged while that read is in flight...
        second = asyncio.ensure_future(heads.get([A]))  # ...then an open
        await asyncio.sleep(0.05)
        t.hold.set()
        return await first, await second

    first, second = asyncio.run(main())
    assert second == [(1, 2)]
    assert first in ([(1, 1)], [(1, 2)])


def test_an_error_reaches_every_waiter_and_the_next_read_goes_out() -> None:
    t = Table()
    t.heads = {A: (1, 1)}
    heads = LatestHeads(t.query)

    async def main() -> list:
        t.fail = ConnectionError("database unavailable")
        t.hold.clear()
        waiters = [asyncio.ensure_future(heads.get([A])) for _ in range(3)]
        await asyncio.sleep(0.05)
        t.hold.set()
        out = await asyncio.gather(*waiters, return_exceptions=True)
        t.fail = None
        out.append(await heads.get([A]))
        return out

    out = asyncio.run(main())
    assert [type(x) for x in out[:3]] == [ConnectionError] * 3
    assert out[3] == [(1, 1)]


def test_a_waiter_that_leaves_does_not_hold_up_the_others() -> None:
    t = Table()
    t.heads = {A: (1, 1), B: (2, 2)}
    heads = LatestHeads(t.query)

    async def main() -> list:
        t.hold.clear()
        first = asyncio.ensure_future(heads.get([A]))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(heads.get([B]))
        stays = asyncio.ensure_future(heads.get([A]))
        await asyncio.sleep(0.01)
        gone.cancel()
        t.hold.set()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return [await first, await stays]

    assert asyncio.run(main()) == [[(1, 1)], [(1, 1)]]
    assert t.reads[1] == [A]  # the key only the cancelled waiter wanted is not read
