"""Projection of an opened environment onto a process: ``environmentVariables`` and ``files``.

ESC projects the scalar entries of the two top-level objects ``environmentVariables`` and
``files`` (section 9 of the language spec): bool → ``true``/``false``, number → its Go text,
null → ``""``, strings as they are; objects and arrays are ignored. Secret-ness travels with
each entry so that callers can mask or redact.

Example::

    from esc_pulumi.esc.values import from_plain
    p = project(from_plain({"environmentVariables": {"PORT": 8080, "DEBUG": True}}))
    p.variables["PORT"].text    # '8080'
"""
from __future__ import annotations


from ..esc._fast import Record
from ..errors import EscError
from ..esc.values import Value, scalar_text

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "FILES",
    "ProjectedValue",
    "Projection",
    "project",
    "project_section",
    "secret_texts",
]

ENVIRONMENT_VARIABLES = "environmentVariables"
FILES = "files"


class ProjectedValue(Record):
    """The text of one projected entry and whether it is secret.

    The repr never shows the text of a secret (it may end up in a log or a traceback).
    """

    __slots__ = ("text", "secret")
    _defaults = {"secret": False}
    text: str
    secret: bool

    def __repr__(self) -> str:
        shown = "[secret]" if self.secret else repr(self.text)
        return f"ProjectedValue({shown}, secret={self.secret})"


class Projection(Record):
    """The environment variables and the files (name → content) of an opened environment."""

    __slots__ = ("variables", "files")
    variables: dict[str, ProjectedValue]
    files: dict[str, ProjectedValue]

    @property
    def secrets(self) -> list[str]:
        """The texts of the secret entries (variables and file contents)."""
        return [v.text for v in (*self.variables.values(), *self.files.values()) if v.secret]


def project_section(value: Value, section: str, *, allow_unknown_secrets: bool = False) -> dict[str, ProjectedValue]:
    """The projected scalar entries of the top-level object ``section`` of ``value``.

    An unknown entry cannot be projected: :class:`EscError` naming it, except for a secret one
    when ``allow_unknown_secrets`` (redacted displays show it as ``[secret]`` anyway; its text
    is then ``""``).
    """
    root = value.repr if isinstance(value.repr, dict) and not value.unknown else {}
    holder = root.get(section)
    if holder is None or holder.unknown or not isinstance(holder.repr, dict):
        # An unknown or non-object section projects nothing, as in ESC.
        return {}
    out: dict[str, ProjectedValue] = {}
    for name, v in holder.repr.items():
        if v.unknown:
            if allow_unknown_secrets and v.secret:
                out[name] = ProjectedValue("", True)
                continue
            raise EscError(f"{section}.{name} is unknown (a value that could not be computed): cannot project it")
        if isinstance(v.repr, (dict, list)):
            continue  # objects and arrays are not projected
        out[name] = ProjectedValue(scalar_text(v.repr), bool(v.secret))
    return out


def project(value: Value) -> Projection:
    """The projection of an opened environment's root value.

    Raises :class:`EscError` naming the entry when an entry to project is unknown.
    """
    return Projection(
        variables=project_section(value, ENVIRONMENT_VARIABLES),
        files=project_section(value, FILES),
    )


def secret_texts(value: Value) -> list[str]:
    """The text of every secret leaf of ``value`` (leaves under a secret container included),
    longest first, without duplicates: what a masking writer must hide."""
    found: set[str] = set()
    stack: list[tuple[Value, bool]] = [(value, False)]
    while stack:
        v, inherited = stack.pop()
        secret = inherited or bool(v.secret)
        if v.unknown:
            continue
        r = v.repr
        if isinstance(r, dict):
            stack.extend((c, secret) for c in r.values())
        elif isinstance(r, list):
            stack.extend((c, secret) for c in r)
        elif secret:
            text = scalar_text(r)
            if text:
                found.add(text)
    return sorted(found, key=lambda s: (-len(s), s))
