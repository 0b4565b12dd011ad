"""Load benchmark of ``esc-pulumi serve`` on loopback.

Starts a server (temporary data folder, tokens made with the CLI), stores a 100-value
environment that imports 3 others, then drives it with 20 concurrent clients (keep-alive
connections of the lean load generator :mod:`httpload`, spread over one process per core, up
to 4: the clients stand for other machines, so they should cost the shared cores as little as
possible) for a bounded number of requests:

- floor: ``GET /api/esc/ping`` (fixed JSON: the framework's own cost)
- open:  ``POST .../open`` (authenticate, resolve imports, evaluate, decrypt, new session)
- open+read: ``POST .../open`` then ``GET .../open/{id}`` (what a client does to get values)

and prints requests/second, p50 and p99 latency, and each against the floor as a ratio
(target: open <= 3x the floor's throughput; the floor and the open are measured in turn
``--rounds`` times and the median of the pairs' ratios is the figure).

Then the bombs of issue 10 (definitions of a few hundred bytes whose shared values expand to
gigabytes): ``/ping`` latency from one client, idle and while 4 clients send bombs to
``yaml/check`` (target: p99 within 2x of the idle p99, measured in the same run), and the
server's peak memory meanwhile (its process and its evaluation workers, RSS; target: below
500 MB), on a server of their own (the first one holds its opens' sessions).

Then open sessions (security review §5): a second server with ``--session-memory 64`` gets 30
anonymous opens of distinct definitions of about 0.9 MB each (sessions of about 14 MB), and its
own process's resident memory is measured before, half-way and after (target: it grows by at
most the budget plus 100 MB, what one such open holds while it is being built and answered;
without the bound it grew by about 11 MB an open, linearly).

Then the stores (issue 13): open throughput and p50/p99 with 20 clients on SQLite in one
process, on PostgreSQL in one process, and on PostgreSQL in two processes (``--workers 2``),
each with its own ping floor (targets: two processes at least 1.6x one process's open
throughput; open p50 at most 3x the ping floor's p50). The PostgreSQL server is a temporary
one started from the machine's binaries (as the tests do), or ``--database URL``.

Every open's audit entry is on disk before its answer (group commit), so the open figures
include it; a single SQLite server keeps its sessions in memory, PostgreSQL and ``--workers``
in the database (encrypted), before the answer. Each figure is
printed with its target and a met/missed verdict.

Usage::

    python benchmarks/server.py [--clients 20] [--requests 4000] [--session-opens 60]
    python benchmarks/server.py --only stores [--database postgresql://...]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import httpload
from httpload import Step
from verdict import at_least, at_most

ORG = "bench"
LOAD_PROCESSES = max(1, min(4, os.cpu_count() or 2))


def _cli() -> list[str]:
    return [sys.executable, "-m", "esc_pulumi.server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(*extra: str, role: str = "admin") -> Iterator[tuple[int, str, subprocess.Popen]]:
    """A new ``esc-pulumi serve`` (with ``extra`` options) on a temporary folder: its port, a
    token of ``role``, its process; stopped and removed at the end."""
    data = Path(tempfile.mkdtemp(prefix="esc-bench-"))
    proc = None
    try:
        proc, port, token = _start(data, list(extra), dict(os.environ), role)
        yield port, token, proc
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)


def _definitions() -> dict[str, str]:
    bases = {
        f"base{i}": "values:\n" + "".join(f"  b{i}_{j}: value-{i}-{j}\n" for j in range(10))
        + f"  shared: from-base{i}\n  secret{i}: {{fn::secret: base-secret-{i}}}\n"
        for i in range(3)
    }
    lines = ["imports:\n  - base0\n  - base1\n  - base2\nvalues:\n"]
    for k in range(100):
        if k % 10 == 0:
            lines.append(f"  s{k}: {{fn::secret: secret-number-{k}}}\n")
        elif k % 10 == 1:
            lines.append(f"  i{k}: https://${{b0_{k % 10}}}.example.com/{k}\n")
        elif k % 10 == 2:
            lines.append(f"  o{k}: {{port: {8000 + k}, enabled: true, tags: [a, b]}}\n")
        else:
            lines.append(f"  v{k}: plain-value-{k}\n")
    lines.append("  pulumiConfig:\n    app:url: ${i1}\n    app:secret: ${s0}\n")
    return {**bases, "app": "".join(lines)}


def _load(port: int, clients: int, total: int, steps: list[Step]) -> list[float]:
    """Run ``total`` operations over ``clients`` connections (:mod:`httpload`, in as many
    processes as there are cores); returns per-operation latencies (s), then the wall time."""
    latencies, elapsed = httpload.run(port, clients, total, steps, processes=LOAD_PROCESSES)
    latencies.append(elapsed)  # the last item carries the wall time
    return latencies


def _call(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str]) -> bytes:
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {body[:200]!r}")
    return body


def _stats(name: str, latencies: list[float], floor: dict[str, float] | None) -> dict[str, float]:
    elapsed = latencies.pop()
    lat = sorted(latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rate = len(lat) / elapsed
    out = {"rate": rate, "p50": p50, "p99": p99}
    ratio = ""
    if floor:
        ratio = f"   x{floor['rate'] / rate:4.2f} floor (throughput)   x{p50 / floor['p50']:4.2f} (p50)"
    print(f"{name:<12} {rate:8.0f} /s   p50 {p50 * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms{ratio}")
    return out


def _uncached_evaluation(rounds: int = 200) -> None:
    """What an open costs when nothing is cached (a new revision, another actor, providers):
    parse + evaluate + decrypt in-process, without HTTP."""
    from esc_pulumi.secrets.crypto import AesGcmCipher
    from esc_pulumi.secrets.definitions import encrypt_secrets
    from esc_pulumi.esc import LoadedEnvironment, evaluate, load_definition

    cipher = AesGcmCipher(os.urandom(32))
    texts = {k: encrypt_secrets(v, cipher.encrypt) for k, v in _definitions().items()}

    class Loader:
        def load(self, name: str) -> LoadedEnvironment:
            return LoadedEnvironment(text=texts[name], decrypter=cipher.decrypt)

    t0 = time.perf_counter()
    for _ in range(rounds):
        decl, _ = load_definition(texts["app"], "default/app")
        evaluate(decl, mode="open", loader=Loader(), decrypter=cipher.decrypt)
    per = (time.perf_counter() - t0) / rounds
    print(f"uncached open (parse 4 definitions + evaluate, in-process, 1 thread): {per * 1000:.2f} ms")


def _bombs() -> list[bytes]:
    array = ["values:", "  a0: [x, x]"] + [f"  a{i}: ['${{a{i - 1}}}', '${{a{i - 1}}}']" for i in range(1, 21)]
    array.append("  out: {fn::toJSON: '${a20}'}")
    string = ["values:", "  a0: xxxxxxxx"] + [f"  a{i}: '${{a{i - 1}}}${{a{i - 1}}}'" for i in range(1, 26)]
    join = ["values:", "  a0: xxxxxxxx"] + [
        f"  a{i}: {{fn::join: ['', ['${{a{i - 1}}}', '${{a{i - 1}}}']]}}" for i in range(1, 31)]
    views = ["values:", "  a0: [x, x]"] + [f"  a{i}: ['${{a{i - 1}}}', '${{a{i - 1}}}']" for i in range(1, 25)]
    return [("\n".join(t) + "\n").encode() for t in (array, string, join, views)]


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the evaluation workers), in KB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _rss_sampler(pid: int, stop: Any, out: Any) -> None:
    """The peak of :func:`_rss_kb` every 20 ms until ``stop``, put on ``out``."""
    peak = _rss_kb(pid)
    while not stop.is_set():
        peak = max(peak, _rss_kb(pid))
        time.sleep(0.02)
    out.put(peak)


def _ping_p99(port: int, count: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat = []
    for _ in range(count):
        t0 = time.perf_counter()
        _call(conn, "GET", "/api/esc/ping", {})
        lat.append(time.perf_counter() - t0)
        time.sleep(0.002)  # a health checker, not a load generator
    conn.close()
    lat.sort()
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def _bomber(port: int, token: str, k: int, stop: Any, out: Any) -> None:
    """One bombing client (a process of its own, so that the load generator's GIL does not
    slow the ping client being measured). The clients would be other machines; here they
    share the server's cores, and their own CPU is not the server's latency: they run niced
    and off the core the server leaves to its request loops (its evaluation workers' cores,
    see ``esc_pulumi.server.pool``), where a woken loop would otherwise wait behind them."""
    from esc_pulumi.server import pool

    os.nice(15)
    pool._leave_a_core()  # the workers' rule, so the two cannot drift apart
    bombs = _bombs()
    headers = {"Authorization": f"token {token}", "Content-Type": "application/x-yaml"}
    path = f"/api/esc/environments/{ORG}/yaml/check"
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = k
    while not stop.is_set():
        conn.request("POST", path, body=bombs[i % len(bombs)], headers=headers)
        r = conn.getresponse()
        r.read()
        statuses[r.status] = statuses.get(r.status, 0) + 1
        i += 1
    conn.close()
    out.put(statuses)


def _bomb_figures(port: int, token: str, pid: int, pings: int) -> None:
    """/ping p99 idle and under 4 bombing clients, and the server's peak RSS meanwhile."""
    bombs = _bombs()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    out = ctx.Queue()
    statuses: dict[int, int] = {}
    # The memory sampler is a process of its own, started before the idle figure: the ping
    # client's process (and its GIL) is the same in both figures.
    sampling = ctx.Event()
    peaks = ctx.Queue()
    watch = ctx.Process(target=_rss_sampler, args=(pid, sampling, peaks))
    watch.start()

    # The workers are up (a new server's are still importing the engine) before the idle figure.
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/esc/environments/{ORG}/yaml/check",
                                 data=b"values: {a: 1}\n", method="POST",
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/x-yaml"})
    urllib.request.urlopen(req, timeout=60).read()
    idle = _ping_p99(port, pings)
    before = _rss_kb(pid) / 1024
    bombers = [ctx.Process(target=_bomber, args=(port, token, k, stop, out)) for k in range(4)]
    for b in bombers:
        b.start()
    time.sleep(2.0)  # the bombers start (a new interpreter each) and get going
    try:
        loaded = _ping_p99(port, pings)
    finally:
        stop.set()
        for _ in bombers:
            for code, n in out.get(timeout=120).items():
                statuses[code] = statuses.get(code, 0) + n
        for b in bombers:
            b.join()
        sampling.set()
        peak_kb = peaks.get(timeout=60)
        watch.join()
    answered = sum(statuses.values())
    print(f"bombs: 4 clients sending {len(bombs)} kinds of bomb to yaml/check; answers {dict(sorted(statuses.items()))}"
          f" ({answered} bombs)")
    print(f"/ping p99 idle {idle * 1000:6.2f} ms, under bombs {loaded * 1000:6.2f} ms = x{loaded / idle:4.2f} "
          f"{at_most(loaded / idle, 2, 'x idle')}")
    mb = peak_kb / 1024
    print(f"server peak RSS during the bombs (server + workers): {mb:6.0f} MB, {before:.0f} MB before them "
          f"{at_most(mb, 500, ' MB')}")


def _process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _session_memory_figures(opens: int, budget_mb: int = 64) -> None:
    """RSS growth of a server with ``--session-memory budget_mb`` after ``opens`` anonymous opens
    of distinct ~0.9 MB definitions (each session estimated at ~14 MB)."""
    with _serving("--session-memory", str(budget_mb), role="opener") as (port, token, proc):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"token {token}", "Content-Type": "application/x-yaml"}
        path = f"/api/esc/environments/{ORG}/yaml/open"

        def open_one(tag: str) -> None:
            text = "values:\n" + "".join(f"  k{i}: {tag}-value-{i}\n" for i in range(35_000))
            conn.request("POST", path, body=text.encode(), headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"open: {r.status} {body[:200]!r}")

        open_one("warm-up")
        before = _process_rss_mb(proc.pid)
        t0 = time.perf_counter()
        for n in range(opens):
            open_one(f"s{n}")
            if n == opens // 2 - 1:
                half = _process_rss_mb(proc.pid)
        elapsed = time.perf_counter() - t0
        after = _process_rss_mb(proc.pid)
        conn.close()
        growth = after - before
        print(f"sessions: {opens} opens of distinct 0.9 MB definitions ({elapsed / opens * 1000:.0f} ms each), "
              f"--session-memory {budget_mb}: server RSS {before:.0f} -> {half:.0f} (half-way) -> {after:.0f} MB, "
              f"+{growth:.0f} MB {at_most(growth, budget_mb + 100, ' MB')}")


def _start(data: Path, extra: list[str], environ: dict[str, str], role: str = "admin"
           ) -> tuple[subprocess.Popen[bytes], int, str]:
    """A server on ``data`` (and ``extra`` options), answering once it has started, and a token
    of ``role``. --log-level warning: the per-request log line is the same for every endpoint;
    left out, the figures compare the endpoints, not the terminal."""
    port = _free_port()
    token = subprocess.run(
        [*_cli(), "serve", "token", "create", "--data", str(data), "--org", ORG, "--role", role],
        check=True, capture_output=True, text=True, env=environ,
    ).stdout.strip().splitlines()[-1]
    log = open(data / "server.log", "ab")
    proc = subprocess.Popen([*_cli(), "serve", "--port", str(port), "--data", str(data), "--log-level", "warning",
                             *extra], stdout=log, stderr=log, env=environ)
    for _ in range(1200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/esc/ping", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            time.sleep(0.05)
    return proc, port, token


def _seed(port: int, token: str) -> None:
    """The benchmark's environments stored on the server at ``port``."""
    base = f"http://127.0.0.1:{port}/api/esc"
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    for name, text in _definitions().items():
        req = urllib.request.Request(f"{base}/environments/{ORG}", method="POST", headers=headers,
                                     data=json.dumps({"project": "default", "name": name}).encode())
        urllib.request.urlopen(req).read()
        req = urllib.request.Request(f"{base}/environments/{ORG}/default/{name}", method="PATCH",
                                     headers={**headers, "Content-Type": "application/x-yaml"}, data=text.encode())
        urllib.request.urlopen(req).read()


def _start_seeded(data: Path, extra: list[str], environ: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, str]:
    """A server on ``data`` (and ``extra`` options) with the benchmark's environments stored."""
    proc, port, token = _start(data, extra, environ)
    _seed(port, token)
    return proc, port, token

def _store_figures(clients: int, requests: int, database: str | None) -> None:
    """Open throughput and latency per store and process count (see the module docstring)."""
    pg = None
    root = Path(tempfile.mkdtemp(prefix="esc-bench-stores-"))
    try:
        if database is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))
            from pgserver import PgServer

            pg = PgServer.start(root / "pg")
        results: dict[str, dict[str, float]] = {}
        print(f"stores: {clients} clients, {requests} opens each (a keep-alive connection per client)")
        for label, use_pg, workers in (("sqlite x1", False, 1), ("postgres x1", True, 1), ("postgres x2", True, 2)):
            data = root / label.replace(" ", "-")
            data.mkdir()
            environ = dict(os.environ)
            environ.pop("ESC_PULUMI_DATABASE", None)
            if use_pg:
                environ["ESC_PULUMI_DATABASE"] = database or pg.new_database()  # type: ignore[union-attr]
            proc, port, token = _start_seeded(data, ["--workers", str(workers)], environ)
            try:
                auth = {"Authorization": f"token {token}"}
                open_path = f"/api/esc/environments/{ORG}/default/app/open"

                ping = [Step("GET", "/api/esc/ping")]
                open_only = [Step("POST", open_path, auth)]

                _load(port, clients, 200, ping)
                _load(port, clients, 400, open_only)  # warm-up: every process's caches
                floor = _stats(f"{label} ping", _load(port, clients, requests, ping), None)
                opened = _stats(f"{label} open", _load(port, clients, requests, open_only), floor)
                results[label] = opened
                p50 = opened["p50"] / floor["p50"]
                print(f"{'':<12} open p50 = x{p50:.2f} the ping floor's p50 {at_most(p50, 3)}")
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        scale = results["postgres x2"]["rate"] / results["postgres x1"]["rate"]
        print(f"postgres: 2 processes = x{scale:.2f} one process's open throughput {at_least(scale, 1.6)}")
    finally:
        if pg is not None:
            pg.teardown()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=4000, help="operations per scenario")
    ap.add_argument("--rounds", type=int, default=3, help="alternating floor/open measurements")
    ap.add_argument("--pings", type=int, default=3000, help="pings for each /ping p99 of the bomb figures")
    ap.add_argument("--session-opens", type=int, default=30, help="opens of ~0.9 MB definitions for the memory figure")
    ap.add_argument("--only", choices=["server", "stores"], default=None, help="only these figures")
    ap.add_argument("--database", default=None, help="the PostgreSQL of the store figures (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.only == "stores":
        _store_figures(args.clients, args.requests, args.database)
        return 0

    with _serving() as (port, token, proc):
        _seed(port, token)

        auth = {"Authorization": f"token {token}"}
        open_path = f"/api/esc/environments/{ORG}/default/app/open"

        ping = [Step("GET", "/api/esc/ping")]
        open_only = [Step("POST", open_path, auth)]
        open_read = [Step("POST", open_path, auth),
                     Step("GET", f"{open_path}/{{id}}", auth, expect=b'"secret":true')]

        # warm-up (caches, connections)
        _load(port, args.clients, 200, ping)
        _load(port, args.clients, 200, open_read)

        print(f"esc-pulumi serve, {args.clients} clients, {args.requests} operations each, "
              "100-value environment with 3 imports")
        # This machine's speed drifts from second to second: the floor and the open are measured
        # in alternation and the ratio is the median of the pairs (as benchmarks/engine.py does).
        ratios = []
        for _ in range(args.rounds):
            floor = _stats("floor(ping)", _load(port, args.clients, args.requests, ping), None)
            opened = _stats("open", _load(port, args.clients, args.requests, open_only), floor)
            ratios.append(floor["rate"] / opened["rate"])
        _stats("open+read", _load(port, args.clients, args.requests, open_read), floor)
        _uncached_evaluation()
        ratio = statistics.median(ratios)
        print(f"open costs {ratio:.2f}x the floor {at_most(ratio, 3)} "
              f"(median of {len(ratios)} pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
    # The bombs get a server of their own: the one above holds the sessions of its opens (up
    # to its session budget, by design), which are not what a bomb costs.
    with _serving() as (port, token, proc):
        _bomb_figures(port, token, proc.pid, args.pings)
    _session_memory_figures(args.session_opens)
    if args.only is None:
        _store_figures(args.clients, args.requests, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
