"""The server's evaluation pool: evaluations run in worker processes, off the event loop, each
under a time limit that is really enforced.

Why processes, not threads: evaluation is CPU-bound Python, and a thread running it holds the
GIL, so the event loop (``/ping``, other users' requests) would wait for it at every switch
interval; and a Python thread cannot be stopped. The engine's budget bounds its own work and
checks a deadline cooperatively, but some work happens where no check can run (a regular
expression backtracking inside ``re``, a provider blocking in C). A worker process that is
past its time limit is killed and replaced, so the limit holds whatever the work is, and the
event loop only ever waits on a socket.

Each worker builds its own state once (``factory(config)``: a store connection, the cipher,
the parsed-definition cache) and then runs jobs ``fn(state, *args)``; ``fn`` and the arguments
are pickled, so they must be module-level functions and plain data. With ``workers=0`` jobs run
in a thread of this process instead (for applications that hand the server objects that
cannot cross a process boundary); the time limit is then only the engine's cooperative one and
a late result is dropped.

Example::

    pool = EvalPool(EscServer, config, workers=default_workers(), timeout=10.0)
    result = await pool.run(job_check, org, actor, text)
    await pool.close()
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .memory import map_large_blocks, resident_mb, trim_memory

__all__ = ["EvalPool", "PoolTimeout", "PoolBusy", "PoolError", "computing_at_once", "default_workers"]

log = logging.getLogger("esc_pulumi.server")


class PoolTimeout(Exception):
    """A job ran past its time limit (its worker was killed, or its result will be dropped)."""


class PoolBusy(Exception):
    """Too many jobs are waiting for a worker."""


class PoolError(Exception):
    """A job failed inside its worker; the message is the exception's type name only (the
    message itself could hold data)."""


def _allowed_cores() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))  # the cores this process may run on
    except (AttributeError, OSError):
        return None


def _cores() -> int:
    allowed = _allowed_cores()
    return len(allowed) if allowed else (os.cpu_count() or 2)


def default_workers(processes: int = 1) -> int:
    """Evaluation workers for each of ``processes`` server processes: as many together as the
    cores the workers may use (all but the one :func:`_leave_a_core` keeps for the request
    loops), and at least two, shared among the processes: an evaluation may wait on a provider
    or a rotator rather than compute, and one such wait must not hold up every other request
    that evaluates. At least one per process."""
    return max(1, max(2, _cores() - 1) // max(1, processes))


def computing_at_once() -> int:
    """How many jobs of one pool start at once: one per core the workers may use. A job
    running longer than :attr:`EvalPool.overflow_after` lets the next one start too (it is
    likely waiting on a provider), up to the pool's workers."""
    return max(1, _cores() - 1)


def _leave_a_core() -> None:
    """Keep this worker off the first core the server may use, left to the request loops.

    A lower priority (:func:`_lower_priority`) is not enough on its own. Measured on a 2-core
    Linux 6.18 VM: with every core busy with a low-priority process (``SCHED_IDLE`` or nice 19
    alike), a woken task often waited for the next scheduler tick, up to ~7 ms, before it ran,
    and ``/ping``'s p99 under evaluation bombs was 4-5x its idle value. With one worker (one
    core free) it was ~2-4x, as the scheduler still put the woken loop behind the worker now
    and then; with the workers kept off the loops' core, ~1.4-2x. The server's own processes are
    not pinned: they run anywhere, evaluations everywhere but there. On one core, nothing."""
    allowed = _allowed_cores()
    if allowed is None or len(allowed) < 2:
        return
    try:
        os.sched_setaffinity(0, allowed - {min(allowed)})
    except OSError:
        pass


def _lower_priority() -> None:
    """Put this worker below the server's request loop.

    With every core busy evaluating, a request that needs no evaluation (``/ping``, a session
    read, another user's cached open) must get a core as soon as it arrives. A nice value only
    shares the CPU by weight: the kernel's scheduler (EEVDF) may let a running low-weight task
    finish its slice before the woken loop runs, a few milliseconds of latency per request.
    ``SCHED_IDLE`` should be preempted at once by any normal task (on some kernels and VMs it
    is not: hence :func:`_leave_a_core`), and still runs whenever the cores are otherwise
    free. Where it is not available, nice 10."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
        return
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass
    try:
        os.nice(10)
    except (AttributeError, OSError):
        pass


_HEADER = struct.Struct("!Q")  # each message: its length, then its pickle


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError("the other end closed the channel")
        got += k
    return bytes(buf)


def _send_message(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)))
    sock.sendall(data)


def _worker_main(sock: socket.socket, factory: Callable[[Any], Any], config: Any) -> None:
    # The parent stops its workers itself; a Ctrl-C meant for it must not kill them mid-job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority()
    _leave_a_core()
    map_large_blocks()
    state = factory(config)
    # Above this, a finished job left freed heap behind (fragmentation): give it back.
    trim_above = resident_mb() + 64
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
            fn, args = pickle.loads(_read_exactly(sock, size))
        except (EOFError, OSError):  # the parent is gone
            return
        try:
            result: tuple[str, Any] = ("ok", fn(state, *args))
        except Exception as e:  # noqa: BLE001 - reported to the parent by type, logged by place
            log.error("evaluation job failed: %s\n%s", type(e).__name__, "".join(traceback.format_tb(e.__traceback__)))
            result = ("error", type(e).__name__)
        try:
            try:
                _send_message(sock, result)
            except (pickle.PicklingError, TypeError, AttributeError) as e:  # an answer that cannot cross
                log.error("evaluation job's answer cannot be sent: %s", type(e).__name__)
                _send_message(sock, ("error", type(e).__name__))
        except (EOFError, OSError):
            return
        del result
        if resident_mb() > trim_above:  # after the answer: the trim is not the caller's wait
            trim_memory()


@dataclass
class _Worker:
    """A worker process and the parent's end of its channel (a socket pair).

    The parent sends jobs and reads answers on its event loop (an asyncio stream), not on a
    helper thread per job: a thread blocked on the pipe wakes with the answer and must take the
    GIL from the loop to unpickle it, and those hand-offs delayed ``/ping`` under load."""

    process: Any
    sock: socket.socket
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def call(self, job: tuple[Callable[..., Any], tuple[Any, ...]], timeout: float) -> tuple[str, Any]:
        """Send a job and wait for its answer, at most ``timeout`` seconds."""
        data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            async with asyncio.timeout(timeout):
                if self._writer is None:
                    # Made here, not at spawn: the streams belong to the loop that uses them.
                    self._reader, self._writer = await asyncio.open_connection(sock=self.sock, limit=1 << 20)
                assert self._reader is not None
                self._writer.write(_HEADER.pack(len(data)))
                self._writer.write(data)
                del data
                await self._writer.drain()
                (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
                answer = await self._reader.readexactly(size)
        except TimeoutError:
            raise PoolTimeout() from None
        except asyncio.IncompleteReadError:
            raise PoolError("the worker exited") from None
        return pickle.loads(answer)

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(5)
        finally:
            if self._writer is not None:
                self._writer.close()
            else:
                self.sock.close()


@dataclass
class EvalPool:
    """At most ``workers`` jobs at once, at most ``queue`` more waiting; each job gets
    ``timeout`` seconds (the engine's own deadline should be a little shorter, so that its
    diagnostic, with its range, arrives first).

    Jobs *start* one per core the workers may use (:func:`computing_at_once`): more computing
    at once would only share those cores, and a server whose cores are all busy answers its
    other requests late (see :func:`_leave_a_core`). A job still running after
    ``overflow_after`` seconds lets the next one start beside it, up to ``workers``: it is
    probably waiting (on a provider, a rotator), and waiting must not hold up everyone else."""

    factory: Callable[[Any], Any]
    config: Any
    workers: int = field(default_factory=default_workers)
    timeout: float = 10.0
    queue: int = 64
    local_state: Any = None  # the state jobs get with workers=0
    overflow_after: float = 0.25
    _idle: list[_Worker] = field(default_factory=list)
    _live: dict[int, _Worker] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None  # a worker each
    _starts: asyncio.Semaphore | None = None  # a core each (released early by a long job)
    _waiting: int = 0
    _closed: bool = False

    def start(self) -> None:
        """Start the workers now (they take a moment to import the engine), not on first use."""
        for _ in range(self.workers - len(self._live)):
            self._idle.append(self._spawn())

    def _spawn(self) -> _Worker:
        # spawn, not fork: the parent runs an event loop, threads and a SQLite connection,
        # none of which survive a fork safely.
        ctx = multiprocessing.get_context("spawn")
        parent, child = socket.socketpair()
        p = ctx.Process(target=_worker_main, args=(child, self.factory, self.config), daemon=True,
                        name="esc-pulumi-eval")
        p.start()
        child.close()
        w = _Worker(p, parent)
        self._live[id(w)] = w
        return w

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(state, *args)`` in a worker; raises :class:`PoolTimeout`, :class:`PoolBusy`,
        :class:`PoolError`."""
        if self._closed:
            raise PoolError("closed")
        if self._slots is None or self._starts is None:
            self._slots = asyncio.Semaphore(max(1, self.workers))
            self._starts = asyncio.Semaphore(max(1, min(self.workers, computing_at_once())))
        slots, starts = self._slots, self._starts
        if self._waiting >= self.queue and (starts.locked() or slots.locked()):
            raise PoolBusy()
        self._waiting += 1
        try:
            await starts.acquire()
            try:
                await slots.acquire()
            except BaseException:
                starts.release()
                raise
        finally:
            self._waiting -= 1
        started = [True]

        def let_the_next_start() -> None:
            if started[0]:
                started[0] = False
                starts.release()

        overflow = asyncio.get_running_loop().call_later(self.overflow_after, let_the_next_start)
        try:
            if self.workers <= 0:
                return await self._run_here(fn, args)
            return await self._run_in_worker(fn, args)
        finally:
            overflow.cancel()
            let_the_next_start()
            slots.release()

    async def _run_here(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        task = asyncio.ensure_future(asyncio.to_thread(fn, self.local_state, *args))
        try:
            # shield: on timeout the thread runs on to the engine's deadline; its result is dropped
            return await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except asyncio.TimeoutError:
            raise PoolTimeout() from None

    async def _run_in_worker(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        w = self._idle.pop() if self._idle else self._spawn()
        ok = False
        try:
            status, payload = await w.call((fn, args), self.timeout)
            ok = True
        finally:
            if ok and not self._closed:
                self._idle.append(w)
            else:
                # Timed out, cancelled (the client left) or broken: its state is unknown, so the
                # worker goes and a fresh one takes its place.
                self._live.pop(id(w), None)
                await asyncio.to_thread(w.kill)
                if not self._closed:
                    self._idle.append(self._spawn())
        if status != "ok":
            raise PoolError(payload)
        return payload

    async def close(self) -> None:
        self._closed = True
        workers, self._idle = list(self._live.values()), []
        self._live.clear()
        for w in workers:
            await asyncio.to_thread(w.kill)

    def rss_pids(self) -> list[int]:
        """The workers' process ids (for measuring the server's memory)."""
        return [w.process.pid for w in self._live.values() if w.process.pid is not None]
