"""moto's AWS emulator as a server on 127.0.0.1, in a child process, for the provider tests
and ``benchmarks/providers.py``.

The child runs ``moto.server.ThreadedMotoServer`` on a port the OS picks (port 0, so no race
for a free port), prints it, and serves until its standard input closes: when the test
session ends, or dies, the pipe closes and the emulator exits with it. Its lifetime is the
fixture's, and nothing outlives the run.

``record=True`` turns on moto's request recorder (every request the emulator receives, in a
JSON-lines file): the tests read it to see what was sent, and that nothing was.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

_CHILD = r"""
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()   # until the parent closes the pipe (or dies)
server.stop()
"""

REGION = "us-east-1"


@dataclass
class Emulator:
    """A running moto server: ``url``, ``client(service)``, ``reset()``, ``requests()``."""

    proc: subprocess.Popen[str]
    port: int
    recording: Path | None = None
    _seen: int = field(default=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, region: str = REGION, **credentials: str) -> Any:
        """A boto3 client talking to the emulator (any key pair works unless auth is on)."""
        import boto3

        creds = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.session.Session().client(service, region_name=region, endpoint_url=self.url, **creds)

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        req = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30):
            pass

    def requests(self) -> list[dict[str, Any]]:
        """Every request recorded since the last call (``record=True`` only): method, url,
        headers and body (``body_text``: the body decoded)."""
        assert self.recording is not None, "start the emulator with record=True"
        if not self.recording.exists():
            return []
        lines = self.recording.read_text(encoding="utf-8").splitlines()
        new, self._seen = lines[self._seen:], len(lines)
        out = []
        for line in new:
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                import base64

                body = base64.b64decode(body).decode("utf-8", "replace")
            entry["body_text"] = body
            if "/moto-api/" not in entry.get("url", ""):
                out.append(entry)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the child's cue to stop
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()


def start(
    workdir: Path, *, record: bool = False, environ: Mapping[str, str] | None = None, timeout: float = 60
) -> Emulator:
    """Start the emulator (``environ``: extra settings for moto, e.g.
    ``INITIAL_NO_AUTH_ACTION_COUNT`` to enforce IAM authentication after N requests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    recording = workdir / "moto-recording.jsonl" if record else None
    if recording is not None:
        env["MOTO_ENABLE_RECORDING"] = "true"
        env["MOTO_RECORDER_FILEPATH"] = str(recording)
    env.update(environ or {})
    log = open(workdir / "moto.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        text=True, env=env, cwd=workdir,
    )
    log.close()
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    # The port, once the server listens (waiting no longer than the timeout for it).
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError("moto did not start:\n" + (workdir / "moto.log").read_text())
    emulator = Emulator(proc, int(line))
    while True:  # the socket listens already; wait until the application answers too
        try:
            with urllib.request.urlopen(emulator.url + "/moto-api/data.json", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                emulator.stop()
                raise RuntimeError("moto did not answer:\n" + (workdir / "moto.log").read_text())
            time.sleep(0.05)
    emulator.recording = recording
    if recording is not None:
        emulator.requests()  # start counting from here
    return emulator
