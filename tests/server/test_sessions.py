"""Open sessions (security review §5): bounded by memory in all and per organisation, the
oldest of the organisation most over its share evicted first, expired at their duration; and
where they live (this process's memory, or the database for every process).

Against a real server with a small ``--session-memory``; plus the eviction rules on
:class:`~esc_pulumi.server.sessions.Sessions` with a fake clock.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Iterator

import pytest

from esc_pulumi.esc import Value
from esc_pulumi.server.sessions import (
    DEFAULT_DURATION,
    Evaluation,
    SessionGone,
    SessionLimits,
    Sessions,
    SessionTooLarge,
)

from .conftest import BACKEND, ORG, Env, ServerProcess, db_execute, replica_flags, start_env

MB = 1 << 20


def big_definition(tag: str, keys: int = 2_100) -> str:
    """About 40 KB of YAML whose session is estimated at about 2 MB (distinct per ``tag``, so
    that no two opens share an evaluation). A session keeps the whole detailed Environment
    (each property's expression and schema beside its value), about 2.4 times what the value
    alone took: 2,100 keys cost what 5,000 did before, so the budgets below keep their sense."""
    return "values:\n" + "".join(f"  k{i}: {tag}-value-{i}\n" for i in range(keys))


def open_yaml(env: Env, text: str, org: str = ORG, token: str | None = None) -> tuple[int, dict]:
    status, _, body = env.request("POST", f"/environments/{org}/yaml/open", text, role="opener", token=token)
    return status, body


def readable(env: Env, sid: str, org: str = ORG, token: str | None = None) -> bool:
    status, _, body = env.request("GET", f"/environments/{org}/yaml/open/{sid}?property=k1", role="opener",
                                  token=token)
    assert status in (200, 404), body
    return status == 200


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[Env]:
    e = start_env(tmp_path_factory.mktemp("esc-sessions"), "--session-memory", "10", "--eval-workers", "1")
    try:
        yield e
    finally:
        e.server.stop()


def test_sessions_stay_within_the_memory_budget(small: Env) -> None:
    # (What this does to the server's resident memory is a figure of benchmarks/server.py.)
    ids = []
    for n in range(25):
        status, body = open_yaml(small, big_definition(f"mem{n}"))
        assert status == 200, body
        ids.append(body["id"])
    kept = [readable(small, sid) for sid in ids]
    # The newest are kept, the oldest evicted; about 10 MB / 2 MB of them fit.
    assert kept[-1] and not kept[0]
    assert kept == sorted(kept)  # evicted oldest first
    assert 2 <= sum(kept) <= 6
    status, _, body = small.request("GET", f"/environments/{ORG}/yaml/open/{ids[0]}", role="opener")
    assert status == 404 and "open the environment again" in body["message"]


def test_the_organisation_over_its_share_loses_its_own_oldest(small: Env) -> None:
    other = small.other_admin
    mine = [open_yaml(small, big_definition(f"share-a{n}"))[1]["id"] for n in range(6)]
    theirs = [open_yaml(small, big_definition(f"share-b{n}"), org="other", token=other)[1]["id"] for n in range(2)]
    assert all(readable(small, sid, "other", other) for sid in theirs)
    # acme filled the budget alone; other's arrival evicted acme's oldest, not anything of other's.
    assert not readable(small, mine[0]) and readable(small, mine[-1])
    more = [open_yaml(small, big_definition(f"share-a{n}-again"))[1]["id"] for n in range(4)]
    # acme keeps opening: its own sessions go, other's two (within its share) stay.
    assert all(readable(small, sid, "other", other) for sid in theirs)
    assert readable(small, more[-1])
    assert not any(readable(small, sid) for sid in mine)


def test_a_per_organisation_cap(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data", "--session-memory", "100", "--session-org-memory", "4.5",
                    "--eval-workers", "1")
    try:
        ids = [open_yaml(env, big_definition(f"cap{n}"))[1]["id"] for n in range(4)]
        assert [readable(env, sid) for sid in ids] == [False, False, True, True]
        status, body = open_yaml(env, big_definition("huge", keys=15_000))
        assert status == 422 and "more than an organization's open sessions may hold (4.5 MB)" in body["message"]
    finally:
        env.server.stop()


def test_durations_default_and_maximum(small: Env, unique: str) -> None:
    name = f"dur-{unique}"
    assert small.request("POST", f"/environments/{ORG}", {"project": "p", "name": name})[0] == 204
    path = f"/environments/{ORG}/p/{name}/open"
    status, _, body = small.request("POST", f"{path}?duration=25h", role="opener")
    assert status == 400 and body["message"] == "duration must be positive and at most 24h"
    assert small.request("POST", f"{path}?duration=24h", role="opener")[0] == 200
    assert small.request("POST", path, role="opener")[0] == 200
    assert DEFAULT_DURATION == 2 * 3600  # the Pulumi CLI's 2h0m0s


def test_a_longer_maximum_can_be_allowed(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data", "--session-max-duration", "48h")
    try:
        assert env.request("POST", f"/environments/{ORG}", {"project": "p", "name": "e"})[0] == 204
        assert env.request("POST", f"/environments/{ORG}/p/e/open?duration=30h", role="opener")[0] == 200
        assert env.request("POST", f"/environments/{ORG}/p/e/open?duration=49h", role="opener")[0] == 400
    finally:
        env.server.stop()


WHERE = {
    # mode: (the first server's flags, the flags of a second server on the same store)
    "one process": ((), ()),
    "--shared-sessions": (("--shared-sessions",), ("--shared-sessions",)),
    "--workers 2": (("--workers", "2"), ("--shared-sessions",)),
}


@pytest.mark.parametrize("mode", list(WHERE))
def test_where_sessions_live(tmp_path: Path, mode: str) -> None:
    """One SQLite server keeps its sessions in memory: an open writes its audit entries and no
    session row, and another server on the folder cannot read them. Shared sessions
    (``--shared-sessions``, ``--workers N``, and PostgreSQL always) are rows in the database,
    their value sealed, and another server process reads them."""
    first, second = WHERE[mode]
    in_database = BACKEND.name == "postgres" or mode != "one process"
    data = tmp_path / "data"
    env = start_env(data, *first, "--eval-workers", "1")
    other = Env(ServerProcess(data, extra=(*second, "--eval-workers", "1")).start(), env.tokens, env.other_admin)
    try:
        path = f"/environments/{ORG}/where/app"
        assert env.request("POST", f"/environments/{ORG}", {"project": "where", "name": "app"})[0] == 204
        assert env.request("PATCH", path, "values:\n  greeting: hello\n  pw: {fn::secret: where-pw}\n")[0] == 200
        status, _, body = env.request("POST", f"{path}/open", role="opener")
        assert status == 200, body
        sid = body["id"]
        status, _, opened = env.request("GET", f"{path}/open/{sid}", role="opener")
        assert status == 200 and opened["properties"]["pw"]["value"] == "where-pw"
        # Durable either way: the open is in the audit log once it is acknowledged.
        opens = db_execute(data, "SELECT target FROM audit WHERE action='environment.open'")
        assert ("where/app",) in opens
        rows = db_execute(data, "SELECT id_hash, org, project, env, value_id FROM sessions")
        values = db_execute(data, "SELECT id, payload FROM session_values")
        status, _, read = other.request("GET", f"{path}/open/{sid}", role="opener")
        if in_database:
            assert [r[:4] for r in rows] == [(hashlib.sha256(sid.encode()).hexdigest(), ORG, "where", "app")]
            assert [v[0] for v in values] == [rows[0][4]]
            assert b"where-pw" not in bytes(values[0][1])  # sealed with the server key
            assert status == 200, read
            assert read["properties"]["pw"]["value"] == "where-pw"
            assert read["properties"]["greeting"]["value"] == "hello"
        else:
            assert rows == [] and values == []
            assert status == 404 and "open the environment again" in read["message"]
            # Reads write nothing either.
            assert env.request("GET", f"{path}/open/{sid}", role="opener")[0] == 200
            assert db_execute(data, "SELECT COUNT(*) FROM sessions") == [(0,)]
    finally:
        other.server.stop()
        env.server.stop()


def test_a_server_sweeps_the_expired_session_rows_stopped_servers_left(tmp_path: Path) -> None:
    """Session rows that servers with shared sessions left hold sealed values. A server started
    on the store deletes those that have expired soon after it starts, and leaves live ones to
    their owners: on SQLite also a one-process server, whose own sessions are in memory (no
    one else may be left to sweep the folder)."""
    data = tmp_path / "data"
    env = start_env(data, *replica_flags(), "--eval-workers", "1")
    try:
        path = f"/environments/{ORG}/left/app"
        assert env.request("POST", f"/environments/{ORG}", {"project": "left", "name": "app"})[0] == 204
        assert env.request("PATCH", path, "values:\n  pw: {fn::secret: left-pw}\n")[0] == 200
        assert env.request("POST", f"{path}/open?duration=1s", role="opener")[0] == 200
        status, _, live = env.request("POST", f"{path}/open?duration=1h", role="opener")
        assert status == 200
    finally:
        env.server.stop()
    assert db_execute(data, "SELECT COUNT(*) FROM sessions") == [(2,)]
    time.sleep(1.2)  # the first session has expired; nothing running sweeps it
    assert db_execute(data, "SELECT COUNT(*) FROM sessions") == [(2,)]
    alone = ServerProcess(data, extra=("--eval-workers", "1")).start()
    try:
        deadline = time.monotonic() + 10
        while db_execute(data, "SELECT COUNT(*) FROM sessions") != [(1,)] and time.monotonic() < deadline:
            time.sleep(0.1)
        left = db_execute(data, "SELECT id_hash FROM sessions")
        assert left == [(hashlib.sha256(live["id"].encode()).hexdigest(),)]
        assert db_execute(data, "SELECT COUNT(*) FROM session_values") == [(1,)]
    finally:
        alone.stop()


# -- the rules, with a fake clock ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def evaluation(size: int) -> Evaluation:
    return Evaluation(Value({}), [], (), None, size)


def test_expired_sessions_are_swept_and_free_their_memory() -> None:
    clock = Clock()
    sessions = Sessions(SessionLimits(max_bytes=100 * MB), clock=clock)
    short = sessions.new("a", None, "<yaml>", evaluation(10 * MB), duration=60)
    long = sessions.new("a", None, "<yaml>", evaluation(10 * MB), duration=7200)
    assert sessions.usage("a") > 20 * MB
    clock.now += 61
    assert sessions.sweep() == 1
    assert sessions.usage("a") < 11 * MB and len(sessions) == 1
    with pytest.raises(SessionGone):
        sessions.get("a", None, short.id)
    assert sessions.get("a", None, long.id) is long
    clock.now += 7200
    sessions.sweep()
    assert len(sessions) == 0 and sessions.total == 0


def test_a_shared_evaluation_is_counted_once() -> None:
    sessions = Sessions(SessionLimits(max_bytes=100 * MB), clock=Clock())
    ev = evaluation(30 * MB)
    opened = [sessions.new("a", ("p", "e"), "p/e", ev, 3600) for _ in range(50)]
    assert len(sessions) == 50 and sessions.usage("a") < 31 * MB
    assert all(sessions.get("a", ("p", "e"), s.id) for s in opened)


def test_eviction_prefers_the_organisation_over_its_share() -> None:
    sessions = Sessions(SessionLimits(max_bytes=100 * MB), clock=Clock())
    a = [sessions.new("a", None, "<yaml>", evaluation(15 * MB), 3600) for _ in range(6)]  # 90 MB
    b = [sessions.new("b", None, "<yaml>", evaluation(15 * MB), 3600) for _ in range(3)]  # b's share: 50 MB
    assert all(sessions.get("b", None, s.id) for s in b)
    gone = [s for s in a if s.id not in {x.id for x in sessions._by_id.values()}]
    assert gone == a[:len(gone)] and len(gone) == 3  # a's oldest
    sessions.new("a", None, "<yaml>", evaluation(15 * MB), 3600)
    assert all(sessions.get("b", None, s.id) for s in b)  # b is within its share
    with pytest.raises(SessionTooLarge):
        sessions.new("c", None, "<yaml>", evaluation(101 * MB), 3600)


def test_the_session_count_is_bounded_too() -> None:
    sessions = Sessions(SessionLimits(max_sessions=10), clock=Clock())
    opened = [sessions.new("a", None, "<yaml>", evaluation(1), 3600) for _ in range(25)]
    assert len(sessions) == 10
    assert [s.id for s in opened[-10:]] == list(sessions._by_id)
