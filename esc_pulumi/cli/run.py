"""``esc-pulumi run [REF...] -- CMD ARGS``: CMD with the projected variables and files, secrets masked.

For ``pulumi up|preview|refresh|destroy|import|watch`` the wrapper also does what the Pulumi CLI
does on Pulumi Cloud, so that default providers (which read their config inside the CLI) get
ESC's ``pulumiConfig``: it writes a temporary stack config file — the stack file with ESC's
config merged in with the CLI's precedence, secrets as ``secure:`` values of the stack's
secrets manager — and passes ``--config-file`` to the command (see
:mod:`esc_pulumi.workspace.config_file`). The program's ``load()`` is told that the wrapper
already opened and applied the stack's environments (:data:`~esc_pulumi.workspace.plan.APPLIED_VAR`).

Output: where standard output (or error) is a terminal the child inherits it, unmasked, so that
prompts, colours and progress work; where it is not, the child's output passes through a masking
stream that hides every secret, also those spanning lines.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigurationError, DefinitionError, EscError
from .common import CommandNotRunnable, guarded
from .limits import limit_options, limits_from
from .targets import Target, open_target, print_definition_errors, resolve_target, stack_options, start_dir

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..workspace.config_file import SecretText

__all__ = [
    "WRAPPED_SUBCOMMANDS",
    "PulumiCommand",
    "StreamMasker",
    "cmd_run",
    "masker",
    "parse_pulumi_command",
    "register",
    "run_masked",
]

MIN_MASKED_BYTES = 3
MASK = b"[secret]"

# The pulumi subcommands that read stack config (and take --config-file).
WRAPPED_SUBCOMMANDS = frozenset({"up", "preview", "refresh", "destroy", "import", "watch"})

# Stack file keys that say which secrets manager the stack uses.
PROVIDER_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt")

_HELP = (
    "Run CMD with the projected environmentVariables and files of the environments (REFs, or the "
    "stack's composition): esc-pulumi run [REF...] -- CMD [ARGS...]. For pulumi up, preview, "
    "refresh, destroy, import and watch it also passes --config-file: a temporary copy of the "
    "stack file (mode 0600, removed at exit) with the environments' pulumiConfig merged in as the "
    "Pulumi CLI merges it (stack file > ESC > Pulumi.yaml defaults), secrets encrypted by the "
    "stack's secrets manager (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE for "
    "passphrase stacks; `pulumi config set --secret` for others), so that default providers see "
    "it too. Secrets are masked in CMD's output when that output is not a terminal; on a "
    "terminal CMD gets the terminal itself (prompts, colours) and nothing is masked."
)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``run`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "run",
        help="run a command with the environments' variables and files (and, for pulumi up & co., their config)",
        description=_HELP,
    )
    stack_options(p)
    limit_options(p)
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="[REF...] -- CMD [ARGS...]")
    p.set_defaults(func=guarded(cmd_run))


class _Terminated(BaseException):
    """SIGTERM before the child started: unwind (removing the temporary files), exit 128+15."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


def cmd_run(args: argparse.Namespace) -> int:
    """``esc-pulumi run``: open, project, (for the wrapped pulumi subcommands) write the config
    file, run CMD, remove the temporary files; CMD's exit code.

    Example::

        esc-pulumi run --stack dev -- pulumi up --yes
    """
    words: list[str] = list(args.words)
    if "--" not in words:
        raise EscError("no command: esc-pulumi run [REF...] -- CMD [ARGS...]")
    cut = words.index("--")
    refs, command = words[:cut], words[cut + 1 :]
    if not command:
        raise EscError("no command after '--': esc-pulumi run [REF...] -- CMD [ARGS...]")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    scratch = _Scratch()
    try:
        pulumi = parse_pulumi_command(command)
        if pulumi is not None and pulumi.subcommand in WRAPPED_SUBCOMMANDS:
            command, env, secrets = _prepare_pulumi(args, refs, pulumi, scratch)
        else:
            env, secrets = _prepare(args, refs, command, scratch)
        return run_masked(command, env, secrets + credential_texts(os.environ), cwd=getattr(args, "cwd", None))
    except _Terminated as t:
        return 128 + t.signum
    finally:
        scratch.remove()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# Our own keys stay with us: the child needs the values they open, not the means to open
# anything else (ESC_PULUMI_KEY_FILE names a file the child could read).
OWN_KEYS = ("ESC_PULUMI_PASSPHRASE", "ESC_PULUMI_KEY_FILE")
# Credentials the child may need (pulumi itself reads them) but must never print.
CREDENTIALS = ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "ESC_PULUMI_PASSPHRASE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The child's starting environment: ours without :data:`OWN_KEYS`."""
    return {k: v for k, v in environ.items() if k not in OWN_KEYS}


def credential_texts(environ: Mapping[str, str]) -> list[str]:
    """Texts masked in the child's output besides the environments' secrets: the credentials
    in our environment (and the passphrase file's content)."""
    texts = [environ[k] for k in CREDENTIALS if environ.get(k)]
    path = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            texts.append(Path(path).read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            pass
    return [t for t in texts if t]


@dataclass
class _Scratch:
    """The run's temporary directory (0700, created on first use, removed at exit): the
    projected files, the config file, the CLI's scratch file."""

    path: Path | None = None

    def file(self, name: str) -> Path:
        if self.path is None:
            # Inside the process's private folder (0700, locked while we live): after a SIGKILL
            # the next load() or run sweeps it, as it sweeps a program's projected files.
            from ..runtime.apply import private_folder

            self.path = Path(tempfile.mkdtemp(prefix="run-", dir=private_folder()))
        return self.path / name

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def _open(target: Target, args: argparse.Namespace, command: Sequence[str]) -> "OpenedEnvironment":
    try:
        return open_target(target, "open", limits_from(args))
    except DefinitionError as e:
        print_definition_errors(e)
        raise EscError(f"cannot run {command[0]}: the environments have errors (see above)") from None


def _project_opened(opened: "OpenedEnvironment", env: dict[str, str], scratch: _Scratch) -> list[str]:
    """Set ``environmentVariables`` and write ``files`` for the child; the texts to mask."""
    from ..runtime.projection import project, secret_texts
    from ..workspace.config_file import write_private_file

    projection = project(opened.value)
    env.update({k: v.text for k, v in projection.variables.items()})
    for i, (name, pv) in enumerate(sorted(projection.files.items())):
        path = write_private_file(scratch.file(f"esc-{i}"), pv.text)
        env[name] = str(path)
    return secret_texts(opened.value)


def _prepare(
    args: argparse.Namespace, refs: Sequence[str], command: Sequence[str], scratch: _Scratch
) -> tuple[dict[str, str], list[str]]:
    target = resolve_target(args, refs)
    env = child_environ(os.environ)
    if target.composition is None:
        return env, []
    return env, _project_opened(_open(target, args, command), env, scratch)


# -- pulumi command lines ---------------------------------------------------------------------

# Long flags of pulumi (its global ones and those of the wrapped subcommands) that take a value
# as the next word when written without '='. Any other flag is taken as a switch.
_VALUE_LONG = frozenset({
    "--color", "--cwd", "--memprofilerate", "--profiling", "--tracing", "--tracing-header",
    "--verbose", "--otel-traces",
    "--stack", "--config-file", "--config", "--message", "--parallel", "--target", "--replace",
    "--target-replace", "--exclude", "--policy-pack", "--policy-pack-config", "--secrets-provider",
    "--client", "--plan", "--save-plan", "--import-file", "--file", "--from", "--out", "--parent",
    "--provider", "--properties", "--path", "--attach-debugger", "--exec-kind", "--exec-agent",
})
# Shorthands taking a value: -C cwd, -v verbosity, -c config, -m message, -p parallel,
# -s stack, -t target, -o out.
_VALUE_SHORT = frozenset("Cvcmpsto")
_NAMES = {"s": "--stack", "C": "--cwd", "c": "--config"}


@dataclass(frozen=True)
class PulumiCommand:
    """A ``pulumi`` command line as far as the wrapper needs it: the subcommand (and its
    position in ``argv``), the ``--stack`` and ``--cwd`` given, whether ``--config-file`` or
    ``--config`` was given.

    Example::

        c = parse_pulumi_command(["pulumi", "--cwd", "infra", "up", "-s", "dev", "--yes"])
        (c.subcommand, c.index, c.stack, c.cwd)     # ('up', 3, 'dev', 'infra')
    """

    argv: tuple[str, ...]
    subcommand: str | None
    index: int | None
    stack: str | None = None
    cwd: str | None = None
    config_file: bool = False
    config_flag: bool = False

    def with_config_file(self, path: str, stack: str | None) -> list[str]:
        """``argv`` with ``--config-file path`` (and ``--stack stack``, unless one was given)
        right after the subcommand."""
        assert self.index is not None
        extra = ["--config-file", path]
        if self.stack is None and stack:
            extra += ["--stack", stack]
        i = self.index + 1
        return [*self.argv[:i], *extra, *self.argv[i:]]


def parse_pulumi_command(command: Sequence[str]) -> PulumiCommand | None:
    """``command`` read the way pulumi's flag parser reads it, or ``None`` when it is not a
    ``pulumi`` command. Global flags may come before or after the subcommand
    (``pulumi --cwd X up``, ``pulumi up --stack dev``); ``--`` ends the flags.

    Example::

        parse_pulumi_command(["pulumi", "up", "--stack=dev"]).stack      # 'dev'
        parse_pulumi_command(["python", "x.py"])                         # None
    """
    if not command or Path(command[0]).name not in ("pulumi", "pulumi.exe"):
        return None
    found: dict[str, Any] = {"subcommand": None, "index": None, "stack": None, "cwd": None,
                             "config_file": False, "config_flag": False}

    def record(name: str, value: str | None) -> None:
        if name == "--stack":
            found["stack"] = value
        elif name == "--cwd":
            found["cwd"] = value
        elif name == "--config-file":
            found["config_file"] = True
        elif name == "--config":
            found["config_flag"] = True

    i = 1
    n = len(command)
    while i < n:
        word = command[i]
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name in _VALUE_LONG and not eq:
                value = command[i + 1] if i + 1 < n else ""
                i += 1
            record(name, value)
        elif word.startswith("-") and len(word) > 1:
            letters = word[1:]
            for j, c in enumerate(letters):
                if c in _VALUE_SHORT:
                    rest = letters[j + 1 :]
                    if rest.startswith("="):
                        rest = rest[1:]
                    if not rest:
                        rest = command[i + 1] if i + 1 < n else ""
                        i += 1
                    record(_NAMES.get(c, "-" + c), rest)
                    break
        elif found["subcommand"] is None:
            found["subcommand"], found["index"] = word, i
        i += 1
    return PulumiCommand(argv=tuple(command), **found)


def _short_stack(name: str) -> str:
    """``org/project/dev`` → ``dev``: what ``pulumi.get_stack()`` says inside the run."""
    return name.rsplit("/", 1)[-1]


# -- the config file for pulumi ---------------------------------------------------------------


def _prepare_pulumi(
    args: argparse.Namespace, refs: Sequence[str], pulumi: PulumiCommand, scratch: _Scratch
) -> tuple[list[str], dict[str, str], list[str]]:
    """Open the stack's environments, write the config file; the command, environment and
    secrets of the child."""
    from ..workspace.config_file import merge_stack_config, write_private_file
    from ..workspace.mapping import esc_values
    from ..workspace.plan import APPLIED_VAR, applied_marker, make_plan
    from ..workspace.project import find_project, read_project, read_stack, selected_stack

    sub = pulumi.subcommand
    for ref in refs:
        if ref.startswith("-"):
            raise EscError(f"unexpected option {ref!r}: options go before the environment names")
    if pulumi.config_file:
        raise EscError(
            f"pulumi {sub} --config-file: esc-pulumi run passes its own config file (the stack file "
            "with the environments' config merged in); drop --config-file, or run pulumi without "
            "esc-pulumi"
        )
    if pulumi.config_flag:
        raise EscError(
            f"pulumi {sub} --config: under esc-pulumi run pulumi would save those values into the "
            "temporary config file, not the stack file; set them first with `pulumi config set`"
        )
    base = start_dir(args)
    if pulumi.cwd:
        base = base / pulumi.cwd
        if not base.is_dir():
            raise ConfigurationError(f"pulumi --cwd {pulumi.cwd}: no such directory")
    project_file = find_project(base)
    project = read_project(project_file)
    wrapper_stack = getattr(args, "stack", None)
    if pulumi.stack and wrapper_stack and _short_stack(pulumi.stack) != _short_stack(wrapper_stack):
        raise EscError(
            f"esc-pulumi run --stack {wrapper_stack} but pulumi {sub} --stack {pulumi.stack}: name one stack"
        )
    stack = (
        pulumi.stack
        or wrapper_stack
        or selected_stack(project, os.environ)
    )
    if not stack:
        raise ConfigurationError(
            f"no stack selected in project {project.dir}: pass --stack, set PULUMI_STACK, "
            "or run `pulumi stack select`"
        )
    plan = make_plan(_short_stack(stack), base, environments=list(refs) if refs else None)
    env = child_environ(os.environ)
    if plan.composition is None:
        return list(pulumi.argv), env, []
    label = ", ".join(refs) if refs else f"stack {plan.stack}"
    opened = _open(Target(plan.backend, plan.organization, plan.composition, label), args, pulumi.argv)
    secrets = _project_opened(opened, env, scratch)

    warnings: list[str] = []
    esc = esc_values(opened, plan.project, warnings)
    for w in warnings:
        print(f"esc-pulumi: warning: {w}", file=sys.stderr)
    stack_file = read_stack(project, _short_stack(stack))
    where = str(stack_file.path)
    encryptor = _Encryptor(
        document=stack_file.document,
        where=where,
        env=env,
        base_dir=base,
        pulumi=pulumi.argv[0],
        stack=stack,
        project_dir=project.dir,
        scratch=scratch,
        mask=secrets,
    )
    merged = merge_stack_config(stack_file.document, stack_file.config, esc, encrypt=encryptor)
    document = dict(merged.document)
    document.update(encryptor.provider_fields)
    secrets = secrets + encryptor.texts
    # Always YAML (the CLI reads a config file by its extension), whatever the stack file's.
    path = write_private_file(scratch.file(f"{stack_file.path.stem}.yaml"), _yaml(document))
    env[APPLIED_VAR] = applied_marker(plan)
    return pulumi.with_config_file(str(path), stack), env, secrets


def _yaml(document: Mapping[str, Any]) -> str:
    from ..workspace.config_file import yaml_document

    return yaml_document(document)


@dataclass
class _Encryptor:
    """Encrypts the config file's secrets with the stack's secrets manager: the passphrase
    manager here, any other by the ``pulumi`` CLI (``pulumi config set --secret``, the value on
    standard input, into a scratch config file carrying the stack's provider settings)."""

    document: Mapping[str, Any] = field(repr=False)
    where: str
    env: Mapping[str, str] = field(repr=False)  # the child's: it holds the environments' secrets
    base_dir: Path
    pulumi: str
    stack: str
    project_dir: Path
    scratch: _Scratch
    mask: list[str] = field(repr=False)
    provider_fields: dict[str, Any] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list, repr=False)

    def __call__(self, secrets: Sequence["SecretText"]) -> list[str]:
        from ..secrets.passphrase import PassphraseCrypter

        self.texts = [s.text for s in secrets]
        crypter = PassphraseCrypter.from_stack(self.document, self.env, where=self.where, base_dir=self.base_dir)
        if crypter is not None:
            return [crypter.encrypt(s.text) for s in secrets]
        return self._by_cli(secrets)

    def _by_cli(self, secrets: Sequence["SecretText"]) -> list[str]:
        from ..workspace.config_file import write_private_file
        from ..workspace.project import load_document

        scratch = self.scratch.file("secrets.yaml")
        seed = {k: self.document[k] for k in PROVIDER_KEYS if k in self.document}
        seed["config"] = {}
        write_private_file(scratch, _yaml(seed))
        mask = masker([*self.mask, *self.texts])
        keys = []
        for i, s in enumerate(secrets):
            key = f"escpulumi:secret{i}"
            keys.append(key)
            argv = [self.pulumi, "--non-interactive", "config", "set", "--secret",
                    "--config-file", str(scratch), "--stack", self.stack, key]
            try:
                # The value on standard input, never on the command line; pulumi drops one
                # trailing newline of what it reads.
                p = subprocess.run(argv, input=(s.text + "\n").encode("utf-8"), capture_output=True,
                                   cwd=self.project_dir, env=dict(self.env))
            except FileNotFoundError:
                raise EscError(f"command not found: {self.pulumi}") from None
            if p.returncode != 0:
                lines = [ln for ln in mask(p.stderr).decode("utf-8", "replace").splitlines() if ln.strip()]
                detail = f": {lines[-1].strip()}" if lines else ""
                raise EscError(
                    f"cannot encrypt config key {s.key!r} with the stack's secrets manager: "
                    f"`pulumi config set --secret` exited with {p.returncode}{detail}"
                )
        data = load_document(scratch)
        config = data.get("config") if isinstance(data, dict) else None
        out = []
        for s, key in zip(secrets, keys):
            value = config.get(key) if isinstance(config, dict) else None
            if not (isinstance(value, dict) and isinstance(value.get("secure"), str)):
                raise EscError(
                    f"cannot encrypt config key {s.key!r}: `pulumi config set --secret` wrote no secure value"
                )
            out.append(value["secure"])
        # A stack without a secrets manager yet gets one from the CLI (a new salt, say): the
        # ciphertexts need it beside them.
        self.provider_fields = {k: data[k] for k in PROVIDER_KEYS if k in data and k not in self.document}
        return out


# -- masking ----------------------------------------------------------------------------------


def _needles(secrets: Iterable[str]) -> list[bytes]:
    """The byte strings to hide: each secret, its JSON-escaped forms (how a program prints it
    inside JSON or a repr), and, for a secret spanning lines, each of its lines."""
    from ..esc.values import go_json_string

    texts: set[str] = set()
    for s in secrets:
        if not s:
            continue
        texts.add(s)
        texts.add(json.dumps(s, ensure_ascii=False)[1:-1])
        texts.add(go_json_string(s)[1:-1])
        if "\n" in s or "\r" in s:
            texts.update(line.strip() for line in s.splitlines())
    found = {t.encode("utf-8", "surrogatepass") for t in texts}
    return sorted((b for b in found if len(b) >= MIN_MASKED_BYTES), key=lambda b: (-len(b), b))


def _spans(data: bytes, needles: Sequence[bytes]) -> list[tuple[int, int]]:
    """Where the needles occur in ``data``, overlapping occurrences joined."""
    hits = []
    for n in needles:
        i = data.find(n)
        while i != -1:
            hits.append((i, i + len(n)))
            i = data.find(n, i + 1)
    hits.sort()
    spans: list[tuple[int, int]] = []
    for s, e in hits:
        if spans and s < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((s, e))
    return spans


def _masked(data: bytes, spans: Sequence[tuple[int, int]]) -> bytes:
    out = []
    at = 0
    for s, e in spans:
        out.append(data[at:s])
        out.append(MASK)
        at = e
    out.append(data[at:])
    return b"".join(out)


def masker(secrets: Iterable[str]) -> Callable[[bytes], bytes]:
    """A function masking, in a piece of output, every secret of 3 bytes or more (UTF-8) as
    ``[secret]``: where secrets overlap (one inside another, or sharing bytes) the whole
    stretch is masked. JSON-escaped forms of a secret, and each line of a secret spanning
    lines, are masked too.

    Example::

        masker(["hunter2"])(b"pw=hunter2\\n")      # b'pw=[secret]\\n'
    """
    needles = _needles(secrets)

    def mask(data: bytes) -> bytes:
        return _masked(data, _spans(data, needles)) if needles else data

    mask.needles = needles  # type: ignore[attr-defined]
    return mask


class StreamMasker:
    """Masks secrets in a byte stream that arrives in pieces of any size: a secret split
    between two pieces (or spanning lines) is still masked. Only a tail that could be the
    start of a secret is held back until the next piece (or :meth:`close`).

    Example::

        m = StreamMasker(masker(["hunter2"]).needles)
        m.feed(b"pw=hun") + m.feed(b"ter2\\n") + m.close()       # b'pw=[secret]\\n'
    """

    def __init__(self, needles: Sequence[bytes]) -> None:
        self._needles = list(needles)
        self._buffer = b""

    def _hold(self, data: bytes, spans: Sequence[tuple[int, int]]) -> int:
        """Where the part that may still change begins: the earliest tail that is a proper
        prefix of a secret, moved back before any occurrence it cuts."""
        hold = len(data)
        for n in self._needles:
            first = n[:1]
            j = data.find(first, max(0, len(data) - len(n) + 1))
            while j != -1 and j < hold:
                if n.startswith(data[j:]):
                    hold = j
                    break
                j = data.find(first, j + 1)
        for s, e in reversed(spans):
            if s < hold < e:
                hold = s
        return hold

    def feed(self, piece: bytes) -> bytes:
        """The output that is final once ``piece`` has arrived, masked."""
        data = self._buffer + piece
        if not self._needles:
            self._buffer = b""
            return data
        spans = _spans(data, self._needles)
        hold = self._hold(data, spans)
        self._buffer = data[hold:]
        return _masked(data[:hold], [sp for sp in spans if sp[1] <= hold])

    def close(self) -> bytes:
        """The rest, masked (at the end of the stream)."""
        data, self._buffer = self._buffer, b""
        return _masked(data, _spans(data, self._needles))


def _pump(src: IO[bytes], dst: IO[bytes] | None, m: StreamMasker) -> None:
    # Reads what is there (not whole lines), so prompts without a newline show up at once.
    try:
        while True:
            piece = src.read1(65536)  # type: ignore[attr-defined]
            if not piece:
                break
            out = m.feed(piece)
            if out and dst is not None:
                try:
                    dst.write(out)
                    dst.flush()
                except (BrokenPipeError, ValueError, OSError):
                    dst = None  # keep draining, so the child never blocks on a full pipe
        rest = m.close()
        if rest and dst is not None:
            dst.write(rest)
            dst.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass
    finally:
        src.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _foreground_of_a_terminal() -> bool:
    """Whether this process's group owns a terminal: a Ctrl-C there reaches the child too."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return True
        except OSError:
            continue
    return False


def run_masked(
    command: Sequence[str],
    env: Mapping[str, str],
    secrets: Iterable[str],
    *,
    cwd: str | None = None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
) -> int:
    """Run ``command`` and return its exit code (128+N when killed by signal N).

    Its standard output and error pass through :class:`StreamMasker` with the secrets masked,
    except where this process's own stream is a terminal (and no ``stdout``/``stderr`` is
    given): there the child inherits the terminal, so that its prompts, colours and progress
    work, and nothing is masked. Without secrets the child inherits both streams. Standard
    input is always the child's. SIGTERM and SIGINT are passed on to the child (a Ctrl-C on the
    terminal this process runs in reaches the child directly), whose exit is then awaited.

    Example::

        out = io.BytesIO()
        run_masked(["echo", "hunter2"], os.environ, ["hunter2"], stdout=out)    # 0
        out.getvalue()                                                           # b'[secret]\\n'
    """
    mask = masker(secrets)
    needles = mask.needles  # type: ignore[attr-defined]
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    pipe_out = stdout is not None or (bool(needles) and not _isatty(sys.stdout))
    pipe_err = stderr is not None or (bool(needles) and not _isatty(sys.stderr))
    sys.stdout.flush()
    sys.stderr.flush()
    state: dict[str, subprocess.Popen | None] = {"proc": None}
    # In the foreground of a terminal the child shares this process group, so that the terminal
    # is its own (job control, and Ctrl-C reaches it directly). Elsewhere it gets a group of its
    # own: a signal sent to this group then reaches it once, passed on from here.
    foreground = _foreground_of_a_terminal()

    def on_signal(signum: int, frame: Any) -> None:
        proc = state["proc"]
        if proc is None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise _Terminated(signum)
        if signum == signal.SIGINT and foreground:
            return  # the terminal sent it to the child as well
        if proc.poll() is None:
            proc.send_signal(signum)

    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            handlers[signum] = signal.signal(signum, on_signal)
    try:
        try:
            proc = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdout=subprocess.PIPE if pipe_out else None,
                stderr=subprocess.PIPE if pipe_err else None,
                process_group=None if foreground else 0,
            )
        except FileNotFoundError:
            raise CommandNotRunnable(f"command not found: {command[0]}", 127) from None
        except PermissionError:
            raise CommandNotRunnable(f"cannot execute {command[0]}: permission denied", 126) from None
        except OSError as e:  # ENOEXEC and the like: found, but not something to execute
            raise CommandNotRunnable(f"cannot execute {command[0]}: {e.strerror or e}", 126) from None
        state["proc"] = proc
        pumps = []
        for piped, src, dst in ((pipe_out, proc.stdout, out), (pipe_err, proc.stderr, err)):
            if piped:
                t = threading.Thread(target=_pump, args=(src, dst, StreamMasker(needles)), daemon=True)
                t.start()
                pumps.append(t)
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # not in the main thread: no handler of ours
                continue
        for t in pumps:
            t.join()
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)
    return 128 - code if code < 0 else code
