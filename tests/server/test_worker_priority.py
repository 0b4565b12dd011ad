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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE and /proc are Linux's")
def test_workers_are_idle_class_and_the_server_is_not(env: Env) -> None:
    server = env.server.proc
    assert server is not None
    # Evaluating something makes sure the workers exist.
    assert env.request("POST", "/environments/acme/yaml/check", "values: {a: 1}\n", role="reader")[0] == 200
    workers = workers_of(server.pid)
    assert workers, "the server has no worker processes"
    assert os.sched_getscheduler(server.pid) == os.SCHED_OTHER
    assert {os.sched_getscheduler(w) for w in workers} == {os.SCHED_IDLE}
