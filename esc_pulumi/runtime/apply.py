"""Applying a load to the running process: Pulumi config, ``os.environ`` and projected files.

Pulumi keeps config in two ContextVars of :mod:`pulumi.runtime.config` (a dict and a set). The
program runs in a *copy* of the context the SDK filled, so rebinding them
(``set_all_config``) would not be seen where it matters; the dict and set are updated **in
place** instead. Everything that can fail (writing files) happens first and is undone on
failure: either all of a load is applied or nothing is.

The only state kept here rides on those Pulumi hooks: the memo that makes a second ``load()``
open nothing is valid only while the runtime's config dict is the very same object.

Projected ``files`` (decrypted secrets, often) live in one folder per process,
``<tmp>/esc-pulumi-<pid>-<random>`` (0700, files 0600), removed with everything in it at exit,
on SIGTERM and SIGHUP (see :func:`write_projected_files`), and — after a SIGKILL, where no code
runs — by the next process that writes files, which sweeps the folders of dead processes.

Example::

    applied = apply(config_result, opened, set_environment_variables=True, write_files=True)
    applied.files      # {'KUBECONFIG': '/tmp/esc-pulumi-4242-k3j2x9q1/esc-KUBECONFIG-x1y2.tmp'}
"""
from __future__ import annotations

import atexit
import contextvars
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

try:  # POSIX: the lock that tells a live folder from a dead process's one
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid check alone
    fcntl = None  # type: ignore[assignment]

from ..esc._fast import Record
from ..errors import EscError

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..workspace.mapping import ConfigResult
    from .projection import Projection


_UNSET = None  # an environment variable or config key that did not exist before a load


class Undo(Record):
    """What a load changed, to take it back when a later load replaces it: the earlier value
    (or ``None``: absent) of every variable and config key it set, the secret keys it added,
    and the files it wrote."""

    __slots__ = ("environ", "config", "secret_keys", "files")
    _defaults = {"secret_keys": frozenset(), "files": ()}
    _factories = {"environ": dict, "config": dict}
    environ: dict[str, str | None]
    config: dict[str, Any]
    secret_keys: frozenset[str]
    files: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Undo(environ={sorted(self.environ)!r}, config={sorted(self.config)!r})"


class Applied(Record):
    """What was (or would be) put into the process."""

    __slots__ = ("variables", "secret_variables", "files", "undo")
    _defaults = {"secret_variables": frozenset()}
    _factories = {"variables": dict, "files": dict, "undo": Undo}
    _uncompared = frozenset({"undo"})
    variables: dict[str, str]
    secret_variables: frozenset[str]
    files: dict[str, str]  # variable name -> path
    undo: Undo

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


# -- the per-process folder of projected files -------------------------------------------------
#
# Why a folder per process, named after the pid and locked: atexit does not run when the process
# dies of a signal. SIGTERM and SIGHUP get a handler (below) when the program has none; SIGKILL
# cannot be caught, so the next process that projects files removes the folders whose owner is
# gone. "Gone" is decided twice: the pid is not alive (os.kill(pid, 0)), and the folder's flock —
# held by its owner for as long as it lives, released by the kernel however it dies — can be
# taken. The pid alone would sweep the live folder of a process in another pid namespace sharing
# /tmp; the lock alone, a folder just created and not locked yet. A reused pid only delays the
# sweep of a dead process's folder until that pid is free again.

FOLDER_PREFIX = "esc-pulumi-"
_FOLDER_NAME = re.compile(r"esc-pulumi-([0-9]+)-[A-Za-z0-9_]+\Z")
# Signals whose default action ends the process without running atexit handlers, and that a
# program is commonly stopped with (SIGTERM: `kill`, container stops; SIGHUP: a closed terminal).
_CLEANED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class _Folder:
    """This process's folder of projected files (``pid``: the process that created it)."""

    __slots__ = ("path", "pid", "lock_fd", "exit_hook", "swept", "handlers")

    def __init__(self) -> None:
        self.path: str | None = None
        self.pid = 0
        self.lock_fd: int | None = None
        self.exit_hook = False
        self.swept = False
        self.handlers: dict[int, Any] = {}  # signal -> the handler replaced


_STATE = _Folder()
# Re-entrant: the signal handler runs on the main thread, possibly while it is inside
# private_folder() holding the lock, and must be able to take it again.
_STATE_LOCK = threading.RLock()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (as far as this process can tell; unsure means alive)."""
    if pid <= 0 or os.name != "posix":
        # pid 0 is never a folder's owner; on Windows os.kill(pid, 0) would send CTRL_C_EVENT.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, OSError):
        return True  # someone else's process (or not a pid at all): not ours to judge
    return True


def _open_locked(path: str) -> int | None:
    """An fd of folder ``path`` holding its exclusive lock, or ``None`` when someone holds it.

    Without fcntl (Windows) every folder counts as unlocked: the pid check decides alone.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_stale_folders(temp_dir: str | None = None) -> list[str]:
    """Remove the projected-file folders of processes that are gone (killed by SIGKILL, say);
    the paths removed.

    Only folders named ``esc-pulumi-<pid>-...`` directly in ``temp_dir`` (default: the temp
    directory), really folders (not links), owned by this user, whose pid is not alive and whose
    lock no one holds. Errors are ignored: sweeping is a courtesy, never a reason to fail.
    """
    tmp = temp_dir if temp_dir is not None else tempfile.gettempdir()
    removed: list[str] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = list(os.scandir(tmp))
    except OSError:
        return removed
    for entry in entries:
        m = _FOLDER_NAME.match(entry.name)
        if m is None or entry.path == _STATE.path:
            continue
        try:
            st = os.lstat(entry.path)
            if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
                continue
            if _pid_alive(int(m.group(1))):
                continue
            fd = _open_locked(entry.path)
        except OSError:
            continue
        if fd is None:
            continue  # its owner lives on (in another pid namespace, or as a forked child)
        try:
            # rmtree works on fds and does not follow links: nothing outside the folder goes.
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed


def private_folder() -> str:
    """This process's folder for projected files: created (0700, locked) on first use, swept
    folders of dead processes first; removed at exit and on SIGTERM/SIGHUP."""
    with _STATE_LOCK:
        pid = os.getpid()
        if _STATE.path is not None and _STATE.pid == pid and os.path.isdir(_STATE.path):
            return _STATE.path
        if not _STATE.swept or _STATE.pid != pid:
            _STATE.swept = True
            sweep_stale_folders()
        if _STATE.pid != pid and _STATE.lock_fd is not None:
            # A forked child: the parent's folder and lock are the parent's (the inherited fd
            # is left open, so the parent's folder is not swept while the child lives on).
            _STATE.lock_fd = None
        for _ in range(3):
            path = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{pid}-")  # 0700, O_EXCL
            fd = _open_locked(path)
            # A sweeper in another pid namespace may have taken it before the lock: start again.
            if fd is not None and _same_file(fd, path):
                break
            if fd is not None:
                os.close(fd)
        else:
            raise OSError("the folder for projected files keeps disappearing")
        if _STATE.lock_fd is not None:
            os.close(_STATE.lock_fd)  # an earlier folder of ours, removed behind our back
        _STATE.path, _STATE.pid, _STATE.lock_fd = path, pid, fd
        if not _STATE.exit_hook:
            atexit.register(remove_private_folder)
            _STATE.exit_hook = True
        _install_signal_handlers()
        return path


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_private_folder() -> None:
    """Remove this process's folder of projected files and everything in it (at exit, on
    SIGTERM/SIGHUP). A forked child never removes its parent's folder."""
    with _STATE_LOCK:
        if _STATE.path is None or _STATE.pid != os.getpid():
            return
        shutil.rmtree(_STATE.path, ignore_errors=True)
        if _STATE.lock_fd is not None:
            os.close(_STATE.lock_fd)
        _STATE.path, _STATE.lock_fd = None, None


def _install_signal_handlers() -> None:
    """Clean up on SIGTERM/SIGHUP — only where the disposition is still the default one.

    A handler the program installed (or SIG_IGN, or one set outside Python) is the program's
    decision and stays: if it exits, atexit cleans up. Signal handlers can only be set from the
    main thread; Pulumi's language host runs the program there (``run_in_stack`` on the main
    thread's event loop), so ``load()`` at the top of a program gets them. From another thread
    nothing is installed, and atexit and the next start's sweep are what clean up.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANED_SIGNALS:
        if signum in _STATE.handlers:
            continue
        try:
            if signal.getsignal(signum) is not signal.SIG_DFL:
                continue
            _STATE.handlers[signum] = signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            continue


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Remove the projected files, then do what the signal would have done: put the previous
    disposition back and send the signal again, so the process ends as if never caught (exit
    status 128+signum; atexit does not run, as with no handler)."""
    remove_private_folder()
    previous = _STATE.handlers.pop(signum, signal.SIG_DFL)
    if callable(previous):  # pragma: no cover - installed only over SIG_DFL, kept for safety
        signal.signal(signum, previous)
        previous(signum, frame)
        return
    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _after_fork_in_child() -> None:
    """A forked child owns no folder: give it back the default dispositions we replaced. A
    Python handler only runs between bytecodes, so a child stuck in C code (a regular
    expression, say) would otherwise outlive a SIGTERM that the default action ends at once."""
    for signum in list(_STATE.handlers):
        try:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, signal.SIG_DFL)
        except (ValueError, OSError):  # pragma: no cover - not the main thread
            pass
    _STATE.handlers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def write_projected_files(projection: "Projection") -> dict[str, str]:
    """Write each ``files`` entry to a new 0600 file; ``{variable: path}``.

    The files go into this process's folder (:func:`private_folder`, 0700), which is removed at
    interpreter exit and on SIGTERM/SIGHUP; after a SIGKILL the next process projecting files
    removes it. On any failure the files already written are removed and an :class:`EscError`
    naming the entry (never its content) is raised.
    """
    written: dict[str, str] = {}
    name = ""
    try:
        folder = private_folder()  # also sweeps dead processes' folders, files or not
        for name, pv in sorted(projection.files.items()):
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
            # mkstemp creates the file 0600 and O_EXCL: no one else can read or pre-create it.
            fd, path = tempfile.mkstemp(prefix=f"esc-{safe}-", suffix=".tmp", dir=folder)
            written[name] = path
            with os.fdopen(fd, "wb") as f:
                f.write(pv.text.encode("utf-8"))
    except OSError as e:
        _remove(list(written.values()))
        why = e.strerror or type(e).__name__
        if not name:
            raise EscError(f"cannot create the folder for projected files in {tempfile.gettempdir()}: {why}") from None
        raise EscError(f"cannot write the projected file for {name!r}: {why}") from None
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
