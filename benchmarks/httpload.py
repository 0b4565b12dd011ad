"""A lean HTTP/1.1 load generator for the server benchmarks: keep-alive connections driven by
a selector loop in each of a few processes, requests pre-encoded, responses framed by their
``Content-Length`` (or chunks) without a header parser.

Why not ``http.client`` in threads: on this 2-core machine the load generator shares the cores
with the server it measures. ``http.client`` spends ~100 us of Python per request parsing
headers, and its threads share one GIL, so a figure of the server was partly a figure of the
client (a second server process had no core left to use). The clients stand for other
machines; this one costs a fraction of that and spreads over the cores like they would.

An operation is a sequence of steps; a step's path may hold ``{id}``, the ``"id"`` of the
previous step's JSON answer (an open, then a read of its session); a step may require bytes
in its answer.

Example::

    ops = [Step("GET", "/api/esc/ping")]
    latencies, elapsed = run(port, clients=20, total=4000, steps=ops)
"""
from __future__ import annotations

import multiprocessing
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Step", "run"]

_ID = re.compile(rb'"id"\s*:\s*"([^"]+)"')


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: bytes | None = None  # bytes the answer must contain

    def encode(self, port: int, previous: bytes) -> bytes:
        path = self.path
        if "{id}" in path:
            m = _ID.search(previous)
            if m is None:
                raise RuntimeError(f"{self.method} {self.path}: the previous answer has no id")
            path = path.replace("{id}", m.group(1).decode())
        head = [f"{self.method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body


def _response(buf: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, end of the response in ``buf``) once ``buf`` holds a whole response."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    status = int(buf[9:12])
    head = bytes(buf[:head_end]).lower()
    start = head_end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        stop = start + int(head[i + 17: j if j >= 0 else len(head)])
        return (status, bytes(buf[start:stop]), stop) if len(buf) >= stop else None
    if b"\r\ntransfer-encoding: chunked" not in head:
        return status, b"", start  # no body
    chunks, pos = [], start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2 + size + 2
        if len(buf) < pos:
            return None
        if size == 0:
            return status, b"".join(chunks), pos
        chunks.append(bytes(buf[eol + 2: eol + 2 + size]))


@dataclass
class _Conn:
    sock: socket.socket
    left: int  # operations still to run
    step: int = 0
    started: float = 0.0
    buf: bytearray = field(default_factory=bytearray)
    previous: bytes = b""


def _drive(port: int, counts: list[int], steps: list[Step], go: Any, out: Any) -> None:
    """One process: a connection per count, each running its operations back to back."""
    sel = selectors.DefaultSelector()
    conns = []
    for n in counts:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(_Conn(s, n))
    fixed = [None if "{id}" in st.path else st.encode(port, b"") for st in steps]
    latencies: list[float] = []
    errors: list[str] = []
    out.send("ready")
    go.wait()

    def send(c: _Conn) -> None:
        data = fixed[c.step] or steps[c.step].encode(port, c.previous)
        if c.step == 0:
            c.started = time.perf_counter()
        c.sock.sendall(data)

    for c in conns:
        if c.left:
            send(c)
            sel.register(c.sock, selectors.EVENT_READ, c)
    t0 = time.perf_counter()
    live = sum(1 for c in conns if c.left)
    while live:
        for key, _ in sel.select():
            c: _Conn = key.data
            chunk = c.sock.recv(1 << 18)
            if not chunk:
                raise RuntimeError("the server closed a connection")
            c.buf += chunk
            got = _response(c.buf)
            if got is None:
                continue
            status, body, stop = got
            del c.buf[:stop]
            step = steps[c.step]
            if status != 200 or (step.expect is not None and step.expect not in body):
                errors.append(f"{step.method} {step.path}: {status} {body[:200]!r}")
            c.previous = body
            c.step += 1
            if c.step == len(steps):
                latencies.append(time.perf_counter() - c.started)
                c.step, c.left = 0, c.left - 1
                if not c.left:
                    sel.unregister(c.sock)
                    live -= 1
                    continue
            send(c)
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.sock.close()
    out.send((latencies, elapsed, errors[:3], len(errors)))


def run(port: int, clients: int, total: int, steps: list[Step], processes: int = 2
        ) -> tuple[list[float], float]:
    """``total`` operations over ``clients`` keep-alive connections spread over ``processes``
    processes; returns each operation's latency (s) and the wall time of the whole run."""
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    pipes, procs = [], []
    for k in range(processes):
        mine = per_client[k::processes]
        if not mine:
            continue
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_drive, args=(port, mine, steps, go, child), daemon=True)
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    for parent in pipes:  # every process connected and waiting (a new interpreter each)
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("a load process did not start")
    t0 = time.perf_counter()
    go.set()
    latencies: list[float] = []
    errors: list[str] = []
    failed = 0
    for parent in pipes:
        if not parent.poll(600):
            raise RuntimeError("a load process did not finish")
        lat, _, errs, n = parent.recv()
        latencies += lat
        errors += errs
        failed += n
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    if failed:
        raise RuntimeError(f"{failed} failed requests, e.g. {errors[0]}")
    return latencies, elapsed
