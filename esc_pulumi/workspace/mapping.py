"""Opened ``pulumiConfig`` → Pulumi config strings and secret keys, merged with the stack file
and the project defaults exactly as the Pulumi CLI does (``spec/pulumi-integration.md``):

- top-level keys only; ``key`` → ``<project>:key``, ``ns:key`` kept, anything else an error;
- strings as is, ``true``/``false``, numbers as text, ``null`` → ``"null"``, objects and arrays
  as compact JSON with sorted keys, unknowns (check mode) as ``"[unknown]"``;
- a key is secret if any leaf of its value is (stricter than the CLI, which drops secret
  non-string leaves);
- precedence: stack file ``config:`` > ESC > ``Pulumi.yaml`` defaults; a stack object and an ESC
  object for the same key deep-merge, the stack winning per key, arrays replaced.

Example::

    result = compute_config(plan, opened)
    result.entries["myproj:dbPassword"]   # ConfigEntry('myproj:dbPassword', [secret], from environment myproj/dev)
    result.secret_keys                    # frozenset({'myproj:dbPassword'})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..errors import MappingError
from .project import KEY_FORMS, contains_secure, parse_key

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..esc import Value
    from .plan import LoadPlan

SOURCE_STACK = "stack file"
SOURCE_DEFAULT = "project default"
SECRET_TEXT = "[secret]"
UNKNOWN_TEXT = "[unknown]"


@dataclass(frozen=True)
class ConfigEntry:
    """One config key as the program will see it. ``source`` is ``"stack file"``,
    ``"environment <name>"`` (the environment that defined the value) or ``"project default"``.
    ``encrypted``: a ``{secure: ...}`` stack value that only the Pulumi CLI can decrypt (its
    ``value`` is then a placeholder, never applied). ``data`` is the typed value (dicts, lists,
    str, int, float, bool, None — what the project's typed declarations are checked against)
    when ``typed``; entries known only as text (``PULUMI_CONFIG``, encrypted or unknown values)
    are not typed. ``repr`` masks secrets.
    """

    key: str
    value: str
    secret: bool
    source: str
    encrypted: bool = False
    data: Any = field(default=None, compare=False)
    typed: bool = False

    def __repr__(self) -> str:
        shown = SECRET_TEXT if self.secret else repr(self.value)
        return f"ConfigEntry({self.key!r}, {shown}, from {self.source})"


@dataclass(frozen=True)
class ConfigResult:
    """The merged config: ``entries`` by full key, the secret keys, and the keys whose ESC
    value the stack file overrode (wholly, or per key for objects)."""

    entries: dict[str, ConfigEntry] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    overridden: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        """``key → string`` of every entry that can be applied (not ``encrypted``)."""
        return {k: e.value for k, e in self.entries.items() if not e.encrypted}

    def __repr__(self) -> str:
        return f"ConfigResult({list(self.entries.values())!r}, overridden={self.overridden!r})"


def value_text(v: "Value") -> str:
    """The config string of a value (see the module rules)."""
    from ..esc.values import format_number, go_json, to_plain

    if v.unknown:
        return UNKNOWN_TEXT
    r = v.repr
    if isinstance(r, str):
        return r
    if isinstance(r, bool):
        return "true" if r else "false"
    if r is None:
        return "null"
    if isinstance(r, (int, float)):
        return format_number(r)
    return go_json(to_plain(v))


def _leaves_secret(v: "Value") -> bool:
    from ..esc.values import contains_secret

    return contains_secret(v)


def _deep_merge(base: "Value", over: "Value") -> "Value":
    """``over`` laid on ``base``: objects merge key by key (``over`` wins), all else replaces."""
    from ..esc import Value

    if (
        base.unknown
        or over.unknown
        or not isinstance(base.repr, dict)
        or not isinstance(over.repr, dict)
    ):
        return over
    merged = dict(base.repr)
    for k, c in over.repr.items():
        merged[k] = _deep_merge(merged[k], c) if k in merged else c
    return Value(merged, over.secret or base.secret, defn=over.defn)


def _plain_value(data: Any) -> "Value":
    """A stack/project config value (plain YAML data) as a Value; ``{secure:}`` → secret."""
    from ..esc import Value
    from ..esc.values import from_plain

    if isinstance(data, dict) and len(data) == 1 and "secure" in data:
        return Value(SECRET_TEXT, secret=True)
    if isinstance(data, dict):
        return Value({str(k): _plain_value(c) for k, c in data.items()})
    if isinstance(data, list):
        return Value([_plain_value(c) for c in data])
    if isinstance(data, (str, bool, int, float)) or data is None:
        return from_plain(data)
    return from_plain(str(data))  # dates and other YAML scalars: their text


def esc_values(
    opened: "OpenedEnvironment | None", project: str, warnings: list[str] | None = None
) -> dict[str, "Value"]:
    """The opened ``pulumiConfig`` by full config key (keys parsed as the CLI parses them).

    A key the CLI refuses, two keys naming one config key, or a ``pulumiConfig`` that is not an
    object is a :class:`MappingError` naming the environment; keys the CLI accepts in an odd
    form (``:k``, ``k:``) are kept and a warning is appended to ``warnings``.
    """
    if opened is None:
        return {}
    root = opened.value
    if root.unknown or not isinstance(root.repr, dict):
        return {}
    pc = root.repr.get("pulumiConfig")
    if pc is None or pc.unknown or pc.repr is None:
        return {}
    if not isinstance(pc.repr, dict):
        raise MappingError(f"{_source_of(pc, 'inline')}: pulumiConfig must be an object of config keys")
    out: dict[str, "Value"] = {}
    seen: dict[str, str] = {}
    for key, v in pc.repr.items():
        parsed = parse_key(key, project)
        if parsed is None:
            raise MappingError(
                f"{_source_of(v, 'inline')}: pulumiConfig key {key!r} is not a valid config key: {KEY_FORMS}"
            )
        full = parsed.full
        if full in seen:
            raise MappingError(
                f"{_source_of(v, 'inline')}: pulumiConfig keys {seen[full]!r} and {key!r} both mean "
                f"config key {full!r}: keep one of them"
            )
        if parsed.odd and warnings is not None:
            warnings.append(
                f"{_source_of(v, 'inline')}: pulumiConfig key {key!r} has {parsed.odd} "
                f"(config key {full!r}); the Pulumi CLI accepts it, but it is probably a mistake"
            )
        seen[full] = key
        out[full] = v
    return out


def _source_of(v: "Value", anonymous_label: str) -> str:
    from ..esc import ANONYMOUS

    defn = v.defn
    rng = getattr(defn, "range", None)
    env = getattr(rng, "environment", None)
    if not env:
        return "environment"
    if env == ANONYMOUS:
        return f"environment {anonymous_label}"
    return f"environment {env}"


def _entry(key: str, v: "Value", source: str) -> ConfigEntry:
    from ..esc.values import contains_unknown, to_plain

    typed = not contains_unknown(v)
    return ConfigEntry(
        key, value_text(v), _leaves_secret(v), source, data=to_plain(v) if typed else None, typed=typed
    )


def compute_config(plan: "LoadPlan", opened: "OpenedEnvironment | None") -> "ConfigResult":
    """Merge stack file, opened ``pulumiConfig`` and project defaults into config entries.

    Example::

        result = compute_config(plan, plan.backend.open(plan.composition, organization=plan.organization))
        result.values()["myproj:region"]    # 'eu-west-1'
    """
    anonymous = f"{plan.stack_file.name if plan.stack_file else 'stack file'} (inline)"
    entries: dict[str, ConfigEntry] = {}
    secret: set[str] = set()
    overridden: list[str] = []

    for key, raw in plan.project_defaults.items():
        v = _plain_value(raw)
        entries[key] = _entry(key, v, SOURCE_DEFAULT)

    warnings: list[str] = []
    from_esc = esc_values(opened, plan.project, warnings)
    for key, v in from_esc.items():
        entries[key] = _entry(key, v, _source_of(v, anonymous))

    for key, raw in plan.stack_config.items():
        if contains_secure(raw):
            # Only the CLI can decrypt it (and, under `pulumi up`, already did): keep it whole.
            entries[key] = ConfigEntry(key, SECRET_TEXT, True, SOURCE_STACK, encrypted=True)
            if key in from_esc:
                overridden.append(key)
            continue
        v = _plain_value(raw)
        if key in from_esc:
            overridden.append(key)
            v = _deep_merge(from_esc[key], v)
        entries[key] = _entry(key, v, SOURCE_STACK)

    for key, e in entries.items():
        if e.secret:
            secret.add(key)
    return ConfigResult(
        entries=dict(sorted(entries.items())),
        secret_keys=frozenset(secret),
        overridden=tuple(overridden),
    )


def entries_by_source(result: ConfigResult) -> Mapping[str, list[str]]:
    """Keys grouped by where they came from (for reports)."""
    out: dict[str, list[str]] = {}
    for key, e in result.entries.items():
        out.setdefault(e.source, []).append(key)
    return out
