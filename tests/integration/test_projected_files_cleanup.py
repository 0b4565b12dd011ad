"""Decrypted ``files`` projections do not outlive the program (review item 2).

They were 0600 temp files removed by atexit alone, so a program stopped by SIGTERM (``kill``, a
container stop, a cancelled CI job) or SIGKILL left the plaintext in /tmp for good. Now they live
in one 0700 folder per process, ``esc-pulumi-<pid>-...``: removed at exit and on SIGTERM/SIGHUP
(when the program installed no handler of its own), and swept by the next process projecting
files once its owner is dead (SIGKILL).

Every program runs as a subprocess with its own ``TMPDIR``, so these tests never look at (or
sweep) the real temp directory.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from esc_pulumi.runtime import apply as apply_mod

from .conftest import ROOT

SECRET = "projected-plaintext-4e7b1d"

DEV = f"""
values:
  password:
    fn::secret: {SECRET}
  files:
    SECRET_FILE: ${{password}}
    PLAIN_FILE: plain-content
"""
STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [dev]\n"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and permissions")


@pytest.fixture
def app(project):
    return project(STACK, {"dev": DEV})


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start(script: str, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """Start ``script``; wait for it to print its file paths then ``READY``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background inherits an ignored SIGINT, and Python then
        # installs no KeyboardInterrupt handler: give the program the default a terminal gives.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            return proc, lines
        lines.append(line)
    proc.wait(timeout=30)
    raise AssertionError(f"the program ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def folders(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["TMPDIR"]).glob("esc-pulumi-*"))


def plaintext_left(env: dict[str, str]) -> list[Path]:
    """Every file under TMPDIR still holding the secret."""
    found = []
    for p in Path(env["TMPDIR"]).rglob("*"):
        if p.is_file() and SECRET in p.read_text(errors="replace"):
            found.append(p)
    return found


LOAD_AND_WAIT = """
    import esc_pulumi, signal, sys, time
    {before}
    r = esc_pulumi.load("dev", {root!r})
    for name in sorted(r.files):
        print(r.files[name], flush=True)
    print("HANDLER", repr(signal.getsignal(signal.SIGTERM)), flush=True)
    print("READY", flush=True)
    time.sleep(60)
"""


def load_and_wait(root: Path, before: str = "") -> str:
    return LOAD_AND_WAIT.format(root=str(root), before=textwrap.dedent(before).strip().replace("\n", "\n    "))


# -- SIGTERM -------------------------------------------------------------------------------------


def test_sigterm_removes_the_files_and_still_ends_the_process_as_sigterm(app, tmpdir_env):
    proc, lines = start(load_and_wait(app), tmpdir_env)
    paths = [Path(p) for p in lines[:2]]
    assert all(p.exists() for p in paths) and plaintext_left(tmpdir_env)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == -signal.SIGTERM, err  # killed by the signal, as with no handler at all
    assert not any(p.exists() for p in paths)
    assert folders(tmpdir_env) == [] and plaintext_left(tmpdir_env) == []


def test_sighup_removes_the_files_too(app, tmpdir_env):
    proc, lines = start(load_and_wait(app), tmpdir_env)
    proc.send_signal(signal.SIGHUP)
    code, _ = finish(proc)
    assert code == -signal.SIGHUP
    assert not any(Path(p).exists() for p in lines[:2]) and folders(tmpdir_env) == []


def test_a_handler_of_the_program_is_left_in_charge(app, tmpdir_env):
    """The program's own SIGTERM handler stays; when it exits, atexit removes the files."""
    before = """
        def mine(signum, frame):
            print("MINE", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, mine)
    """
    proc, lines = start(load_and_wait(app, before), tmpdir_env)
    assert "mine" in lines[-1]  # HANDLER <function mine ...>: not replaced
    proc.send_signal(signal.SIGTERM)
    code, _ = finish(proc)
    assert code == 3
    assert not any(Path(p).exists() for p in lines[:2]) and folders(tmpdir_env) == []


def test_an_ignored_sigterm_stays_ignored(app, tmpdir_env):
    proc, lines = start(load_and_wait(app, "signal.signal(signal.SIGTERM, signal.SIG_IGN)"), tmpdir_env)
    assert lines[-1] == "HANDLER <Handlers.SIG_IGN: 1>"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # still running: the program chose to ignore it
    assert all(Path(p).exists() for p in lines[:2])
    proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: a normal exit, atexit runs
    finish(proc)
    assert folders(tmpdir_env) == []


LANGUAGE_HOST = """
    # What pulumi-language-python does: the program runs in run_in_stack on the main thread's
    # event loop, which then waits for the program's outputs (here: a long await).
    import asyncio, runpy, sys
    import pulumi
    from pulumi.runtime import mocks, settings
    from pulumi.runtime.stack import run_in_stack

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return f"{{args.name}}-id", args.inputs
        def call(self, args):
            return {{}}, None

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(Mocks(), project="myproj", stack="dev", preview=False)
    settings.set_root_resource(None)

    async def program():
        import esc_pulumi
        r = esc_pulumi.load("dev", {root!r})
        for name in sorted(r.files):
            print(r.files[name], flush=True)
        print("READY", flush=True)
        await asyncio.sleep(60)

    loop.run_until_complete(run_in_stack(program))
"""


def test_sigterm_under_the_language_hosts_event_loop(app, tmpdir_env):
    proc, lines = start(LANGUAGE_HOST.format(root=str(app)), tmpdir_env)
    assert len(lines) == 2 and all(Path(p).exists() for p in lines)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == -signal.SIGTERM, err
    assert not any(Path(p).exists() for p in lines) and plaintext_left(tmpdir_env) == []


def test_load_from_another_thread_installs_no_handler_and_cleans_at_exit(app, tmpdir_env):
    script = f"""
        import esc_pulumi, signal, threading
        out = {{}}
        t = threading.Thread(target=lambda: out.update(esc_pulumi.load("dev", {str(app)!r}).files))
        t.start(); t.join()
        print(*out.values(), sep="\\n", flush=True)
        print("HANDLER", repr(signal.getsignal(signal.SIGTERM)), flush=True)
    """
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=tmpdir_env, capture_output=True,
                       text=True, timeout=60, check=True)
    lines = p.stdout.split("\n")
    assert "HANDLER <Handlers.SIG_DFL: 0>" in lines
    assert not any(Path(x).exists() for x in lines if x.startswith("/")) and folders(tmpdir_env) == []


# -- the folder ----------------------------------------------------------------------------------


def test_files_live_in_a_private_folder_named_after_the_pid(app, tmpdir_env):
    proc, lines = start(load_and_wait(app), tmpdir_env)
    try:
        folder = Path(lines[0]).parent
        assert folder.parent == Path(tmpdir_env["TMPDIR"])
        assert folder.name.startswith(f"esc-pulumi-{proc.pid}-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(Path(p).parent == folder and stat.S_IMODE(Path(p).stat().st_mode) == 0o600 for p in lines[:2])
    finally:
        proc.kill()
        finish(proc)


def test_a_forked_child_never_removes_its_parents_files(app, tmpdir_env):
    script = f"""
        import esc_pulumi, os, sys
        r = esc_pulumi.load("dev", {str(app)!r})
        pid = os.fork()
        if pid == 0:
            sys.exit(0)   # the child exits normally: its (inherited) atexit hooks run
        os.waitpid(pid, 0)
        print(all(os.path.exists(p) for p in r.files.values()), flush=True)
    """
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=tmpdir_env, capture_output=True,
                       text=True, timeout=60, check=True)
    assert p.stdout.strip() == "True"
    assert folders(tmpdir_env) == []  # and the parent's own exit removed them


def test_a_forked_child_gets_the_default_sigterm_back(app, tmpdir_env):
    """The child owns no folder; a Python handler would also delay its death while it runs C
    code, which the default action would not."""
    script = f"""
        import esc_pulumi, os, signal, sys
        r = esc_pulumi.load("dev", {str(app)!r})
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # ours, in the parent
        pid = os.fork()
        if pid == 0:
            os._exit(0 if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else 7)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
    """
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=tmpdir_env, capture_output=True,
                       text=True, timeout=60)
    assert (p.returncode, p.stdout.strip()) == (0, "0"), p.stderr


# -- SIGKILL: swept by the next start ------------------------------------------------------------


def test_after_sigkill_the_next_program_sweeps_the_dead_processs_folder(app, tmpdir_env):
    proc, lines = start(load_and_wait(app), tmpdir_env)
    proc.kill()
    finish(proc)
    left = plaintext_left(tmpdir_env)
    assert left and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in left)
    assert stat.S_IMODE(left[0].parent.stat().st_mode) == 0o700  # unreadable by others meanwhile
    # The next program projecting files (here: the same program, run to its end).
    script = f"import esc_pulumi; esc_pulumi.load('dev', {str(app)!r})"
    subprocess.run([sys.executable, "-c", script], env=tmpdir_env, check=True, timeout=60)
    assert plaintext_left(tmpdir_env) == [] and folders(tmpdir_env) == []


def test_the_sweep_leaves_a_live_processs_folder_alone(app, tmpdir_env):
    proc, lines = start(load_and_wait(app), tmpdir_env)
    try:
        script = f"import esc_pulumi; esc_pulumi.load('dev', {str(app)!r})"
        subprocess.run([sys.executable, "-c", script], env=tmpdir_env, check=True, timeout=60)
        assert all(Path(p).exists() for p in lines[:2])
    finally:
        proc.kill()
        finish(proc)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_sweep_skips_a_folder_whose_lock_is_held(tmp_path):
    """A dead-looking pid (another pid namespace sharing /tmp, say) with its lock held lives."""
    folder = tmp_path / f"esc-pulumi-{dead_pid()}-abc123"
    folder.mkdir(mode=0o700)
    (folder / "esc-X-1.tmp").write_text("data")
    fd = apply_mod._open_locked(str(folder))
    assert fd is not None
    try:
        assert apply_mod.sweep_stale_folders(str(tmp_path)) == []
        assert folder.exists()
    finally:
        os.close(fd)
    assert apply_mod.sweep_stale_folders(str(tmp_path)) == [str(folder)]
    assert not folder.exists()


def test_sweep_touches_only_real_folders_named_like_ours(tmp_path):
    pid = dead_pid()
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    (tmp_path / f"esc-pulumi-{pid}-link").symlink_to(target, target_is_directory=True)
    (tmp_path / f"esc-pulumi-{pid}-file").write_text("a file, not a folder")
    other = tmp_path / f"esc-pulumi-notapid-x"
    other.mkdir()
    run_folder = tmp_path / "esc-pulumi-k2j3h4g5"  # what `esc-pulumi run` names its own
    run_folder.mkdir()
    assert apply_mod.sweep_stale_folders(str(tmp_path)) == []
    assert (target / "keep.txt").exists() and other.exists() and run_folder.exists()
    assert (tmp_path / f"esc-pulumi-{pid}-file").exists()


def test_sweep_skips_a_live_pid(tmp_path):
    folder = tmp_path / f"esc-pulumi-{os.getppid()}-abc"
    folder.mkdir()
    assert apply_mod.sweep_stale_folders(str(tmp_path)) == [] and folder.exists()
