"""The ``esc-pulumi`` subcommands ``config``, ``open``, ``run``, ``check`` and ``env``.

- ``config``: the config a Pulumi program will see, with where each key comes from.
- ``open [REF] [PATH] [--format F]``: an environment (or the stack's composition) printed as the
  ``esc`` CLI prints it (:mod:`esc_pulumi.formats`).
- ``run [REF...] -- CMD ARGS``: a command with the projected environment variables and files,
  secrets masked in its output.
- ``check [REF|FILE...]``: diagnostics as ``file:line:col: error: message``.
- ``env encrypt|decrypt FILE...``: ``fn::secret`` plaintext ↔ ``{ciphertext: ...}`` in place.

Outside a Pulumi project the REF forms take their backend from ``ESC_PULUMI_BACKEND``
(``ESC_PULUMI_BACKEND=file:///srv/envs esc-pulumi open myproj/dev --format dotenv``); inside one,
from the stack's settings (``--stack``/``PULUMI_STACK``).

Every failure is an :class:`~esc_pulumi.errors.EscError`: ``cli.main`` prints it as one line.
Secrets are printed only with ``--show-secrets``.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigurationError, DefinitionError, EscError

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import Backend, OpenedEnvironment
    from ..esc import Diagnostic, Value

__all__ = ["register"]

MIN_MASKED_BYTES = 3
MASK = b"[secret]"


# -- registration ------------------------------------------------------------------------------


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``config``, ``open``, ``run``, ``check`` and ``env`` to the ``esc-pulumi`` parser."""
    p = subparsers.add_parser(
        "config",
        help="show the config the Pulumi program will see, and where each key comes from",
        description="Show the config the Pulumi program will see: stack file > ESC environments > "
        "Pulumi.yaml defaults, with the source of each key. Secrets are masked unless --show-secrets.",
    )
    _stack_options(p)
    p.add_argument("--show-secrets", action="store_true", help="print secret values in plaintext")
    p.add_argument("--json", action="store_true", help="print JSON: {key: {value, secret, source}}")
    p.set_defaults(func=_guarded(cmd_config))

    p = subparsers.add_parser(
        "open",
        help="open an environment (or the stack's composition) and print it as the esc CLI does",
        description="Open one environment (REF: env, project/env, project/env@tag), or the stack's "
        "composition when no REF is given, and print it (optionally only PATH, e.g. "
        "environmentVariables.AWS_REGION). Secrets show as [secret] unless --show-secrets.",
    )
    p.add_argument("ref", nargs="?", metavar="REF", help="environment reference")
    p.add_argument("path", nargs="?", metavar="PATH", help="property path inside the environment")
    p.add_argument("--path", dest="path_option", metavar="PATH", help="property path (also with no REF)")
    p.add_argument(
        "-f", "--format", default="json", help="json (default), yaml, dotenv, shell, string or detailed"
    )
    p.add_argument("--show-secrets", action="store_true", help="print secret values in plaintext")
    _stack_options(p)
    p.set_defaults(func=_guarded(cmd_open))

    p = subparsers.add_parser(
        "run",
        help="run a command with the environment variables and files of the environments",
        description="Run CMD with the projected environmentVariables and files of the environments "
        "(REFs, or the stack's composition), masking secret values in its output: "
        "esc-pulumi run [REF...] -- CMD [ARGS...]",
    )
    _stack_options(p)
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="[REF...] -- CMD [ARGS...]")
    p.set_defaults(func=_guarded(cmd_run))

    p = subparsers.add_parser(
        "check",
        help="check environment definitions and print their diagnostics",
        description="Check environments (REF) or local definition files (FILE; imports resolve "
        "to the definitions beside it) without opening providers; print "
        "file:line:col: error: message lines; exit 1 on errors.",
    )
    p.add_argument("targets", nargs="*", metavar="REF|FILE")
    _stack_options(p)
    p.set_defaults(func=_guarded(cmd_check))

    p = subparsers.add_parser(
        "env",
        help="encrypt or decrypt the fn::secret values of local definitions",
        description="Turn fn::secret plaintext in local definitions into {ciphertext: ...} and back, "
        "keeping comments and layout. Key: ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE.",
    )
    env_sub = p.add_subparsers(dest="env_command", metavar="encrypt|decrypt")
    for name, helptext in (
        ("encrypt", "encrypt fn::secret plaintext in FILEs"),
        ("decrypt", "decrypt fn::secret ciphertext in FILEs"),
    ):
        q = env_sub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("files", nargs="+", metavar="FILE")
        q.set_defaults(func=_guarded(functools.partial(cmd_env_crypt, decrypt=name == "decrypt")))
    p.set_defaults(func=_env_usage(p))


def _stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--stack", help="the stack (default: PULUMI_STACK)")
    p.add_argument("-C", "--cwd", metavar="DIR", help="run as if started in DIR")


def _env_usage(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def usage(args: argparse.Namespace) -> int:
        p.print_usage(sys.stderr)
        print("esc-pulumi env: choose encrypt or decrypt", file=sys.stderr)
        return 2

    return usage


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the failures a user can cause (files, encodings) into one-line EscErrors.

    Anything else is a bug: still one line (its message could hold data, so it is not shown),
    with the traceback only when ESC_PULUMI_DEBUG is set.
    """

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except EscError:
            raise
        except KeyboardInterrupt:
            raise
        except OSError as e:
            where = f" {e.filename}" if getattr(e, "filename", None) else ""
            raise EscError(f"cannot access{where}: {e.strerror or e.__class__.__name__}") from None
        except UnicodeError:
            raise EscError("a file is not valid UTF-8 text") from None
        except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("ESC_PULUMI_DEBUG"):
                raise
            raise EscError(
                f"internal error ({e.__class__.__name__}); set ESC_PULUMI_DEBUG=1 for details"
            ) from None

    return run


# -- where environments come from ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to open: the composition, through which backend, for which organisation."""

    backend: "Backend"
    organization: str | None
    composition: dict | None
    label: str


def _start_dir(args: argparse.Namespace) -> Path:
    cwd = getattr(args, "cwd", None)
    if cwd:
        p = Path(cwd)
        if not p.is_dir():
            raise ConfigurationError(f"--cwd {cwd}: no such directory")
        return p
    return Path.cwd()


def _project_file(start: Path) -> Path | None:
    from ..workspace.project import find_project

    try:
        return find_project(start)
    except ConfigurationError:
        return None


def resolve_target(args: argparse.Namespace, refs: Sequence[str]) -> Target:
    """The backend and composition for ``refs`` (or the stack's list when there are none).

    REFs inside a project with a stack use the stack's settings (``esc:backend``,
    ``esc:organization``); otherwise the settings from the environment (``ESC_PULUMI_BACKEND``,
    ``ESC_PULUMI_ORGANIZATION``, an http(s) ``PULUMI_BACKEND_URL``, Pulumi Cloud).
    """
    from ..refs import EnvironmentRef

    for ref in refs:
        if ref.startswith("-"):
            raise EscError(f"unexpected option {ref!r}: options go before the environment names")
        EnvironmentRef.parse(ref)  # InvalidReference names the bad one
    start = _start_dir(args)
    project_file = _project_file(start)
    stack = getattr(args, "stack", None) or os.environ.get("PULUMI_STACK")
    if refs:
        composition: dict | None = {"imports": list(refs)}
        label = ", ".join(refs)
        if project_file is not None and stack:
            plan = _plan(stack, start, environments=list(refs))
            return Target(plan.backend, plan.organization, composition, label)
        if project_file is not None and not os.environ.get("ESC_PULUMI_BACKEND"):
            # The stack may name the backend (esc:backend): guessing Pulumi Cloud would mislead.
            raise ConfigurationError(
                f"no stack selected in project {project_file.parent}: pass --stack or set "
                "PULUMI_STACK (or set ESC_PULUMI_BACKEND to open environments without a stack)"
            )
        return _standalone(project_file.parent if project_file else start, composition, label)
    if project_file is None:
        raise ConfigurationError(
            f"no Pulumi.yaml in {start.resolve()} or above: name the environments "
            "(esc-pulumi open myproj/dev, with ESC_PULUMI_BACKEND set) or run inside a Pulumi project"
        )
    plan = _plan(stack, start)
    return Target(plan.backend, plan.organization, plan.composition, f"stack {plan.stack}")


def _plan(stack: str | None, start: Path, environments: list[str] | None = None) -> Any:
    from ..workspace.plan import make_plan

    if not stack:
        project_file = _project_file(start)
        where = f" in project {project_file.parent}" if project_file else ""
        raise ConfigurationError(f"no stack selected{where}: pass --stack or set PULUMI_STACK")
    return make_plan(stack, start, environments=environments)


def _standalone(base_dir: Path, composition: dict, label: str) -> Target:
    from ..backends import backend_from_url
    from ..workspace.settings import backend_url, organization

    url, _ = backend_url(None, environ=os.environ, stack_config={})
    org = organization(None, environ=os.environ, stack_config={})
    context: dict[str, Any] = {}
    if org:
        context["pulumi"] = {"organization": {"login": org}}
    user = os.environ.get("ESC_PULUMI_USER")
    if user:
        context.setdefault("pulumi", {})["user"] = {"login": user}
    backend = backend_from_url(url, project_dir=base_dir, context=context)
    return Target(backend, org, composition, label)


def _open(target: Target, mode: str = "open") -> "OpenedEnvironment":
    if target.composition is None:
        raise ConfigurationError(
            f"{target.label} lists no environments (environment: or esc:environments in the stack "
            "file): nothing to open; or name environments on the command line"
        )
    return target.backend.open(target.composition, organization=target.organization, mode=mode)  # type: ignore[arg-type]


def _diag_line(d: "Diagnostic", *, severity: bool = True, fallback: str = "") -> str:
    """``env:line:col: error: message`` (``severity``) or ``env:line:col: message`` (as ``esc
    open`` prints them)."""
    level = ("error" if d.is_error else "warning") + ": " if severity else ""
    if d.range is None:
        return f"{fallback}: {level}{d.summary}" if fallback else f"{level}{d.summary}"
    b = d.range.begin
    return f"{d.range.environment}:{b.line}:{b.column}: {level}{d.summary}"


def _print_definition_errors(e: DefinitionError, *, severity: bool = True) -> int:
    lines = [_diag_line(d, severity=severity) for d in e.diagnostics]
    if not lines:
        lines = [str(e).splitlines()[0]]
    for line in lines:
        print(line, file=sys.stderr)
    return 1


# -- open ---------------------------------------------------------------------------------------


def path_keys(path_text: str) -> list[str | int]:
    """The keys of a property path (``a.b[0]["c d"]``), or an EscError saying what is wrong."""
    from ..esc.interpolation import parse_path

    accessors, errors = parse_path(path_text)
    if errors:
        raise EscError(f"invalid property path {path_text!r}: {errors[0].summary}")
    return [a.key for a in accessors]


def select_path(value: "Value", path_text: str | None) -> tuple["Value", bool]:
    """The value at ``path_text`` and whether it is the root; a missing path gives null, as
    ``esc open`` prints it."""
    from ..esc import Value
    from ..esc.values import value_at

    if not path_text:
        return value, True
    keys = path_keys(path_text)
    found = value_at(value, keys)
    return (found if found is not None else Value(None)), not keys


def cmd_open(args: argparse.Namespace) -> int:
    from .formats import FORMATS, render
    from ..esc.values import go_quote

    fmt = args.format
    # As esc does: a bad format or path fails before anything is opened.
    if fmt not in FORMATS:
        raise EscError(f"unknown output format {go_quote(fmt)}")
    if args.path and args.path_option:
        raise EscError("give the property path once (PATH or --path)")
    path = args.path or args.path_option
    if path:
        path_keys(path)  # as esc does: a bad path fails before anything is opened
    target = resolve_target(args, [args.ref] if args.ref else [])
    try:
        opened = _open(target, "open")
    except DefinitionError as e:
        return _print_definition_errors(e, severity=False)
    for d in opened.diagnostics:
        print(_diag_line(d), file=sys.stderr)
    if fmt in ("dotenv", "shell"):
        value, is_root = opened.value, True  # projections always come from the whole environment
    else:
        value, is_root = select_path(opened.value, path)
    text = render(value, fmt, show_secrets=args.show_secrets, environment="", root=is_root)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


# -- config -------------------------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    import json

    from ..backends.base import OpenedEnvironment
    from ..esc import Value
    from ..workspace.mapping import compute_config

    start = _start_dir(args)
    stack = args.stack or os.environ.get("PULUMI_STACK")
    plan = _plan(stack, start)
    if plan.composition is not None:
        try:
            opened = plan.backend.open(plan.composition, organization=plan.organization, mode="open")
        except DefinitionError as e:
            _print_definition_errors(e)
            raise EscError(f"the environments of stack {plan.stack!r} have errors (see above)") from None
    else:
        opened = OpenedEnvironment(Value({}))
    result = compute_config(plan, opened)
    overridden = set(result.overridden)

    if args.json:
        out: dict[str, Any] = {}
        for key, e in result.entries.items():
            item: dict[str, Any] = {}
            if not e.secret or (args.show_secrets and not e.encrypted):
                item["value"] = e.value
            item["secret"] = e.secret
            item["source"] = e.source
            if e.encrypted:
                item["encrypted"] = True
            if key in overridden:
                item["overridesEnvironment"] = True
            out[key] = item
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return 0

    rows = [("KEY", "VALUE", "SOURCE")]
    for key, e in result.entries.items():
        if e.secret and not (args.show_secrets and not e.encrypted):
            shown = "[secret]"
        else:
            shown = _one_line(e.value)
        source = e.source + (" (overrides the environment)" if key in overridden else "")
        rows.append((key, shown, source))
    if len(rows) == 1:
        print(f"stack {plan.stack!r} has no config", file=sys.stderr)
        return 0
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for k, v, s in rows:
        sys.stdout.write(f"{k:<{w0}}  {v:<{w1}}  {s}".rstrip() + "\n")
    return 0


def _one_line(text: str) -> str:
    from ..esc.values import go_quote

    return go_quote(text) if any(c in text for c in "\n\r\t") else text


# -- run ----------------------------------------------------------------------------------------


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
            opened = _open(target, "open")
        except DefinitionError as e:
            _print_definition_errors(e)
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


# -- check --------------------------------------------------------------------------------------


def _is_file_target(target: str) -> bool:
    return os.path.isfile(target) or target.endswith((".yaml", ".yml", ".json"))


def cmd_check(args: argparse.Namespace) -> int:
    lines: list[str] = []
    errors = 0
    targets: list[str] = list(args.targets)
    refs = [t for t in targets if not _is_file_target(t)]
    files = [t for t in targets if _is_file_target(t)]
    for f in files:
        diags = check_file(f)
        errors += sum(1 for d in diags if d.is_error)
        lines.extend(_diag_line(d, fallback=f) for d in diags)
    if refs or not targets:
        target = resolve_target(args, refs)
        if target.composition is None:
            print(f"{target.label} lists no environments: nothing to check", file=sys.stderr)
        else:
            try:
                opened = _open(target, "check")
                diags = list(opened.diagnostics)
            except DefinitionError as e:
                diags = list(e.diagnostics) or []
                if not diags:
                    lines.append(f"error: {str(e).splitlines()[0]}")
                    errors += 1
            errors += sum(1 for d in diags if d.is_error)
            lines.extend(_diag_line(d) for d in _sorted(diags))
    for line in lines:
        print(line)
    sys.stdout.flush()
    return 1 if errors else 0


def _sorted(diags: Iterable["Diagnostic"]) -> list["Diagnostic"]:
    def key(d: "Diagnostic") -> tuple:
        if d.range is None:
            return (0, "", 0, 0, d.summary)
        return (1, d.range.environment, d.range.begin.line, d.range.begin.column, d.summary)

    return sorted(diags, key=key)


class _FolderLoader:
    """Imports of a local definition: the definitions beside it (``name`` → ``DIR/name.yaml``),
    or, when the file sits in a ``file://`` store's project folder, the store's layout
    (``proj/env`` → ``DIR/../proj/env.yaml``, a bare ``env`` → ``DIR/../default/env.yaml``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: dict[str, str] = {}

    def candidates(self, name: str) -> list[Path]:
        base = name.split("@", 1)[0]
        out = [self.folder / f"{base}.yaml", self.folder / f"{base}.yml"]
        store = self.folder.parent
        if "/" in base:
            out.append(store / f"{base}.yaml")
        else:
            out.append(store / "default" / f"{base}.yaml")
        return out

    def load(self, name: str) -> Any:
        from ..esc import LoadedEnvironment, LoadError

        tried = self.candidates(name)
        for path in tried:
            if path.is_file():
                try:
                    text = path.read_bytes()
                except OSError as e:
                    raise LoadError(f"cannot read {_display(path)}: {e.strerror or e}") from None
                self.paths[name] = _display(path)
                return LoadedEnvironment(text=text)
        raise LoadError(f"environment {name!r} not found: no file {_display(tried[0])}")


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def check_file(file: str) -> list["Diagnostic"]:
    """Diagnostics of a local definition evaluated in check mode, sorted, each naming its file."""
    import dataclasses

    from ..esc import ProviderRegistry, evaluate, load_definition

    path = Path(file)
    if not path.is_file():
        raise EscError(f"{file}: no such file")
    text = path.read_bytes()
    decl, diags = load_definition(text, file)
    if decl is not None:
        loader = _FolderLoader(path.parent)
        _, more = evaluate(decl, mode="check", loader=loader, providers=ProviderRegistry())
        diags = diags + more

        def located(d: "Diagnostic") -> "Diagnostic":
            if d.range is not None and d.range.environment in loader.paths:
                return dataclasses.replace(
                    d, range=dataclasses.replace(d.range, environment=loader.paths[d.range.environment])
                )
            return d

        diags = [located(d) for d in diags]
    return _sorted(diags)


# -- env encrypt | decrypt ------------------------------------------------------------------------


def cmd_env_crypt(args: argparse.Namespace, *, decrypt: bool) -> int:
    """Rewrite FILEs in place. All files are transformed in memory first: a wrong passphrase on
    the third file leaves the first two untouched too. Each write is atomic (temp file + rename)."""
    from ..secrets.crypto import local_cipher
    from ..secrets.definitions import decrypt_secrets, encrypt_secrets

    cipher = local_cipher()
    if cipher is None:
        raise ConfigurationError(
            "no key to " + ("decrypt" if decrypt else "encrypt")
            + " with: set ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE"
        )
    verb = "decrypted" if decrypt else "encrypted"
    planned: list[tuple[Path, str, str]] = []
    for name in dict.fromkeys(args.files):
        path = Path(name)
        if not path.is_file():
            raise EscError(f"{name}: no such file")
        try:
            original = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise EscError(f"{name}: not UTF-8 text") from None
        try:
            new = decrypt_secrets(original, cipher.decrypt) if decrypt else encrypt_secrets(original, cipher.encrypt)
        except EscError as e:
            raise type(e)(f"{name}: {e}") from None
        planned.append((path, original, new))
    for path, original, new in planned:
        if new == original:
            print(f"{path}: nothing to {'decrypt' if decrypt else 'encrypt'}", file=sys.stderr)
            continue
        _atomic_write(path, new)
        print(f"{path}: {verb}", file=sys.stderr)
    return 0


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
