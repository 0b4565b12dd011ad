"""Evaluation workers run below the request loop (``SCHED_IDLE`` on Linux), so that requests
needing no evaluation are answered at once while every core evaluates."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .conftest import Env


def workers_of(pid: int) -> list[int]:
    """The evaluation workers among the children of ``pid`` (not multiprocessing's resource
    tracker, which evaluates nothing)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(int(child))
    return out


def server_and_workers(env: Env) -> tuple[int, list[int]]:
    """The server's process id and its evaluation workers', once an evaluation has made sure
    the workers exist."""
    server = env.server.proc
    assert server is not None
    assert env.request("POST", "/environments/acme/yaml/check", "values: {a: 1}\n", role="reader")[0] == 200
    workers = workers_of(server.pid)
    assert workers, "the server has no worker processes"
    return server.pid, workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE and /proc are Linux's")
def test_workers_are_idle_class_and_the_server_is_not(env: Env) -> None:
    server, workers = server_and_workers(env)
    assert os.sched_getscheduler(server) == os.SCHED_OTHER
    assert {os.sched_getscheduler(w) for w in workers} == {os.SCHED_IDLE}


@pytest.mark.parametrize("cores, processes, expected", [(1, 1, 2), (2, 1, 2), (4, 1, 3), (8, 1, 7), (8, 2, 3),
                                                        (2, 2, 1), (16, 3, 5), (2, 4, 1)])
def test_the_default_pool_is_one_worker_a_core_but_the_loops_one(monkeypatch: pytest.MonkeyPatch, cores: int,
                                                           processes: int, expected: int) -> None:
    from esc_pulumi.server import pool

    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert pool.default_workers(processes) == expected
    assert pool.EvalPool(object, None).workers == pool.default_workers()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_workers_keep_off_the_request_loops_core(env: Env) -> None:
    server, workers = server_and_workers(env)
    allowed = os.sched_getaffinity(server)
    assert len(workers) == max(2, len(allowed) - 1)
    for w in workers:
        assert os.sched_getaffinity(w) == (allowed - {min(allowed)} if len(allowed) > 1 else allowed)
