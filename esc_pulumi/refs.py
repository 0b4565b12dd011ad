"""Environment references (``env``, ``project/env``, with ``@<revision>`` or ``@<tag>``) and the
rules for ESC names: the one implementation that every place parsing a name uses.

The rules are those of the ESC service (and of ``esc-pulumi serve``): a project, environment or
tag name is 1 to 100 of ``A-Z a-z 0-9 - _ .``; ``.`` and ``..`` are never names (they would be
path steps in a ``file://`` store and in the REST API's URLs), nor are ``yaml`` (a project or an
environment: ``/environments/<org>/yaml/open`` is the anonymous open) and ``open`` (an
environment: ``.../<project>/<env>/open``). An organisation name starts with a letter or digit.

Example::

    EnvironmentRef.parse("myproj/dev@stable")   # EnvironmentRef('myproj', 'dev', 'stable')
    EnvironmentRef.parse("../outside")          # InvalidReference: project name '..' is reserved
    name_problem("environment", "a b")          # "invalid environment name 'a b': use 1 to 100 ..."
"""
from __future__ import annotations

import re
from typing import Literal

from .errors import InvalidReference
from .esc._fast import Record

__all__ = [
    "DEFAULT_PROJECT",
    "MAX_NAME_LENGTH",
    "RESERVED_ENVIRONMENT_NAMES",
    "RESERVED_PROJECT_NAMES",
    "EnvironmentRef",
    "check_name",
    "name_problem",
]

DEFAULT_PROJECT = "default"
MAX_NAME_LENGTH = 100
# Reserved because they are path steps ('.', '..') or words of the REST API's URLs.
RESERVED_PROJECT_NAMES = frozenset({".", "..", "yaml"})
RESERVED_ENVIRONMENT_NAMES = frozenset({".", "..", "open", "yaml"})
# Tags and revisions are never path steps of their own (a pinned file is '<env>@<tag>.yaml'),
# but '.' and '..' are refused all the same: no name anywhere is a path step.
_RESERVED_TAG_NAMES = frozenset({".", ".."})

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,%d}\Z" % MAX_NAME_LENGTH)
_ORGANIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,%d}\Z" % (MAX_NAME_LENGTH - 1))

NameKind = Literal["organization", "project", "environment", "tag"]
_RESERVED: dict[str, frozenset[str]] = {
    "organization": frozenset(),
    "project": RESERVED_PROJECT_NAMES,
    "environment": RESERVED_ENVIRONMENT_NAMES,
    "tag": _RESERVED_TAG_NAMES,
}


def name_problem(kind: NameKind, name: object) -> str | None:
    """What is wrong with ``name`` as a ``kind`` name, as a message naming it; ``None`` if it is
    a valid name. The server answers 400 with this message; :func:`check_name` raises it."""
    pattern = _ORGANIZATION if kind == "organization" else _NAME
    if not isinstance(name, str) or not pattern.match(name):
        first = "a letter or digit, then " if kind == "organization" else ""
        return (
            f"invalid {kind} name {name!r}: use {first}1 to {MAX_NAME_LENGTH} letters, digits, "
            "'-', '_' and '.'"
        )
    if name in _RESERVED[kind]:
        return f"invalid {kind} name {name!r}: {name!r} is reserved"
    return None


def check_name(kind: NameKind, name: object) -> str:
    """``name`` when it is a valid ``kind`` name, else :class:`InvalidReference` naming it."""
    problem = name_problem(kind, name)
    if problem is not None:
        raise InvalidReference(problem)
    return name  # type: ignore[return-value]


class EnvironmentRef(Record):
    """A parsed reference. ``version`` is a revision number (as text) or a tag, or ``None``.

    Example::

        EnvironmentRef.parse("myproj/dev@stable")   # EnvironmentRef('myproj', 'dev', 'stable')
        str(EnvironmentRef.parse("dev"))             # 'default/dev'
    """

    __slots__ = ("project", "name", "version")
    _defaults = {"version": None}
    project: str
    name: str
    version: str | None

    @classmethod
    def parse(cls, text: str) -> "EnvironmentRef":
        """Parse ``text``; :class:`InvalidReference` naming the reference and the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidReference(f"invalid environment reference {text!r}: expected 'env' or 'project/env'")
        body, at, version = text.strip().partition("@")
        if at and not version:
            raise InvalidReference(f"invalid environment reference {text!r}: nothing after '@'")
        parts = body.split("/")
        if len(parts) == 1:
            project, name = DEFAULT_PROJECT, parts[0]
        elif len(parts) == 2:
            project, name = parts
        else:
            raise InvalidReference(
                f"invalid environment reference {text!r}: use 'env' or 'project/env' "
                "(the organisation comes from the stack, not the reference)"
            )
        checks: list[tuple[NameKind, str]] = [("project", project), ("environment", name)]
        if at:
            checks.append(("tag", version))
        for kind, value in checks:
            problem = name_problem(kind, value)
            if problem is not None:
                # "invalid environment reference '../x': invalid project name '..': ... reserved"
                raise InvalidReference(f"invalid environment reference {text!r}: {problem}")
        return cls(project, name, version or None)

    @property
    def is_revision(self) -> bool:
        return self.version is not None and self.version.isdigit()

    def __str__(self) -> str:
        return f"{self.project}/{self.name}" + (f"@{self.version}" if self.version else "")
