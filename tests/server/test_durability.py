"""Durability (SIGKILL mid-stream, restart) and concurrency (If-Match, no lost update)."""
from __future__ import annotations

import threading
import time

from .conftest import ORG, Env, ServerProcess, start_env


def test_sigkill_mid_stream_keeps_every_acknowledged_revision(tmp_path) -> None:
    env = start_env(tmp_path / "data")
    path = f"/environments/{ORG}/dur/stream"
    assert env.request("POST", f"/environments/{ORG}", {"project": "dur", "name": "stream"})[0] == 204
    acknowledged: dict[int, int] = {}  # revision -> the counter written in it
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, headers, _ = env.request("PATCH", path, f"values:\n  counter: {i}\n  s: {{fn::secret: k{i}}}\n")
            except OSError:
                return  # the server is gone
            if status == 200:
                rev = int(headers.get("pulumi-esc-revision") or headers.get("Pulumi-ESC-Revision"))
                acknowledged[rev] = i

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    while len(acknowledged) < 20 and any(t.is_alive() for t in threads):  # kill once updates flow
        time.sleep(0.01)
    env.server.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 20

    restarted = ServerProcess(env.server.data).start()
    try:
        env.server = restarted
        status, _, revisions = env.request("GET", f"{path}/versions?count=500")
        assert status == 200
        numbers = sorted(r["number"] for r in revisions)
        # Revisions are contiguous (nothing half-written) and include every acknowledged one.
        assert numbers == list(range(1, len(numbers) + 1))
        assert set(acknowledged) <= set(numbers)
        for rev, counter in acknowledged.items():
            status, _, text = env.request("GET", f"{path}/versions/{rev}")
            assert status == 200 and f"counter: {counter}\n" in text
        status, _, body = env.request("POST", f"{path}/open")
        assert status == 200
    finally:
        restarted.stop()


def test_concurrent_if_match_updates_lose_nothing(env: Env, unique: str) -> None:
    name = f"race-{unique}"
    path = f"/environments/{ORG}/race/{name}"
    assert env.request("POST", f"/environments/{ORG}", {"project": "race", "name": name})[0] == 204
    assert env.request("PATCH", path, "values:\n  items: []\n")[0] == 200
    workers, per_worker = 6, 5
    conflicts = [0]
    lock = threading.Lock()

    def append(worker: int) -> None:
        done = 0
        while done < per_worker:
            # read-modify-write: the ETag of what was read guards the write
            status, headers, text = env.request("GET", path)
            etag = headers.get("etag") or headers.get("ETag")
            items = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
            items.append(f"w{worker}-{done}")
            body = "values:\n  items:\n" + "".join(f"    - {x}\n" for x in items)
            status, _, _ = env.request("PATCH", path, body, headers={"If-Match": etag})
            if status == 200:
                done += 1
            else:
                assert status == 409
                with lock:
                    conflicts[0] += 1

    threads = [threading.Thread(target=append, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status, _, body = env.request("POST", f"{path}/open")
    status, _, opened = env.request("GET", f"{path}/open/{body['id']}")
    items = [v["value"] for v in opened["properties"]["items"]["value"]]
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(per_worker)}
    assert sorted(items) == sorted(expected)  # every acknowledged append is there, once
    status, _, revisions = env.request("GET", f"{path}/versions?count=500")
    assert len(revisions) == 2 + workers * per_worker
