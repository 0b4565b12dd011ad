"""Environment references: ``env``, ``project/env``, with ``@<revision>`` or ``@<tag>``."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_PROJECT = "default"
_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


@dataclass(frozen=True, slots=True)
class EnvironmentRef:
    """A parsed reference. ``version`` is a revision number (as text) or a tag, or ``None``.

    Example::

        EnvironmentRef.parse("myproj/dev@stable")   # EnvironmentRef('myproj', 'dev', 'stable')
        str(EnvironmentRef.parse("dev"))             # 'default/dev'
    """

    project: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> "EnvironmentRef":
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
        for what, value in (("project", project), ("environment", name)):
            if not _NAME.match(value):
                raise InvalidReference(
                    f"invalid environment reference {text!r}: {what} name {value!r} may hold only "
                    "letters, digits, '-', '_' and '.'"
                )
        if version is not None and at and not _NAME.match(version):
            raise InvalidReference(f"invalid environment reference {text!r}: bad version {version!r}")
        return cls(project, name, version or None)

    @property
    def is_revision(self) -> bool:
        return self.version is not None and self.version.isdigit()

    def __str__(self) -> str:
        return f"{self.project}/{self.name}" + (f"@{self.version}" if self.version else "")
