"""esc_pulumi.load() benchmark, every figure next to a peer measured in the same run.

1. ``import esc_pulumi`` against ``import pulumi`` (fresh interpreters; and whether
   pulumi-esc-sdk got imported);
2. ``load()`` on ``examples/local`` against a bare Pulumi program run under mocks;
3. HTTP requests and time to load 1, 5 and 20 environments from ``esc-pulumi serve`` on
   127.0.0.1, against a naive loop of the SDK's ``open_and_read_environment`` per environment
   (skipped, with a message, when the server cannot start);
4. program start through the harness (``esc_pulumi.testing.run_program``: a new process started
   as the language host starts it, the SDK over gRPC to the fake engine) with and without
   ``load()``: one small program on a copy of ``examples/local``, run both ways, interleaved.

Usage: ``python benchmarks/load.py [--repeat N]``
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verdict import at_least, at_most

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "local"
ORG = "bench"


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _import_time(module: str, repeat: int) -> tuple[float, bool]:
    code = (
        "import time, sys; t = time.perf_counter(); import {m}; d = time.perf_counter() - t; "
        "print(d, 'pulumi_esc_sdk' in sys.modules)"
    ).format(m=module)
    results = []
    sdk = False
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        d, s = out.stdout.split()
        results.append(float(d))
        sdk = sdk or s == "True"
    return statistics.median(results), sdk


def bench_import(repeat: int) -> None:
    ours, sdk = _import_time("esc_pulumi", repeat)
    peer, _ = _import_time("pulumi", repeat)
    print("1. import time (median of fresh interpreters)")
    print(f"   import esc_pulumi   {ours * 1000:8.1f} ms   (pulumi_esc_sdk imported: {sdk})")
    print(f"   import pulumi       {peer * 1000:8.1f} ms")
    print(f"   ratio               {ours / peer:8.3f}x {at_most(ours / peer, 0.25)}")


def bench_local(repeat: int) -> None:
    import pulumi
    from pulumi.runtime import config as rconfig, settings
    from pulumi.runtime.stack import run_in_stack

    import esc_pulumi

    os.chdir(EXAMPLE)

    def load() -> None:
        rconfig.set_all_config({}, [])  # a fresh run: nothing memoised
        esc_pulumi.load("dev", write_files=False, set_environment_variables=False)

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return f"{args.name}-id", args.inputs

        def call(self, args):
            return {}, None

    def bare_program() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        pulumi.runtime.set_mocks(Mocks(), project="webapp", stack="dev", preview=False)
        settings.set_root_resource(None)  # type: ignore[arg-type]

        def program() -> None:
            pulumi.export("x", pulumi.Config("webapp").get("logLevel"))

        loop.run_until_complete(run_in_stack(program))
        asyncio.set_event_loop(None)
        loop.close()

    load()  # warm: imports, first parse
    bare_program()
    ours = _median(load, repeat * 4)
    peer = _median(bare_program, repeat * 4)
    print("2. examples/local (3 definitions, 2 listed environments)")
    print(f"   esc_pulumi.load()            {ours * 1000:8.2f} ms")
    print(f"   bare program under mocks     {peer * 1000:8.2f} ms")
    print(f"   ratio                        {ours / peer:8.2f}x {at_most(ours / peer, 2)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_server(repeat: int) -> None:
    print("3. against esc-pulumi serve on 127.0.0.1")
    cli = [str(Path(sys.executable).with_name("esc-pulumi"))]
    data = Path(tempfile.mkdtemp(prefix="esc-bench-"))

    def token(role: str) -> str:
        out = subprocess.run([*cli, "serve", "token", "create", "--data", str(data), "--org", ORG, "--role", role],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip()[-200:])
        return out.stdout.strip().splitlines()[-1]

    try:
        admin, opener = token("admin"), token("opener")
    except (OSError, RuntimeError) as e:
        print(f"   skipped: cannot create tokens ({e})")
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data),
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    print("   skipped: the server did not start")
                    return
                time.sleep(0.05)
        import pulumi_esc_sdk as esc
        from pulumi_esc_sdk import rest
        from pulumi.runtime import config as rconfig

        import esc_pulumi
        from esc_pulumi.backends.cloud import CloudBackend
        from esc_pulumi.backends.credentials import Token

        admin_client = esc.esc_client.default_client(host=url, access_token=admin)
        for i in range(20):
            admin_client.create_environment(ORG, "bench", f"e{i}")
            admin_client.update_environment_yaml(
                ORG, "bench", f"e{i}",
                f"values:\n  s: {{fn::secret: pw{i}}}\n  pulumiConfig:\n    k{i}: v{i}\n    pw{i}: ${{s}}\n",
            )
        count = [0]
        real = rest.RESTClientObject.request

        def counting(self, *a, **kw):
            count[0] += 1
            return real(self, *a, **kw)

        rest.RESTClientObject.request = counting  # type: ignore[method-assign]
        backend = CloudBackend(url, token=Token(opener, "benchmark"))
        naive = esc.esc_client.default_client(host=url, access_token=opener)
        print(f"   {'envs':>4}  {'load() reqs':>11}  {'load() ms':>9}  {'naive reqs':>10}  {'naive ms':>9}  {'speed-up':>8}")
        verdicts: list[tuple[int, int, float]] = []
        for n in (1, 5, 20):
            names = [f"bench/e{i}" for i in range(n)]

            def ours() -> None:
                rconfig.set_all_config({}, [])
                esc_pulumi.load("dev", EXAMPLE, environments=names, backend=backend, organization=ORG,
                                set_environment_variables=False, write_files=False)

            def peer() -> None:
                for i in range(n):
                    naive.open_and_read_environment(ORG, "bench", f"e{i}")

            count[0] = 0
            ours()
            ours_reqs = count[0]
            count[0] = 0
            peer()
            peer_reqs = count[0]
            t_ours = _median(ours, repeat)
            t_peer = _median(peer, repeat)
            print(f"   {n:>4}  {ours_reqs:>11}  {t_ours * 1000:>9.1f}  {peer_reqs:>10}  {t_peer * 1000:>9.1f}  {t_peer / t_ours:>7.1f}x")
            verdicts.append((n, ours_reqs, t_peer / t_ours))
        rest.RESTClientObject.request = real  # type: ignore[method-assign]
        most = max(reqs for _, reqs, _ in verdicts)
        print(f"   requests per load(), whatever the number of environments: at most {most} {at_most(most, 2, '')}")
        n, _, speedup = verdicts[-1]
        print(f"   speed-up over the naive loop at {n} environments: {speedup:.1f}x {at_least(speedup, 2)}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# The same program both ways: BENCH_LOAD=1 makes it call load() (and import esc_pulumi).
_HARNESS_PROGRAM = """\
import os

import pulumi

if os.environ.get("BENCH_LOAD") == "1":
    import esc_pulumi

    esc_pulumi.load()
pulumi.export("logLevel", pulumi.Config("webapp").get("logLevel"))
pulumi.export("replicas", pulumi.Config("webapp").get("replicas"))
"""


def bench_harness(repeat: int) -> None:
    from esc_pulumi.testing import FakeEngine, cli_config

    runs = max(10, repeat * 2)
    work = Path(tempfile.mkdtemp(prefix="esc-bench-harness-"))
    try:
        project = work / "local"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "__main__.py"))
        (project / "__main__.py").write_text(_HARNESS_PROGRAM, encoding="utf-8")
        config, secret_keys = cli_config(project, "dev")
        # Bytecode cached, as for an installed package, even where PYTHONDONTWRITEBYTECODE is set
        # (it would make every run compile esc_pulumi from source): in a folder of the run's own.
        cache = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(work / "pycache")}
        times: dict[str, list[float]] = {"with": [], "without": []}
        with FakeEngine() as engine:

            def once(kind: str) -> float:
                env = {**cache, "BENCH_LOAD": "1" if kind == "with" else "0"}
                t = time.perf_counter()
                run = engine.run(project, "dev", config=config, secret_keys=secret_keys, env=env).check()
                elapsed = time.perf_counter() - t
                # Both ways must have run the program; with load() ESC's replicas (2) replace the default.
                assert run.outputs["replicas"] == ("2" if kind == "with" else "1"), run.outputs
                return elapsed

            once("with"), once("without")  # warm: bytecode caches, the page cache
            for i in range(runs):
                # Interleaved, and alternating which goes first: drift hits both alike.
                order = ("with", "without") if i % 2 == 0 else ("without", "with")
                for kind in order:
                    times[kind].append(once(kind))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours = statistics.median(times["with"])
    peer = statistics.median(times["without"])
    print(f"4. program start through the harness with and without load() (median of {runs} runs each, bytecode cached)")
    print(f"   with esc_pulumi.load()       {ours * 1000:8.1f} ms")
    print(f"   without                      {peer * 1000:8.1f} ms")
    print(f"   ratio                        {ours / peer:8.3f}x {at_most(ours / peer, 1.10)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cwd = os.getcwd()
    bench_import(args.repeat)
    bench_local(args.repeat)
    os.chdir(cwd)
    bench_server(args.repeat)
    bench_harness(args.repeat)


if __name__ == "__main__":
    main()
