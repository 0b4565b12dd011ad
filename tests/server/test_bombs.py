"""Evaluation bombs over HTTP (issue 10 §1): the real server answers them 422 with the limit's
diagnostic, never evaluates on its event loop (``/ping`` answers while bombs run), and kills a
worker that runs past the time limit."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.esc.test_budget import array_doubling, from_base64_many, nested_join, string_doubling

from .conftest import ORG, Env, ServerProcess, create_token, database_for, free_port

BOMBS = {
    "array-toJSON": array_doubling(20),
    "string": string_doubling(25),
    "join": nested_join(30),
    "views": array_doubling(24, to_json=False),
}


def _check(env: Env, text: str, role: str = "reader") -> tuple[int, dict]:
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/check", text, role=role)
    return status, body


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_check_of_a_bomb_is_422_with_the_diagnostic(env: Env, name: str) -> None:
    status, body = _check(env, BOMBS[name])
    assert status == 422, body
    assert body["code"] == 422 and body["message"].startswith("evaluation exceeds the limit of")
    (d,) = body["diagnostics"]
    assert d["summary"] == body["message"]
    assert d["range"]["environment"] == "<yaml>" and d["range"]["begin"]["line"] > 1
    assert d["path"].startswith("values.")


def test_from_base64_referenced_many_times(env: Env) -> None:
    status, body = _check(env, from_base64_many(250, size=300_000))  # a 400 KB body
    assert status == 422, body
    assert body["message"] == "evaluation exceeds the limit of 64 MB of strings built"


def test_open_and_save_of_a_bomb_are_422_and_nothing_is_saved(env: Env, unique: str) -> None:
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", BOMBS["views"], role="opener")
    assert status == 422 and "values in one value" in body["message"]
    name = f"bomb{unique}"
    status, _, _ = env.request("POST", f"/environments/{ORG}", {"project": "p", "name": name}, role="editor")
    assert status == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/p/{name}", BOMBS["string"], role="editor")
    assert status == 422 and body["diagnostics"][0]["range"]["environment"] == f"p/{name}"
    status, _, text = env.request("GET", f"/environments/{ORG}/p/{name}", role="reader")
    assert status == 200 and "a25" not in (text or "")


def test_honest_check_and_open_still_work(env: Env) -> None:
    text = "values:\n" + "".join(f"  v{i}: value-{i}\n  s{i}: ${{v{i}}}!\n" for i in range(2000))
    status, body = _check(env, text)
    assert status == 200 and body["properties"]["s1999"]["value"] == "value-1999!"
    status, _, opened = env.request("POST", f"/environments/{ORG}/yaml/open", text, role="opener")
    assert status == 200
    status, _, read = env.request("GET", f"/environments/{ORG}/yaml/open/{opened['id']}?property=s7",
                                  role="opener")
    assert status == 200 and read["value"] == "value-7!"


def _bombard(env: Env, stop: threading.Event, answers: list[int]) -> None:
    texts = list(BOMBS.values())
    i = 0
    while not stop.is_set():
        status, _ = _check(env, texts[i % len(texts)])
        answers.append(status)
        i += 1


def _ping(url: str) -> int:
    with urllib.request.urlopen(url + "/api/esc/ping", timeout=30) as r:
        return r.status


def test_ping_answers_while_bombs_run(env: Env) -> None:
    stop = threading.Event()
    answers: list[int] = []
    threads = [threading.Thread(target=_bombard, args=(env, stop, answers)) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        pings = [_ping(env.server.url) for _ in range(50)]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert pings == [200] * 50
    assert answers and set(answers) == {422}


# A regular expression that backtracks for ages inside ``re``, where the engine's own clock
# cannot look: only killing the worker bounds it.
REDOS = (
    "values:\n"
    "  s: {fn::validate: {schema: {type: string, pattern: '^(a+)+$'}, value: '" + "a" * 40 + "b'}}\n"
)


@pytest.fixture
def quick_timeout_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A server with a 1-second time limit (``ServerConfig.eval_timeout``), started the way
    ``esc-pulumi serve`` starts one."""
    data = tmp_path / "data"
    data.mkdir()
    token = create_token(data, ORG, "reader", name="reader-user")
    port = free_port()
    code = (
        "import sys, uvicorn\n"
        "from pathlib import Path\n"
        "from esc_pulumi.server.app import ServerConfig, create_app\n"
        "app = create_app(ServerConfig(data_dir=Path(sys.argv[1]), database=sys.argv[3] or None, eval_timeout=1.0))\n"
        "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', lifespan='on')\n"
    )
    server = ServerProcess(data, port=port)
    log = open(server.log_path, "ab")
    server.proc = subprocess.Popen([sys.executable, "-c", code, str(data), str(port), database_for(data) or ""],
                                   stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            if _ping(server.url) == 200:
                break
        except OSError:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                server.kill()
                raise RuntimeError(server.log_path.read_text())
            time.sleep(0.05)
    try:
        yield server, token
    finally:
        server.stop()


def test_a_worker_past_the_time_limit_is_killed(quick_timeout_server: tuple[ServerProcess, str]) -> None:
    server, token = quick_timeout_server
    env = Env(server, {"reader": token}, "")
    results: list[tuple[int, dict]] = []
    t = threading.Thread(target=lambda: results.append(_check(env, REDOS)))
    t.start()
    time.sleep(0.3)
    assert _ping(server.url) == 200  # while the worker backtracks
    t.join(60)
    ((status, body),) = results
    assert status == 422, body
    assert body["message"] == "evaluation exceeds the time limit of 1 s"
    # the killed worker was replaced: evaluations go on
    status, body = _check(env, "values:\n  a: 1\n")
    assert status == 200 and body["properties"]["a"]["value"] == 1
