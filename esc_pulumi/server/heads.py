"""Environments' latest heads for concurrent opens, read together: one query and one thread hop
for every open that arrives while a read is in flight (a group read, as the audit writer's
group commit is a group write).

Why: an open of the latest revision reuses an evaluation only after checking that the root and
every import are still at the revisions it read; on a database across the network that is a
round trip, and a hop to a thread, for every open. Under load, opens that arrive together
share both; one open alone goes out at once.

No read answers from before its request: an open arriving while a read is in flight waits for
the next read, which starts after it arrived, so it sees every write acknowledged before.

Example::

    heads = LatestHeads(store.latest_heads)
    [root, imported] = await heads.get([("acme", "app", "prod"), ("acme", "base", "shared")])
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["LatestHeads", "Head", "Key"]

Key = tuple[str, str, str]  # (org, project, name)
Head = tuple[int, int] | None  # (environment id, head revision); None: no such environment


@dataclass
class _Batch:
    waiting: list[tuple[Sequence[Key], asyncio.Future[list[Head]]]] = field(default_factory=list)
    reading: bool = False


@dataclass
class LatestHeads:
    """Reads ``query(keys) -> heads`` (in order) on a thread, for the opens of each event loop
    together."""

    query: Callable[[Sequence[Key]], list[Head]]
    _batches: dict[asyncio.AbstractEventLoop, _Batch] = field(default_factory=dict)

    async def get(self, keys: Sequence[Key]) -> list[Head]:
        """The heads of ``keys``, in order; raises what the query raised."""
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = _Batch()
        fut: asyncio.Future[list[Head]] = loop.create_future()
        batch.waiting.append((keys, fut))
        if not batch.reading:
            batch.reading = True
            loop.create_task(self._read(loop, batch))
        return await fut

    async def _read(self, loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
        try:
            while batch.waiting:
                taken, batch.waiting = batch.waiting, []
                wanted = list(dict.fromkeys(k for keys, fut in taken if not fut.done() for k in keys))
                try:
                    heads = dict(zip(wanted, await asyncio.to_thread(self.query, wanted)))
                except Exception as e:  # noqa: BLE001 - every waiter gets it (e.g. the database is gone)
                    for _, fut in taken:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                for keys, fut in taken:
                    if not fut.done():  # not cancelled meanwhile (the client left)
                        fut.set_result([heads[k] for k in keys])
        finally:
            batch.reading = False
            if not batch.waiting:
                self._batches.pop(loop, None)
