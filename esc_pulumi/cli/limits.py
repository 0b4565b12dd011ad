"""The evaluation limits as command-line options (``--eval-max-mb``, ``--eval-max-values``,
``--eval-timeout``), shared by every subcommand that evaluates."""
from __future__ import annotations

import argparse

from ..errors import EscError
from ..esc import EvalLimits

__all__ = ["limit_options", "limits_from"]

_MiB = 1024 * 1024


def limit_options(p: argparse.ArgumentParser, timeout_default: str = "none") -> None:
    """Add the limit options; their defaults are the engine's (:class:`esc_pulumi.esc.EvalLimits`)."""
    d = EvalLimits()
    p.add_argument("--eval-max-mb", type=float, default=None, metavar="MB",
                   help=f"largest text one value may expand to, in MB (default {d.max_bytes // _MiB}; "
                        "twice that for all the strings an evaluation builds)")
    p.add_argument("--eval-max-values", type=int, default=None, metavar="N",
                   help=f"most values one value may expand to (default {d.max_nodes})")
    p.add_argument("--eval-timeout", type=float, default=None, metavar="SECONDS",
                   help=f"wall-time limit of one evaluation (default {timeout_default})")


def limits_from(args: argparse.Namespace) -> EvalLimits | None:
    """The limits the options ask for, or None when none was given (the engine's defaults)."""
    mb, values, timeout = args.eval_max_mb, args.eval_max_values, args.eval_timeout
    if mb is None and values is None and timeout is None:
        return None
    changes: dict[str, object] = {}
    if mb is not None:
        if not mb > 0:
            raise EscError("--eval-max-mb must be a positive number of MB")
        changes["max_bytes"] = max(1, int(mb * _MiB))
        changes["max_built_bytes"] = max(1, int(2 * mb * _MiB))
    if values is not None:
        if values <= 0:
            raise EscError("--eval-max-values must be a positive number")
        changes["max_nodes"] = values
    if timeout is not None:
        if not timeout > 0:
            raise EscError("--eval-timeout must be a positive number of seconds")
        changes["timeout"] = timeout
    return EvalLimits(**changes)
