"""What every ``esc-pulumi`` subcommand shares: the failures a user can cause, as one-line EscErrors."""
from __future__ import annotations

import argparse
import functools
import os
from typing import Callable

from ..errors import EscError

__all__ = ["CommandNotRunnable", "guarded"]


class CommandNotRunnable(EscError):
    """The command a verb should start cannot be: the shell's exit codes, 127 when it is not
    found and 126 when it is not executable (as ``sh``, ``env`` and ``esc run`` exit)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
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


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters take two, combining marks none."""
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def table(rows: "list[tuple[str, ...]]") -> str:
    """Rows as aligned columns (two spaces apart, by display width), last column unpadded."""
    if not rows:
        return ""
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        cells = [c + " " * (w - display_width(c)) for c, w in zip(r, widths)] + [r[-1]]
        lines.append("  ".join(cells).rstrip() + "\n")
    return "".join(lines)
