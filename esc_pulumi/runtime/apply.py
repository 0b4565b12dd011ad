"""Applying a load to the running process: Pulumi config, ``os.environ`` and projected files.

Pulumi keeps config in two ContextVars of :mod:`pulumi.runtime.config` (a dict and a set). The
program runs in a *copy* of the context the SDK filled, so rebinding them
(``set_all_config``) would not be seen where it matters; the dict and set are updated **in
place** instead. Everything that can fail (writing files) happens first and is undone on
failure: either all of a load is applied or nothing is.

The only state kept here rides on those Pulumi hooks: the memo that makes a second ``load()``
open nothing is valid only while the runtime's config dict is the very same object.

Example::

    applied = apply(config_result, opened, set_environment_variables=True, write_files=True)
    applied.files      # {'KUBECONFIG': '/tmp/esc-KUBECONFIG-x1y2.tmp'}
"""
from __future__ import annotations

import atexit
import contextvars
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import EscError

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..workspace.mapping import ConfigResult
    from .projection import Projection


_UNSET = None  # an environment variable or config key that did not exist before a load


@dataclass(frozen=True)
class Undo:
    """What a load changed, to take it back when a later load replaces it: the earlier value
    (or ``None``: absent) of every variable and config key it set, the secret keys it added,
    and the files it wrote."""

    environ: dict[str, str | None] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Undo(environ={sorted(self.environ)!r}, config={sorted(self.config)!r})"


@dataclass(frozen=True)
class Applied:
    """What was (or would be) put into the process."""

    variables: dict[str, str] = field(default_factory=dict)
    secret_variables: frozenset[str] = frozenset()
    files: dict[str, str] = field(default_factory=dict)  # variable name -> path
    undo: Undo = field(default_factory=Undo, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"Applied(variables={sorted(self.variables)!r}, files={sorted(self.files)!r})"


def projection_of(opened: "OpenedEnvironment | None") -> "Projection":
    from .projection import Projection, project

    if opened is None:
        return Projection(variables={}, files={})
    return project(opened.value)


def runtime_config() -> tuple[dict[str, Any], set[str]]:
    """The Pulumi runtime's current config dict and secret-key set (the objects themselves)."""
    from pulumi.runtime import config as pconfig

    return pconfig.CONFIG.get(), pconfig._SECRET_KEYS.get()


def _remove(paths: list[str]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def write_projected_files(projection: "Projection") -> dict[str, str]:
    """Write each ``files`` entry to a new 0600 temp file (removed at interpreter exit).

    On any failure the files already written are removed and an :class:`EscError` naming the
    entry (never its content) is raised.
    """
    written: dict[str, str] = {}
    try:
        for name, pv in sorted(projection.files.items()):
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
            # mkstemp creates the file 0600 and O_EXCL: no one else can read or pre-create it.
            fd, path = tempfile.mkstemp(prefix=f"esc-{safe}-", suffix=".tmp")
            written[name] = path
            with os.fdopen(fd, "wb") as f:
                f.write(pv.text.encode("utf-8"))
    except OSError as e:
        _remove(list(written.values()))
        raise EscError(f"cannot write the projected file for {name!r}: {e.strerror or type(e).__name__}") from None
    if written:
        atexit.register(_remove, list(written.values()))
    return written


def apply(
    result: "ConfigResult",
    opened: "OpenedEnvironment | None",
    *,
    set_environment_variables: bool = True,
    write_files: bool = True,
    projection: "Projection | None" = None,
    dry_run: bool = False,
    replacing: Applied | None = None,
) -> Applied:
    """Put config, environment variables and files into the process — all or nothing.

    ``replacing``: the earlier load this one replaces; what it set and this one does not is
    taken back (variables and config keys get their earlier values, its files are removed),
    but only once everything that can fail here has succeeded.
    With ``dry_run`` nothing is touched and the returned :class:`Applied` says what would be.
    """
    proj = projection if projection is not None else projection_of(opened)
    variables = {k: v.text for k, v in proj.variables.items()}
    secret_vars = {k for k, v in proj.variables.items() if v.secret}
    secret_vars |= {k for k, v in proj.files.items() if v.secret}
    if dry_run:
        return Applied(variables, frozenset(secret_vars), {})

    # Resolve the Pulumi hooks before any side effect: an import failure must leave no trace.
    config, secret_keys = runtime_config()
    values = result.values()

    files = write_projected_files(proj) if write_files else {}
    # Nothing below can fail: plain dict/set/environ updates.
    if replacing is not None:
        _take_back(replacing.undo, config, secret_keys)
    new_environ = {**variables, **files} if set_environment_variables else {}
    undo = Undo(
        environ={k: os.environ.get(k, _UNSET) for k in new_environ},
        config={k: config.get(k, _UNSET) for k in values},
        secret_keys=frozenset(result.secret_keys - secret_keys),
        files=tuple(files.values()),
    )
    os.environ.update(new_environ)
    config.update(values)
    secret_keys.update(result.secret_keys)
    return Applied(variables, frozenset(secret_vars), files, undo)


def _take_back(undo: Undo, config: dict[str, Any], secret_keys: set[str]) -> None:
    for name, before in undo.environ.items():
        if before is _UNSET:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    for key, before in undo.config.items():
        if before is _UNSET:
            config.pop(key, None)
        else:
            config[key] = before
    secret_keys.difference_update(undo.secret_keys)
    _remove(list(undo.files))


# -- the "load twice opens nothing twice" memo ------------------------------------------------

# Context-local, like Pulumi's own config hooks; an entry is only trusted while the runtime's
# config dict is the very object it was recorded against (a new run/test gets a new dict).
_MEMO: contextvars.ContextVar[tuple[Any, Any, Any, Applied] | None] = contextvars.ContextVar(
    "esc_pulumi_memo", default=None
)


def memo_get(key: Any) -> tuple[Any, Applied | None]:
    """``(result, None)`` when the last load in this run had ``key``; else ``(None, applied)``
    with what the last load of this run applied (``None`` if there was none)."""
    entry = _MEMO.get()
    if entry is None:
        return None, None
    config_obj, k, result, applied = entry
    if config_obj is not runtime_config()[0]:
        return None, None
    if k != key:
        return None, applied
    return result, None


def memo_put(key: Any, result: Any, applied: Applied) -> None:
    _MEMO.set((runtime_config()[0], key, result, applied))


def masked(mapping: Mapping[str, str], secret: frozenset[str] | set[str]) -> dict[str, str]:
    """A copy of ``mapping`` with secret values replaced by ``[secret]`` (for display)."""
    return {k: ("[secret]" if k in secret else v) for k, v in mapping.items()}
