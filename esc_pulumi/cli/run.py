"""``esc-pulumi run [REF...] -- CMD ARGS``: CMD with the projected variables and files, secrets masked."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import IO, Callable, Iterable, Mapping, Sequence

from ..errors import DefinitionError, EscError
from .common import guarded
from .limits import limit_options, limits_from
from .targets import open_target, print_definition_errors, resolve_target, stack_options

__all__ = ["register", "cmd_run", "masker", "run_masked"]

MIN_MASKED_BYTES = 3
MASK = b"[secret]"


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``run`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "run",
        help="run a command with the environment variables and files of the environments",
        description="Run CMD with the projected environmentVariables and files of the environments "
        "(REFs, or the stack's composition), masking secret values in its output: "
        "esc-pulumi run [REF...] -- CMD [ARGS...]",
    )
    stack_options(p)
    limit_options(p)
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="[REF...] -- CMD [ARGS...]")
    p.set_defaults(func=guarded(cmd_run))


def cmd_run(args: argparse.Namespace) -> int:
    from ..runtime.projection import project, secret_texts

    words: list[str] = list(args.words)
    if "--" not in words:
        raise EscError("no command: esc-pulumi run [REF...] -- CMD [ARGS...]")
    cut = words.index("--")
    refs, command = words[:cut], words[cut + 1 :]
    if not command:
        raise EscError("no command after '--': esc-pulumi run [REF...] -- CMD [ARGS...]")
    target = resolve_target(args, refs)
    env = dict(os.environ)
    secrets: list[str] = []
    tmpdir: str | None = None
    if target.composition is not None:
        try:
            opened = open_target(target, "open", limits_from(args))
        except DefinitionError as e:
            print_definition_errors(e)
            raise EscError(f"cannot run {command[0]}: the environments have errors (see above)") from None
        projection = project(opened.value)
        secrets = secret_texts(opened.value)
        env.update({k: v.text for k, v in projection.variables.items()})
        if projection.files:
            tmpdir = tempfile.mkdtemp(prefix="esc-pulumi-")
            for name, pv in sorted(projection.files.items()):
                fd, path = tempfile.mkstemp(prefix="esc-", dir=tmpdir)
                with os.fdopen(fd, "wb") as f:
                    f.write(pv.text.encode("utf-8"))
                env[name] = path
    try:
        return run_masked(command, env, secrets, cwd=getattr(args, "cwd", None))
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def masker(secrets: Iterable[str]) -> Callable[[bytes], bytes]:
    """A function masking every secret of 3 bytes or more (UTF-8) in a line as ``[secret]``.

    Longest first, so that a secret containing a shorter one is masked whole.
    """
    needles = sorted(
        {s.encode("utf-8") for s in secrets if len(s.encode("utf-8")) >= MIN_MASKED_BYTES},
        key=lambda b: (-len(b), b),
    )

    def mask(line: bytes) -> bytes:
        for n in needles:
            if n in line:
                line = line.replace(n, MASK)
        return line

    mask.needles = needles  # type: ignore[attr-defined]
    return mask


def _pump(src: IO[bytes], dst: IO[bytes], mask: Callable[[bytes], bytes]) -> None:
    # Line by line: a secret split across two reads would otherwise slip through.
    try:
        for line in iter(src.readline, b""):
            dst.write(mask(line))
            dst.flush()
    except (BrokenPipeError, ValueError):
        pass
    finally:
        src.close()


def run_masked(
    command: Sequence[str],
    env: Mapping[str, str],
    secrets: Iterable[str],
    *,
    cwd: str | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
) -> int:
    """Run ``command`` and return its exit code (128+N when killed by signal N); its stdout and
    stderr pass through line by line with the secrets masked. Without secrets to mask the child
    keeps the terminal (colours, prompts, progress bars)."""
    mask = masker(secrets)
    needles = mask.needles  # type: ignore[attr-defined]
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    piped = bool(needles) or stdout is not None or stderr is not None
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        proc = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE if piped else None,
            stderr=subprocess.PIPE if piped else None,
        )
    except FileNotFoundError:
        raise EscError(f"command not found: {command[0]}") from None
    except PermissionError:
        raise EscError(f"cannot execute {command[0]}: permission denied") from None
    pumps = []
    if piped:
        for src, dst in ((proc.stdout, out), (proc.stderr, err)):
            t = threading.Thread(target=_pump, args=(src, dst, mask), daemon=True)
            t.start()
            pumps.append(t)
    # Ctrl-C reaches the child through the terminal's process group; this process waits for the
    # child to decide, then reports its exit code. SIGTERM sent to us only is passed on.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for t in pumps:
        t.join()
    return 128 - code if code < 0 else code
