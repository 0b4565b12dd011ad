"""The ``file://DIR`` backend: definitions kept in a folder, evaluated by the embedded engine.

``<DIR>/<project>/<env>.yaml`` holds environment ``project/env``; a bare ``env`` means project
``default``. ``env@TAG`` (or ``@REV``) reads ``<DIR>/<project>/<env>@TAG.yaml`` when it exists,
and ``@latest`` is the plain file: a folder has no revision history of its own.

``{ciphertext: ...}`` secrets are decrypted with the key from ``ESC_PULUMI_PASSPHRASE`` or
``ESC_PULUMI_KEY_FILE`` (derived only when a ciphertext is met: scrypt is slow on purpose).

Nothing outside the folder is ever read. Names are ESC names (:mod:`esc_pulumi.refs`: no ``..``,
no ``/`` inside a part), so a name can only spell ``<DIR>/<project>/<env>[@<tag>].yaml``; and
the file is read only when its real path (every symbolic link followed) is still inside the
real path of ``<DIR>``. A link inside the folder to another place inside it is fine; a link
that leads out of it (to ``~/.aws/credentials``, say, committed to the repository holding the
definitions) is refused with an error naming the environment, before anything is read — a
definition's text ends up in diagnostics and YAML error messages, so reading a file outside
the folder could print it. The last step is opened with ``O_NOFOLLOW``, so it cannot be swapped
for a link after the check.

Example::

    backend = LocalBackend(Path("envs"))
    opened = backend.open({"imports": ["myproj/dev"]})
    to_plain(opened.value, redact=True)
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from ..errors import BackendError, DecryptionError, DefinitionError, EnvironmentNotFound, EscError
from ..refs import EnvironmentRef
from ..secrets.binding import MOVED_FILE, file_binding
from .base import OpenedEnvironment, single_import


def env_name_of_ref(name: str) -> str:
    """The canonical ``project/env`` of reference ``name`` (``env``, ``proj/env@tag``): what
    the ciphertexts of its file are bound to."""
    ref = EnvironmentRef.parse(name)
    return f"{ref.project}/{ref.name}"


def env_name_of_file(path: Path) -> str:
    """The canonical ``project/env`` of the definition file ``path``
    (``<DIR>/<project>/<env>[@<tag>].yaml``, as the backend lays them out), for
    ``env encrypt``/``env decrypt``: its folder's name and its name without ``.yaml`` or tag.

    Example::

        env_name_of_file(Path("envs/app/dev@v1.yaml"))   # 'app/dev'
    """
    p = Path(os.path.abspath(path))
    stem = p.name[: -len(p.suffix)] if p.suffix in (".yaml", ".yml") else p.name
    return f"{p.parent.name}/{stem.split('@', 1)[0]}"


def file_cipher(cipher: Any, name: str) -> Any:
    """The :class:`~esc_pulumi.secrets.binding.BoundCipher` of environment ``name``
    (``project/env``) of a file:// folder: new ciphertexts bound to it; old unbound ones open."""
    from ..secrets.binding import BoundCipher

    return BoundCipher(cipher, file_binding(name), legacy=cipher, moved=MOVED_FILE)


class _Session:
    """One open: remembers what went wrong in the loader/decrypter so that the right
    :class:`EscError` subclass is raised afterwards (the engine only records diagnostics)."""

    def __init__(self, backend: "LocalBackend") -> None:
        self.backend = backend
        self.missing: dict[str, str] = {}  # environment name -> message
        self.decrypt_failures: list[str] = []
        self.loaded: list[str] = []
        self._cipher: Any = None  # the AesGcmCipher, made when a ciphertext is met

    def load(self, name: str):  # -> LoadedEnvironment
        from ..esc import LoadedEnvironment, LoadError

        try:
            text = self.backend.read_bytes(name)
        except EnvironmentNotFound as e:
            self.missing[name] = str(e)
            raise LoadError(str(e)) from None
        except EscError as e:  # a bad name (InvalidReference), a path outside the folder, ...
            raise LoadError(str(e)) from None
        self.loaded.append(name)
        return LoadedEnvironment(text=text, decrypter=self.decrypter_for(name))

    def decrypter_for(self, name: str) -> Callable[[bytes], bytes]:
        """The decrypter of environment ``name``'s ciphertexts: bound to its canonical name
        (``project/env``; a tag's file shares its environment's), old unbound ones still open."""
        binding = file_binding(env_name_of_ref(name))

        def decrypt(payload: bytes) -> bytes:
            return self.decrypt(payload, binding)

        return decrypt

    def decrypt(self, payload: bytes, binding: bytes | None = None) -> bytes:
        from ..secrets.binding import BoundCipher, MovedCiphertext

        if self._cipher is None:
            from ..secrets.crypto import local_cipher

            try:
                cipher = local_cipher(self.backend.environ)
            except EscError as e:  # an unreadable key file, say
                self.decrypt_failures.append(f"cannot decrypt a secret: {e}")
                raise
            if cipher is None:
                msg = "cannot decrypt a secret: no key is set: set ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE"
                self.decrypt_failures.append(msg)
                raise DecryptionError(msg)
            self._cipher = cipher
        try:
            if binding is None:  # no environment of its own: unbound ciphertexts only
                return self._cipher.decrypt(payload)
            return BoundCipher(self._cipher, binding, legacy=self._cipher, moved=MOVED_FILE).decrypt(payload)
        except MovedCiphertext:
            self.decrypt_failures.append(MOVED_FILE)
            raise
        except DecryptionError:
            self.decrypt_failures.append(
                "cannot decrypt a secret: wrong ESC_PULUMI_PASSPHRASE or key file, or corrupted data"
            )
            raise


class LocalBackend:
    """Definitions under ``root``, evaluated offline. ``context`` fills ``${context.pulumi...}``."""

    def __init__(
        self,
        root: Path,
        *,
        context: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        providers: Any = None,
        limits: Any = None,
        shown_root: str | None = None,
    ) -> None:
        self.root = Path(root)
        # The folder as the user wrote it (file:///srv/envs → /srv/envs, file://envs → envs):
        # messages show paths in those words, not relative to wherever the cwd happens to be.
        self.shown_root = shown_root
        self.url = f"file://{self.root}"
        self.context = dict(context or {})
        self.environ = environ if environ is not None else os.environ
        self.providers = providers
        # An esc.EvalLimits; None: the engine's defaults (always applied).
        self.limits = limits

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    def path_of(self, name: str) -> Path:
        """The file holding environment ``name`` (``env``, ``proj/env``, ``proj/env@tag``), as
        spelt under ``root`` (links not followed: the path users should see).

        :class:`InvalidReference` for a name that is not an ESC name; :class:`BackendError` when
        the file's real path leads out of the folder (see the module docstring).
        """
        ref = EnvironmentRef.parse(name)  # the one place names are checked: no '..', no '/'
        folder = self.root / ref.project
        if ref.version and ref.version != "latest":
            pinned = folder / f"{ref.name}@{ref.version}.yaml"
            if self._inside(name, pinned).is_file():
                return pinned
            raise EnvironmentNotFound(
                f"environment {name!r}: the local backend has no revision or tag "
                f"{ref.version!r} (no file {self.display(pinned)})"
            )
        path = folder / f"{ref.name}.yaml"
        self._inside(name, path)
        return path

    def _inside(self, name: str, path: Path) -> Path:
        """``path``'s real path, which must lie inside the real path of ``root``.

        Checked on real paths because a valid name still goes through whatever links the
        folder holds; a missing file resolves as far as it exists, which is inside too.
        """
        root = Path(os.path.realpath(self.root))
        real = Path(os.path.realpath(path))
        if real != root and root not in real.parents:
            raise BackendError(
                f"environment {name!r}: {self.display(path)} leads outside the local ESC folder "
                f"{self.display(self.root)} (a symbolic link?): refusing to read it"
            )
        return real

    def read_bytes(self, name: str) -> bytes:
        """The definition of environment ``name``, as bytes, read from inside the folder only.

        :class:`EnvironmentNotFound` when there is no such file; :class:`InvalidReference` or
        :class:`BackendError` as :meth:`path_of`; :class:`BackendError` when it cannot be read.
        """
        path = self.path_of(name)
        real = self._inside(name, path)  # what is opened is what was checked
        try:
            # O_NOFOLLOW: the checked file cannot turn into a link between the check and here.
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise EnvironmentNotFound(f"environment {name!r} not found: no file {self.display(path)}") from None
        except OSError as e:
            raise BackendError(f"cannot read {self.display(path)}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "rb") as f:
                return f.read()
        except OSError as e:  # a folder named like a definition (EISDIR), say
            raise BackendError(f"cannot read {self.display(path)}: {e.strerror or e}") from None

    def display(self, path: Path) -> str:
        """A path as users should see it: under the folder as the URL gave it, else relative
        to the cwd."""
        if self.shown_root is not None:
            try:
                rest = Path(path).relative_to(self.root)
            except ValueError:
                pass
            else:
                return self.shown_root if str(rest) == "." else str(Path(self.shown_root) / rest)
        try:
            return os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return str(path)

    def read_definition(self, name: str) -> str:
        """The definition text of one environment (for ``esc-pulumi check``/``open REF``)."""
        return self.read_bytes(name).decode("utf-8")

    def open(
        self,
        definition: Mapping[str, Any],
        *,
        organization: str | None = None,
        mode: Literal["open", "check"] = "open",
        limits: Any = None,
        detailed: bool = False,
    ) -> OpenedEnvironment:
        """Evaluate the anonymous composition ``definition`` (``{"imports": [...]}``) under
        ``limits`` (an :class:`esc_pulumi.esc.EvalLimits`), else the backend's, else the engine's
        defaults. ``detailed`` keeps the evaluation for :meth:`OpenedEnvironment.model` (a
        composition of one import shows that environment: the engine evaluated it as it
        evaluates it alone)."""
        if not self.root.is_dir():
            raise EnvironmentNotFound(
                f"the local ESC folder {self.display(self.root)} does not exist ({self.url})"
            )
        from ..esc import ANONYMOUS, ProviderRegistry, evaluate_environment, load_definition

        # JSON is YAML: the engine parses the composition like any other definition.
        decl, diags = load_definition(json.dumps(dict(definition)), ANONYMOUS)
        session = _Session(self)
        context = dict(self.context)
        if organization and "pulumi" not in context:
            context["pulumi"] = {"organization": {"login": organization}}
        if decl is None:
            from ..esc import Value

            if any(d.is_error for d in diags):
                raise DefinitionError("the environment composition is malformed", diags)
            return OpenedEnvironment(Value({}), tuple(diags), 0, (), (lambda redact: {}) if detailed else None)
        ev = evaluate_environment(
            decl,
            mode=mode,
            loader=session,
            providers=self.providers if self.providers is not None else ProviderRegistry(),
            context=context,
            limits=limits if limits is not None else self.limits,
        )
        diags = [_context_hint(self._located(d), context) for d in diags + ev.diagnostics]
        errors = [d for d in diags if d.is_error]
        if errors:
            self._raise(session, errors)
        return OpenedEnvironment(
            value=ev.value,
            diagnostics=tuple(d for d in diags if not d.is_error),
            requests=0,
            environments=tuple(dict.fromkeys(session.loaded)),
            detailed_model=_model_of(ev, single_import(definition)) if detailed else None,
        )

    def rotate(
        self,
        name: str,
        paths: "list[str] | tuple[str, ...]" = (),
        *,
        organization: str | None = None,
        limits: Any = None,
    ):  # -> esc.Rotation
        """Rotate environment ``name`` and write the new states into its file, in place.

        Every ``fn::rotate`` of the definition (or those at ``paths``, property paths relative
        to ``values``) calls its rotator; the new states replace the old ones in the file with
        comments and layout kept, secrets written as ``fn::secret`` and encrypted with the
        file's key (ESC_PULUMI_PASSPHRASE / ESC_PULUMI_KEY_FILE) when the file already holds
        ciphertexts. Nothing is written when anything fails: a rotator, another error in the
        environment (raised as :class:`DefinitionError` with the diagnostics), a path naming no
        call, or a file changed while rotating. Returns the :class:`esc_pulumi.esc.Rotation`
        (the value as it now opens, warnings, the patches written).

        Example::

            result = LocalBackend(Path("envs")).rotate("myproj/db", ["password"])
            [p.doc_path for p in result.patches]   # ['values.password["fn::rotate::pg"].state']
        """

        from ..esc import ProviderRegistry, evaluate, load_definition, rotate
        from ..esc.rotation import format_rotate_path, parse_rotate_path, rotate_sites
        from ..secrets.crypto import local_cipher
        from ..secrets.definitions import apply_state_patches, decrypt_secrets, uses_ciphertexts

        ref = EnvironmentRef.parse(name)
        if ref.version and ref.version != "latest":
            raise EscError(
                f"cannot rotate {name!r}: a pinned revision or tag is a snapshot; rotate "
                f"{ref.project}/{ref.name} itself"
            )
        if not self.root.is_dir():
            raise EnvironmentNotFound(f"the local ESC folder {self.display(self.root)} does not exist ({self.url})")
        path = self.path_of(name)
        try:
            original = path.read_bytes()
        except FileNotFoundError:
            raise EnvironmentNotFound(f"environment {name!r} not found: no file {self.display(path)}") from None
        text = original.decode("utf-8")
        decl, load_diags = load_definition(text, name)
        load_errors = [self._located(d) for d in load_diags if d.is_error]
        if load_errors:
            raise DefinitionError("environment definitions have errors:", load_errors)
        sites = rotate_sites(decl) if decl is not None else {}
        if not sites:
            raise EscError(f"{self.display(path)} has no fn::rotate: nothing to rotate")

        wanted = []
        for p in paths:
            try:
                keys = parse_rotate_path(p)
            except ValueError as e:
                raise EscError(str(e)) from None
            if keys not in sites:
                raise EscError(
                    f"{self.display(path)} has no fn::rotate at {p!r}; its calls: "
                    + ", ".join(format_rotate_path(k) for k in sites)
                )
            wanted.append(keys)
        session = _Session(self)
        cipher = None
        if uses_ciphertexts(text):
            # One key for reading and for writing: the new secrets go in with the key the
            # file's other ciphertexts were made with (checked below: all of them open).
            cipher = local_cipher(self.environ)
            if cipher is None:
                raise DecryptionError(
                    f"{self.display(path)} holds ciphertexts: set ESC_PULUMI_PASSPHRASE or "
                    "ESC_PULUMI_KEY_FILE to rotate it"
                )
            bound = file_cipher(cipher, env_name_of_ref(name))
            try:
                decrypt_secrets(text, bound.decrypt)
            except DecryptionError:
                raise DecryptionError(
                    f"{self.display(path)}: its ciphertexts do not decrypt with the key from the "
                    "environment (wrong passphrase or key file, or moved from another environment): "
                    "nothing rotated"
                ) from None
            session._cipher = cipher
        context = dict(self.context)
        if organization and "pulumi" not in context:
            context["pulumi"] = {"organization": {"login": organization}}
        common = dict(
            loader=session,
            providers=self.providers if self.providers is not None else ProviderRegistry(),
            decrypter=session.decrypter_for(name),
            context=context,
            limits=limits if limits is not None else self.limits,
        )
        # A check first, which runs no provider nor rotator: an environment with errors
        # (an unknown rotator, a rotateOnly input out of reach...) fails before any rotator
        # has changed a credential that could then not be recorded.
        _, check_diags = evaluate(decl, mode="check", **common)
        check_errors = [self._located(d) for d in check_diags if d.is_error]
        if check_errors:
            try:
                self._raise(session, check_errors)
            except DefinitionError:
                raise DefinitionError("the environment has errors, nothing rotated", check_errors) from None
        result = rotate(decl, paths=wanted or None, **common)
        diags = [self._located(d) for d in list(load_diags) + result.diagnostics]
        errors = [d for d in diags if d.is_error]
        if errors:
            ran = ", ".join(format_rotate_path(p.path) for p in result.patches)
            try:
                self._raise(session, errors)
            except DefinitionError:
                # Rotators that succeeded may have changed credentials already: say so.
                note = f"; the rotators of {ran} ran, their new states are discarded" if ran else ""
                raise DefinitionError(f"rotation failed, nothing written{note}", errors) from None
        result = dataclasses.replace(result, diagnostics=diags)
        if not result.patches:
            return result
        new = apply_state_patches(
            text, result.patches, file_cipher(cipher, env_name_of_ref(name)).encrypt if cipher is not None else None)
        target = path.resolve() if path.is_symlink() else path  # a link stays a link
        if target.read_bytes() != original:
            raise EscError(
                f"{self.display(path)} changed while rotating: nothing written. The rotators "
                "have run: rotate again to record new states"
            )
        write_in_place(target, new)
        return result

    def _located(self, d):
        """Diagnostics name the definition file (``envs/proj/dev.yaml:3:7``), not just the env."""
        from ..esc import ANONYMOUS

        field = "range" if d.range is not None else "location"  # a YAML syntax error has only a location
        where = getattr(d, field)
        if where is None or where.environment == ANONYMOUS:
            return d
        try:
            path = self.display(self.path_of(where.environment))
        except EscError:
            return d
        return d.replace(**{field: where.replace(environment=path)})

    def _raise(self, session: _Session, errors: list) -> None:
        if session.missing:
            names = ", ".join(session.missing)
            raise EnvironmentNotFound(
                "; ".join(session.missing.values())
                + (f" (looked in {self.display(self.root)})" if len(session.missing) == 1 else f" ({names})")
            )
        if session.decrypt_failures:
            where = next((f"{_where(d)}" for d in errors if "decrypt" in d.summary), "")
            raise DecryptionError(f"{where}{session.decrypt_failures[0]}")
        raise DefinitionError("environment definitions have errors:", errors)


def _model_of(ev: Any, environment: str | None) -> Callable[[bool], dict[str, Any]]:
    """:meth:`OpenedEnvironment.model` of an evaluation: the revealed model built once, on
    the first call, and redacted from it on request."""
    from ..esc.model import redact_model

    built: list[dict[str, Any]] = []

    def model(redact: bool) -> dict[str, Any]:
        if not built:
            built.append(ev.detailed(environment=environment))
        return redact_model(built[0]) if redact else built[0]

    return model


def _where(d) -> str:
    if d.range is None:
        return ""
    return f"{d.range.environment}:{d.range.begin.line}:{d.range.begin.column}: "


# The Pulumi context values offline evaluation knows only from settings, and those settings.
_CONTEXT_SETTINGS = {
    "user": "context.pulumi.user.login is known only when ESC_PULUMI_USER is set",
    "organization": "context.pulumi.organization.login is known only when an organization is set "
    "(ESC_PULUMI_ORGANIZATION or the stack's esc:organization)",
}


def _context_hint(d: "Any", context: Mapping[str, Any]) -> "Any":
    """An ``unknown property`` that is most likely a Pulumi context value this offline backend
    was not given gets the setting that gives it appended (the engine's words are kept)."""
    pulumi = context.get("pulumi")
    pulumi = pulumi if isinstance(pulumi, Mapping) else {}
    if d.summary == 'unknown property "pulumi"' and not pulumi:
        hint = "; ".join(_CONTEXT_SETTINGS.values())
    else:
        key = next((k for k in _CONTEXT_SETTINGS if d.summary == f'unknown property "{k}"'), None)
        if key is None or key in pulumi:
            return d
        hint = _CONTEXT_SETTINGS[key]
    return d.replace(summary=f"{d.summary} (offline, with the file:// backend, {hint})")


def write_in_place(path: Path, text: str) -> None:
    """Replace the file ``path`` with ``text`` all at once (a temp file beside it, fsynced,
    renamed over it), keeping its permissions: readers see the old file or the new one."""
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
