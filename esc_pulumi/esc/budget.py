"""The evaluation budget: how large the values of one evaluation may grow and how much work it
may do.

Values that reference earlier values are *shared* while evaluating (``a1: ['${a0}', '${a0}']``
holds two references to one array), so a definition of a few hundred bytes can describe a value
whose expanded form — what ``fn::toJSON``, interpolation, ``to_plain`` and the detailed view
build — has billions of nodes. The budget measures the expanded size of a value without
expanding it (each distinct container is measured once and remembered), refuses any value
over the limits before anything expands it, and counts the work done, so that every path
(builtins while evaluating, views after it) is bounded by the limits below.

What is counted:

- **size of one value**, expanded: its nodes (scalars, arrays, objects, and the imported
  ``base`` values the detailed view shows beneath them) and the characters of its strings and
  object keys. Checked for every value a builtin, an interpolation or a provider is about to
  expand, and for the whole result at the end, so the views of a result never blow up;
- **text built**: the characters of every string the evaluation creates (interpolations,
  ``fn::join``, ``fn::toJSON``, ``fn::toString``, ``fn::toBase64``/``fromBase64``), which bounds
  the memory those strings hold;
- **work**: one step per expression evaluated and per node measured, walked or built by a
  builtin; ``timeout`` (optional) is checked at the same points, so the clock is cooperative.

Exceeding any of them stops the evaluation: :func:`~esc_pulumi.esc.evaluate` returns an empty
object and a :class:`LimitDiagnostic` (an error) placed on the expression that crossed the
limit. Its summary names the limit, never a value (so no secret can leak through it).

Example::

    value, diags = esc.evaluate(decl, limits=esc.EvalLimits(max_bytes=1 << 20))
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._fast import Record
from .diagnostics import Diagnostic

if TYPE_CHECKING:  # pragma: no cover
    from .ast import Expr
    from .values import Value

__all__ = ["EvalLimits", "LimitDiagnostic", "Budget", "LimitExceeded", "DEFAULT_LIMITS"]

MiB = 1 << 20


class EvalLimits(Record):
    """Limits of one evaluation (imports included). The defaults are far beyond any honest
    environment (the engine benchmark's 100 000-value composition is 300 000 nodes and a few
    MB) yet keep the worst case to a few seconds of CPU and a few hundred MB.

    - ``max_bytes``: characters of text in any one value, expanded (the result included);
    - ``max_nodes``: nodes in any one value, expanded (the result included);
    - ``max_built_bytes``: characters of all the strings the evaluation builds;
    - ``max_work``: steps (expressions evaluated, nodes measured, walked or built);
    - ``timeout``: seconds of wall time, or ``None`` for no clock (the work limit still holds).
    """

    __slots__ = ("max_bytes", "max_nodes", "max_built_bytes", "max_work", "timeout")
    _defaults = {"max_bytes": 32 * MiB, "max_nodes": 2_000_000, "max_built_bytes": 64 * MiB,
                 "max_work": 20_000_000, "timeout": None}
    max_bytes: int
    max_nodes: int
    max_built_bytes: int
    max_work: int
    timeout: float | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("max_bytes", "max_nodes", "max_built_bytes", "max_work"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"EvalLimits.{name} must be a positive integer")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError("EvalLimits.timeout must be positive (or None)")


DEFAULT_LIMITS = EvalLimits()


class LimitDiagnostic(Diagnostic):
    """The error diagnostic of an evaluation stopped by its budget (an ordinary
    :class:`Diagnostic` otherwise), so that servers can answer it differently."""

    __slots__ = ()


class LimitExceeded(Exception):
    """Raised inside the engine when a limit is crossed; :func:`evaluate` turns it into a
    :class:`LimitDiagnostic` on ``expr`` (filled in by the driver when the raiser had none)."""

    def __init__(self, summary: str, expr: "Expr | None" = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.expr = expr


def _mb(n: int) -> str:
    return f"{n / MiB:g} MB" if n >= MiB else f"{n} bytes"


# How many steps pass between two looks at the clock: time.monotonic() costs ~50 ns, a step
# about a microsecond, so the clock costs nothing and is read every few milliseconds.
_CLOCK_EVERY = 4096


class Budget:
    """The counters of one evaluation (not shared between evaluations; not thread-safe: one
    evaluation runs on one thread).

    ``measure`` remembers the size of every container it has measured, keyed by identity; the
    memo also holds the value itself so that an identity is never reused while remembered.
    """

    __slots__ = ("limits", "work", "built", "deadline", "_next", "_sizes")

    def __init__(self, limits: EvalLimits | None = None) -> None:
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.work = 0
        self.built = 0
        self.deadline = None if self.limits.timeout is None else time.monotonic() + self.limits.timeout
        self._next = min(self.limits.max_work, _CLOCK_EVERY)
        self._sizes: dict[int, tuple[int, int, Any]] = {}

    # -- work ----------------------------------------------------------------------------------

    def step(self, n: int = 1, expr: "Expr | None" = None) -> None:
        """Count ``n`` steps of work (and look at the clock now and then)."""
        self.work += n
        if self.work >= self._next:
            self._check_work(expr)

    def _check_work(self, expr: "Expr | None") -> None:
        lim = self.limits
        if self.work > lim.max_work:
            raise LimitExceeded(f"evaluation exceeds the limit of {lim.max_work} steps of work", expr)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise LimitExceeded(f"evaluation exceeds the time limit of {lim.timeout:g} s", expr)
        self._next = min(lim.max_work + 1, self.work + _CLOCK_EVERY)

    # -- text ----------------------------------------------------------------------------------

    def text(self, n: int, expr: "Expr | None" = None) -> None:
        """About to build a string of ``n`` characters."""
        lim = self.limits
        if n > lim.max_bytes:
            raise LimitExceeded(f"evaluation exceeds the limit of {_mb(lim.max_bytes)} for one string", expr)
        self.built += n
        if self.built > lim.max_built_bytes:
            raise LimitExceeded(
                f"evaluation exceeds the limit of {_mb(lim.max_built_bytes)} of strings built", expr)
        self.step(1 + (n >> 12), expr)  # copying text costs too, about a step per 4 KB

    def fits(self, n: int, expr: "Expr | None" = None) -> None:
        """Whether a string of ``n`` characters may be built (without counting it)."""
        if n > self.limits.max_bytes:
            raise LimitExceeded(f"evaluation exceeds the limit of {_mb(self.limits.max_bytes)} for one string", expr)

    def nodes(self, n: int, expr: "Expr | None" = None) -> None:
        """About to build (or walk) ``n`` nodes at once."""
        if n > self.limits.max_nodes:
            raise LimitExceeded(f"evaluation exceeds the limit of {self.limits.max_nodes} values in one value", expr)
        self.step(n, expr)

    # -- size of values ----------------------------------------------------------------------------

    def measure(self, v: "Value", expr: "Expr | None" = None, *, root: bool = False) -> tuple[int, int]:
        """The expanded size of ``v``: (nodes, characters), bases included (the detailed view
        shows them) except the root's own with ``root``. Raises :class:`LimitExceeded` on the
        first (innermost) container over a limit, placed on its definition (or ``expr``)."""
        r = v.repr
        t = type(r)
        if (t is not list and t is not dict or v.unknown) and v.base is None:
            return 1, len(r) if t is str else 0  # a scalar: the common case, no memo
        sizes = self._sizes
        hit = sizes.get(id(v))
        if hit is not None and not root:
            return hit[0], hit[1]
        lim = self.limits
        max_nodes, max_bytes = lim.max_nodes, lim.max_bytes
        visited = 0
        # Iterative post-order over the distinct containers: (value, children pushed?)
        stack: list[tuple[Any, bool]] = [(v, False)]
        while stack:
            x, done = stack.pop()
            xid = id(x)
            if not done:
                if xid in sizes and not (root and x is v):
                    continue
                stack.append((x, True))
                xr = x.repr
                if not x.unknown:
                    xt = type(xr)
                    if xt is list:
                        kids = xr
                    elif xt is dict:
                        kids = xr.values()
                    else:
                        kids = ()
                    for c in kids:
                        cr = c.repr
                        ct = type(cr)
                        if (ct is list or ct is dict) and not c.unknown or c.base is not None:
                            if id(c) not in sizes:
                                stack.append((c, False))
                if x.base is not None and not (root and x is v) and id(x.base) not in sizes:
                    stack.append((x.base, False))
                continue
            visited += 1
            n, b = 1, 0
            xr = x.repr
            xt = type(xr)
            if x.unknown:
                pass
            elif xt is str:
                b = len(xr)
            elif xt is list or xt is dict:
                if xt is dict:
                    items = xr.values()
                    for k in xr:
                        b += len(k)
                else:
                    items = xr
                for c in items:
                    cr = c.repr
                    ct = type(cr)
                    if (ct is list or ct is dict) and not c.unknown or c.base is not None:
                        cn, cb, _ = sizes[id(c)]
                        n += cn
                        b += cb
                    else:
                        n += 1
                        if ct is str and not c.unknown:
                            b += len(cr)
                visited += len(xr)
            if x.base is not None and not (root and x is v):
                bn, bb, _ = sizes[id(x.base)]
                n += bn
                b += bb
            if n > max_nodes or b > max_bytes:
                at = getattr(x, "defn", None) or expr
                if n > max_nodes:
                    raise LimitExceeded(f"evaluation exceeds the limit of {max_nodes} values in one value", at)
                raise LimitExceeded(f"evaluation exceeds the limit of {_mb(max_bytes)} of text in one value", at)
            if root and x is v:
                self.step(visited, expr)
                return n, b  # the root's own size (without its base) is not remembered
            sizes[xid] = (n, b, x)
        self.step(visited, expr)
        hit = sizes[id(v)]
        return hit[0], hit[1]

    def expand(self, v: "Value", expr: "Expr | None" = None) -> tuple[int, int]:
        """About to expand ``v`` (walk it, copy it, print it): check its size and charge the
        walk as work."""
        n, b = self.measure(v, expr)
        if n > 1:
            self.step(n, expr)
        return n, b


def count_plain(data: Any, limit: int) -> int:
    """The number of nodes of plain JSON data, counting no further than ``limit + 1``."""
    n = 0
    stack = [data]
    while stack and n <= limit:
        x = stack.pop()
        n += 1
        t = type(x)
        if t is list:
            stack.extend(x)
        elif t is dict:
            stack.extend(x.values())
    return n


def limit_diagnostic(e: LimitExceeded) -> LimitDiagnostic:
    from .diagnostics import Severity

    x = e.expr
    return LimitDiagnostic(Severity.ERROR, e.summary, x.range if x is not None else None, x.path if x is not None else "")
