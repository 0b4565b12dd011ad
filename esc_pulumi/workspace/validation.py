"""The project's typed config declarations, checked as the Pulumi CLI checks them.

Before ``up``/``preview``/``refresh``/``destroy``/``import``/``watch`` the Pulumi CLI validates
the stack's config against the ``config:`` declarations of ``Pulumi.yaml``
(``spec/pulumi-integration.md``; pulumi/pulumi ``sdk/go/common/workspace``), and
``--skip-config-validation`` turns it off. Three rules, in the CLI's words:

- a declared key with no value and no ``default``/``value``:
  ``Stack 'dev' is missing configuration value 'replicas'`` (all of them in one message, sorted,
  ``values 'a' and 'b'``, ``values 'a', 'b', and 'c'``);
- a value of the wrong type:
  ``Stack 'dev' with configuration key 'tags' must be of type 'array<string>'``;
- ``secret: true`` with a plain value:
  ``Stack 'dev' with configuration key 'dbPassword' must be encrypted as it's secret``.

Keys are printed as the CLI prints them, the way they are declared in ``Pulumi.yaml``: a
project key as ``replicas`` (not ``myproj:replicas``), another namespace's as ``aws:region``.
That is also what reads best: it is the text to search for in ``Pulumi.yaml``.

Decisions where the value model differs from the CLI's (each one tested):

- Values are typed data (yaml.v3 types for the stack and project files, ESC's for
  environments). ``integer`` accepts an int (not a bool), or a string the CLI's
  ``strconv.Atoi`` accepts (``"3"``, what older stack files hold); a float never, even an
  integral one: YAML ``3.0`` is a float64 to yaml.v3 and the CLI's typed check for ``integer``
  takes integers only, so ``replicas: 3.0`` is an error (write ``3``). ``boolean`` accepts a
  bool or the strings ``"true"``/``"false"``; ``string`` a string only (quote a number meant as
  text); ``array`` a list whose items all match ``items``; ``object`` a mapping.
- A declaration without ``type`` but with a ``default`` gets the type of its default
  (``string``, ``integer``, ``boolean``, ``array`` with the items' common type, ``object``);
  a float or null default infers nothing, so such a key is not type-checked.
- Project defaults are not checked against the stack (the CLI does not either): the default's
  own type is checked once, as a declaration problem.
- A ``{secure: ...}`` stack value counts as a present secret of unknown type (only the Pulumi
  CLI can decrypt it): the secret rule holds, its type is not checked. A value known only as
  text (``typed=False``: what the CLI delivered in ``PULUMI_CONFIG``, which the CLI itself has
  already validated, or a value unknown in check mode) is not type-checked either: re-reading
  the CLI's text could only disagree with the CLI. An unknown value (check mode, provider
  outputs) skips the secret rule too: its secrecy is not known yet.
- Every problem is reported, not only the first (the CLI stops at the first wrong value).
- A secret value never appears in a message: messages hold stack names, keys and type names.

Example::

    project = read_project(Path("Pulumi.yaml"))
    problems = validate(project, "dev", compute_config(plan, opened).entries)
    raise_for(problems, HINT_LOAD)
    # ConfigurationError: Stack 'dev' is missing configuration value 'replicas' (...)
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..esc._fast import Record
from ..errors import ConfigurationError
from .mapping import SOURCE_DEFAULT, SOURCE_STACK, UNKNOWN_TEXT, ConfigEntry
from .project import Project

__all__ = [
    "ConfigType",
    "ConfigDeclaration",
    "ConfigProblem",
    "ERROR",
    "WARNING",
    "HINT_CLI",
    "HINT_LOAD",
    "SOURCE_PROJECT",
    "read_declarations",
    "validate",
    "raise_for",
    "diy_preflight",
    "esc_only_keys",
    "diy_warning",
    "state_backend",
    "is_diy_backend",
]

ERROR = "error"
WARNING = "warning"
# Where a declaration problem is: the project file (ConfigProblem.source).
SOURCE_PROJECT = "project file"

# The opt-out, in each interface's words (raise_for's ``hint``).
HINT_LOAD = "to skip these checks, pass esc_pulumi.load(validate_config=False)"
HINT_CLI = "to skip these checks, pass --skip-config-validation"

TYPES = ("string", "integer", "boolean", "array", "object")
# The state backends the Pulumi CLI calls DIY ("self-managed"): no ESC there.
DIY_SCHEMES = ("file://", "s3://", "azblob://", "gs://")

# strconv.Atoi: an optional sign and decimal digits, within int64 (no "0x", no "_").
_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class ConfigType(Record):
    """A declared type: ``name`` is one of :data:`TYPES`; ``items`` the element type of an
    ``array`` (``None`` when the array's items are unknown: an array inferred from an empty
    default).

    Example::

        t = ConfigType("array", ConfigType("integer"))
        t.full_name          # 'array<integer>'
        t.accepts([1, "2"])  # True ("2" is what strconv.Atoi accepts)
    """

    __slots__ = ("name", "items")
    _defaults = {"items": None}
    name: str
    items: "ConfigType | None"

    @property
    def full_name(self) -> str:
        """The CLI's ``InferFullTypeName``: ``array<items>``, recursively."""
        names: list[str] = []
        t: ConfigType | None = self
        while t is not None:  # a loop, not recursion: items may nest deeply
            names.append(t.name)
            t = t.items if t.name == "array" else None
        opened = "".join(f"{n}<" for n in names[:-1])
        return opened + names[-1] + ">" * (len(names) - 1)

    def accepts(self, data: Any) -> bool:
        """Whether typed ``data`` is a value of this type (see the module's decisions)."""
        # An explicit stack instead of recursion: arrays of arrays may nest deeply.
        pending: list[tuple[ConfigType, Any]] = [(self, data)]
        while pending:
            t, v = pending.pop()
            if t.name == "string":
                ok = isinstance(v, str)
            elif t.name == "integer":
                ok = _is_integer(v)
            elif t.name == "boolean":
                ok = isinstance(v, bool) or v in ("true", "false")
            elif t.name == "object":
                ok = isinstance(v, dict)
            elif t.name == "array":
                ok = isinstance(v, list)
                if ok and t.items is not None:
                    pending.extend((t.items, item) for item in v)
            else:
                ok = False
            if not ok:
                return False
        return True


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):  # a bool is an int to Python, never to the CLI
        return False
    if isinstance(v, int):
        return _INT64_MIN <= v <= _INT64_MAX
    if isinstance(v, str) and _ATOI.match(v):
        return _INT64_MIN <= int(v) <= _INT64_MAX
    return False


class ConfigDeclaration(Record):
    """One schema-form entry of ``Pulumi.yaml``'s ``config:``.

    ``key`` is the full config key (``myproj:replicas``), ``name`` the key as the CLI prints it
    (``replicas``). ``type`` is ``None`` when nothing is to be type-checked (no ``type`` and no
    default to infer one from); ``inferred`` says the type came from the default.
    ``has_default``: a non-null ``default`` or ``value`` (the CLI's ``Default != nil``).

    Example::

        d = ConfigDeclaration.parse("myproj:tags", {"type": "array", "items": {"type": "string"}}, "myproj")
        (d.name, d.type.full_name, d.has_default)    # ('tags', 'array<string>', False)
    """

    __slots__ = ("key", "name", "type", "secret", "has_default", "inferred", "description")
    _defaults = {"type": None, "secret": False, "has_default": False, "inferred": False, "description": ""}
    key: str
    name: str
    type: ConfigType | None
    secret: bool
    has_default: bool
    inferred: bool
    description: str

    @classmethod
    def parse(
        cls, key: str, spec: Mapping[str, Any], project: str, file_name: str = "Pulumi.yaml"
    ) -> "ConfigDeclaration":
        """Parse one raw declaration (``Project.declarations[key]``); a declaration the CLI
        would refuse raises :class:`ConfigurationError` naming the key and ``file_name``."""
        name = display_name(key, project)
        where = f"config key '{name}' in {file_name}"
        secret = spec.get("secret", False)
        if not isinstance(secret, bool):
            raise ConfigurationError(f"{where}: 'secret' must be true or false")
        default = spec.get("default")
        value = spec.get("value")
        has_default = default is not None or value is not None
        description = spec.get("description") or ""
        if "type" in spec:
            declared = _parse_type(spec.get("type"), spec.get("items"), where)
            if default is not None and not declared.accepts(default):
                # The CLI refuses such a project when it loads it (the words are its own).
                raise ConfigurationError(
                    f"The default value specified for configuration key '{name}' is not of the "
                    f"expected type '{declared.full_name}'"
                )
            return cls(key, name, declared, secret, has_default, False, str(description))
        inferred = infer_type(default)
        return cls(key, name, inferred, secret, has_default, inferred is not None, str(description))


def _parse_type(name: Any, items: Any, where: str) -> ConfigType:
    """``type:`` (and ``items:``, nested) of a declaration; errors name the key."""
    # Built from the innermost items outwards, without recursion.
    chain: list[str] = []
    label = where
    while True:
        if not isinstance(name, str) or name not in TYPES:
            shown = repr(name) if not isinstance(name, str) else f"'{name}'"
            raise ConfigurationError(
                f"{label} has an unknown type {shown}: use one of string, integer, boolean, "
                "array (with items: {type: ...}) or object"
            )
        chain.append(name)
        if name != "array":
            break
        if items is None:
            raise ConfigurationError(
                f"{label} declares an array but does not say the type of its elements: add "
                "items: {type: string} (or integer, boolean, array, object)"
            )
        if not isinstance(items, dict) or "type" not in items:
            raise ConfigurationError(f"{label}: 'items' must be a mapping with a 'type'")
        label = f"{label} (its items)"
        name, items = items.get("type"), items.get("items")
    result: ConfigType | None = None
    for n in reversed(chain):
        result = ConfigType(n, result if n == "array" else None)
    assert result is not None
    return result


def infer_type(default: Any) -> ConfigType | None:
    """The type a declaration without ``type`` gets from its default, or ``None``.

    Example::

        infer_type(["a", "b"]).full_name    # 'array<string>'
        infer_type(0.5)                     # None: a float is no declared type
    """
    if isinstance(default, bool):
        return ConfigType("boolean")
    if isinstance(default, int):
        return ConfigType("integer")
    if isinstance(default, str):
        return ConfigType("string")
    if isinstance(default, dict):
        return ConfigType("object")
    if isinstance(default, list):
        # The items' type only when every element has the same scalar type: a mixed or empty
        # default says nothing about what the elements must be.
        kinds = {infer_type(x) for x in default if not isinstance(x, (list, dict))}
        scalars = all(not isinstance(x, (list, dict)) for x in default)
        if default and scalars and len(kinds) == 1 and None not in kinds:
            return ConfigType("array", kinds.pop())
        return ConfigType("array")
    return None


def display_name(key: str, project: str) -> str:
    """A full key as the CLI prints it: the project's own keys without the namespace."""
    prefix = f"{project}:"
    return key[len(prefix):] if key.startswith(prefix) else key


class ConfigProblem(Record):
    """One validation finding.

    ``key`` is the full config key (``""`` for the missing-values message, whose keys are in
    ``keys``); ``message`` is the Pulumi CLI's text (ours for declaration problems and the DIY
    warning); ``severity`` :data:`ERROR` or :data:`WARNING`; ``source`` where the offending
    value or declaration is: ``"stack file"``, ``"environment <name>"``, ``"project file"``, or
    ``""`` (missing values); ``hint`` what to do, when the message does not say it.

    Example::

        p = ConfigProblem("myproj:n", "Stack 'dev' with configuration key 'n' must be of type 'integer'",
                          source="environment myproj/app")
        p.describe()   # "Stack 'dev' ... 'integer' (from environment myproj/app)"
    """

    __slots__ = ("key", "message", "severity", "source", "hint", "keys")
    _defaults = {"severity": ERROR, "source": "", "hint": "", "keys": ()}
    key: str
    message: str
    severity: str
    source: str
    hint: str
    keys: tuple[str, ...]

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def describe(self) -> str:
        """The message with where the value comes from and the hint, for one-line reports."""
        extra = []
        if self.source == SOURCE_STACK:
            extra.append("from the stack file")
        elif self.source and self.source != SOURCE_PROJECT:  # declaration messages name the file
            extra.append(f"from {self.source}")
        if self.hint:
            extra.append(self.hint)
        return self.message + (f" ({'; '.join(extra)})" if extra else "")


def read_declarations(project: Project) -> tuple[dict[str, ConfigDeclaration], list[ConfigProblem]]:
    """The project's declarations by full key, and a problem for each one the CLI would refuse
    (an unknown type, an array without ``items``, a default of the wrong type)."""
    out: dict[str, ConfigDeclaration] = {}
    problems: list[ConfigProblem] = []
    for key in sorted(project.declarations):
        try:
            out[key] = ConfigDeclaration.parse(
                key, project.declarations[key], project.name, project.path.name
            )
        except ConfigurationError as e:
            decl_error = ConfigProblem(key, str(e), ERROR, SOURCE_PROJECT, keys=(key,))
            problems.append(decl_error)
    return out, problems


def _is_esc(entry: ConfigEntry) -> bool:
    return entry.source.startswith("environment")


def _is_unknown(entry: ConfigEntry) -> bool:
    # compute_config gives an unknown (check mode) value no data and "[unknown]" in its text.
    return not entry.typed and not entry.encrypted and UNKNOWN_TEXT in entry.value


def validate(
    project: Project,
    stack: str,
    entries: Mapping[str, ConfigEntry],
    *,
    supplied_by_esc: bool = True,
) -> list[ConfigProblem]:
    """Check ``entries`` (:attr:`ConfigResult.entries`: full key → entry) against the project's
    declarations, as the Pulumi CLI does before an update.

    ``supplied_by_esc``: whether values from ESC environments count. ``True`` is the config the
    program gets (``load()``, ``esc-pulumi config``, a Pulumi Cloud stack); ``False`` is what the
    CLI sees on a DIY backend, where it validates before the program runs, on the stack file
    and the project defaults alone (:func:`diy_preflight`).

    Returns declaration problems, then per-key problems in key order, then the one
    missing-values problem.

    Example::

        validate(project, "dev", {})
        # [ConfigProblem('', "Stack 'dev' is missing configuration value 'replicas'", ...)]
    """
    declarations, problems = read_declarations(project)
    missing: list[ConfigDeclaration] = []
    for key, decl in declarations.items():
        entry = entries.get(key)
        if entry is not None and not supplied_by_esc and _is_esc(entry):
            entry = None  # the CLI never sees it; a project default applies, if any
        if entry is None or entry.source == SOURCE_DEFAULT:
            # Where only the project supplies a value the CLI checks nothing (the default's
            # type was checked with the declaration); `default: null` is no default.
            if not decl.has_default:
                missing.append(decl)
            continue
        problem = _check_entry(decl, entry, stack)
        if problem is not None:
            problems.append(problem)
    if missing:
        problems.append(_missing_problem(stack, missing))
    return problems


def _check_entry(decl: ConfigDeclaration, entry: ConfigEntry, stack: str) -> ConfigProblem | None:
    """The CLI's per-value check: the secret rule first, then the type (one problem per key)."""
    if _is_unknown(entry):
        return None
    if decl.secret and not entry.secret:
        hint = (
            "make it a secret in the environment: fn::secret"
            if _is_esc(entry)
            else f"set it with: pulumi config set --secret {decl.name}"
        )
        return ConfigProblem(
            decl.key,
            f"Stack '{stack}' with configuration key '{decl.name}' must be encrypted as it's secret",
            ERROR,
            entry.source,
            hint,
            (decl.key,),
        )
    if decl.type is None or entry.encrypted or not entry.typed:
        return None
    if decl.type.accepts(entry.data):
        return None
    return ConfigProblem(
        decl.key,
        f"Stack '{stack}' with configuration key '{decl.name}' must be of type '{decl.type.full_name}'",
        ERROR,
        entry.source,
        keys=(decl.key,),
    )


def _oxford(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b, and c`` (the CLI joins the missing keys this way)."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def _missing_problem(stack: str, missing: Iterable[ConfigDeclaration]) -> ConfigProblem:
    decls = sorted(missing, key=lambda d: d.name)
    names = [f"'{d.name}'" for d in decls]
    one = len(names) == 1
    noun = "value" if one else "values"
    hint = (
        f"set {'it' if one else 'them'} in the stack file or in an environment's pulumiConfig, "
        f"or give {'its declaration a default' if one else 'their declarations defaults'}"
    )
    message = f"Stack '{stack}' is missing configuration {noun} {_oxford(names)}"
    return ConfigProblem("", message, ERROR, "", hint, tuple(d.key for d in decls))


def raise_for(problems: Iterable[ConfigProblem], hint: str) -> None:
    """Raise :class:`ConfigurationError` listing every error of ``problems`` (one per line,
    with where each value comes from), ending with ``hint``, the opt-out in the caller's
    words (:data:`HINT_LOAD`, :data:`HINT_CLI`). Warnings raise nothing.

    Example::

        raise_for(validate(project, "dev", entries), HINT_CLI)
    """
    errors = [p for p in problems if p.is_error]
    if errors:
        raise ConfigurationError("\n".join([p.describe() for p in errors] + [hint]))


def diy_preflight(project: Project, stack: str, entries: Mapping[str, ConfigEntry]) -> list[ConfigProblem]:
    """The problems the Pulumi CLI itself raises on a DIY backend, where it validates before the
    program runs on the stack file and the project defaults alone (ESC values, from the merged
    ``entries`` or not, are left out).

    Example::

        diy_preflight(project, "dev", result.entries)
        # [ConfigProblem('', "Stack 'dev' is missing configuration value 'replicas'", ...)]
    """
    return validate(project, stack, entries, supplied_by_esc=False)


def esc_only_keys(project: Project, entries: Mapping[str, ConfigEntry]) -> list[str]:
    """The declared keys without a default whose only value comes from ESC (sorted full keys):
    plain ``pulumi up`` on a DIY backend stops on them before the program can load ESC."""
    declarations, _ = read_declarations(project)
    return [
        key
        for key, decl in declarations.items()
        if not decl.has_default and key in entries and _is_esc(entries[key])
    ]


def diy_warning(
    project: Project, stack: str, entries: Mapping[str, ConfigEntry], *, backend: str = ""
) -> ConfigProblem | None:
    """A warning for the keys of :func:`esc_only_keys` on a DIY backend (``backend``: its URL,
    shown), quoting the error ``pulumi up`` will stop with and the ways around it; ``None``
    when there are none.

    Example::

        diy_warning(project, "dev", result.entries, backend="file:///state").message
        # "only ESC supplies 'replicas' (declared in Pulumi.yaml without a default), but on ..."
    """
    keys = esc_only_keys(project, entries)
    if not keys:
        return None
    names = sorted(f"'{display_name(k, project.name)}'" for k in keys)
    one = len(keys) == 1
    # The CLI's own message on the stack file alone: it names the keys missing everywhere too.
    missing = [p for p in diy_preflight(project, stack, entries) if p.keys and not p.key]
    cli_error = missing[0].message if missing else ""
    where = f"the DIY backend {backend}" if backend else "a DIY backend"
    file = project.path.name
    message = (
        f"only ESC supplies {_oxford(names)} (declared in {file} without a default), but on {where} "
        "`pulumi up` validates the config before the program runs, on the stack file alone, so it "
        f"stops with: {cli_error}. Fix: give {'the declaration' if one else 'the declarations'} a "
        "`default:` (the ESC value still wins when the program calls esc_pulumi.load()), remove "
        f"{'it' if one else 'them'} from {file}, or run `esc-pulumi run -- pulumi up`, which writes "
        "the ESC values into the config file the CLI validates"
    )
    return ConfigProblem("", message, WARNING, SOURCE_PROJECT, keys=tuple(keys))


def state_backend(
    project_file: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """The Pulumi state backend's URL and where it came from, as the CLI picks it:
    ``PULUMI_BACKEND_URL``, else the project's ``backend.url``, else the credentials file's
    ``current``; ``(None, "")`` when nothing says.

    Example::

        state_backend(None, {"PULUMI_BACKEND_URL": "s3://bucket"})   # ('s3://bucket', 'PULUMI_BACKEND_URL')
    """
    from ..backends.credentials import credentials_path
    from .project import load_document

    env = environ if environ is not None else os.environ
    if env.get("PULUMI_BACKEND_URL"):
        return env["PULUMI_BACKEND_URL"], "PULUMI_BACKEND_URL"
    if project_file is not None:
        try:
            doc = load_document(project_file)
        except ConfigurationError:
            doc = None  # reported by whoever reads the project for real
        backend = doc.get("backend") if isinstance(doc, dict) else None
        url = backend.get("url") if isinstance(backend, dict) else None
        if isinstance(url, str) and url:
            return url, f"{project_file.name} backend.url"
    path = credentials_path(env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    current = data.get("current") if isinstance(data, dict) else None
    if isinstance(current, str) and current:
        return current, str(path)
    return None, ""


def is_diy_backend(url: str) -> bool:
    """``file://``, ``s3://``, ``azblob://``, ``gs://``: a state backend without ESC."""
    return url.startswith(DIY_SCHEMES)
