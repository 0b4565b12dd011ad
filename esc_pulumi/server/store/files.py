"""The data folder's permissions: the database and the key are the owner's alone.

A new data folder is created 0700 and every file the server writes in it (``esc.db`` and its
``-wal`` / ``-shm`` companions, ``server.key``) is 0600, whatever the umask. A folder that
already existed is left as it is (it may be shared on purpose, a group-readable backup
target, say): when others may enter it, :func:`private_folder` returns a warning saying how to
close it. Files the server owns are tightened to 0600 when found looser.

Example::

    warning = private_folder(Path("esc-data"))     # None, or what to run
    private_file(Path("esc-data/esc.db"))          # exists, mode 0600
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["private_folder", "private_file", "tighten_file", "folder_warning"]


def folder_warning(path: Path) -> str | None:
    """A warning when others than the owner may read or enter ``path``, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f"the data folder {path} is open to other users (mode {mode:04o}); "
                f"its files are 0600, but to hide their names too run: chmod 700 {path}")
    return None


def private_folder(path: Path) -> str | None:
    """Create ``path`` (and its parents) if absent, the folder itself 0700; for an existing
    folder, :func:`folder_warning`."""
    if path.is_dir():
        return folder_warning(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:  # another process made it meanwhile
        return folder_warning(path)
    os.chmod(path, 0o700)  # the umask may have taken bits off, never added: make it exact
    return None


def tighten_file(path: Path) -> None:
    """Make an existing file 0600 if it is looser (missing files are left alone)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o177:
        os.chmod(path, 0o600)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if absent (never truncating one that exists), or
    tighten it to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        tighten_file(path)
        return
    os.close(fd)
    os.chmod(path, 0o600)
