"""Opened ``pulumiConfig`` → Pulumi config strings and secret keys, merged with the stack file
and the project defaults exactly as the Pulumi CLI does (``spec/pulumi-integration.md``):

- top-level keys only, parsed as ``pulumi config set`` parses them (``key`` → ``<project>:key``,
  ``ns:key``, ``ns:config:key`` → ``ns:key``; ``:k``/``k:`` kept with a warning), others an
  error naming the environment;
- values rendered by :mod:`.rendering` (the CLI's number text, nested ones too); unknowns
  (check mode) as ``"[unknown]"``;
- a key is secret if any leaf of its value is (stricter than the CLI, which drops secret
  non-string leaves);
- precedence: stack file ``config:`` > ESC > ``Pulumi.yaml`` defaults; a stack object (``{secure:}``
  leaves included) and an ESC object for the same key deep-merge, the stack winning per key;
- inside a run, what the CLI delivered (:class:`Delivered`) is the truth (see :func:`compute_config`).

Example::

    result = compute_config(plan, opened)
    result.entries["myproj:dbPassword"]   # ConfigEntry('myproj:dbPassword', [secret], from environment myproj/dev)
    result.secret_keys                    # frozenset({'myproj:dbPassword'})
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..esc._fast import Record
from ..errors import DecryptionError, MappingError
from .project import KEY_FORMS, contains_secure, parse_key

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import OpenedEnvironment
    from ..esc import Value
    from .plan import LoadPlan

SOURCE_STACK = "stack file"
SOURCE_DEFAULT = "project default"
SOURCE_CLI = "Pulumi CLI"  # delivered by the CLI, from neither file we read (e.g. --config-file)
from ..esc.values import SECRET_TEXT, UNKNOWN_TEXT  # the engine's placeholders, one spelling


class ConfigEntry(Record):
    """One config key as the program will see it. ``source`` is ``"stack file"``,
    ``"environment <name>"`` (the environment that defined the value) or ``"project default"``.
    ``encrypted``: a ``{secure: ...}`` stack value that only the Pulumi CLI can decrypt (its
    ``value`` is then a placeholder, never applied). ``data`` is the typed value (dicts, lists,
    str, int, float, bool, None — what the project's typed declarations are checked against)
    when ``typed``; entries known only as text (``PULUMI_CONFIG``, encrypted or unknown values)
    are not typed. ``repr`` masks secrets.
    """

    __slots__ = ("key", "value", "secret", "source", "encrypted", "data", "typed")
    _defaults = {"encrypted": False, "data": None, "typed": False}
    _uncompared = frozenset({"data"})
    key: str
    value: str
    secret: bool
    source: str
    encrypted: bool
    data: Any
    typed: bool

    def __repr__(self) -> str:
        shown = SECRET_TEXT if self.secret else repr(self.value)
        return f"ConfigEntry({self.key!r}, {shown}, from {self.source})"


class ConfigResult(Record):
    """The merged config: ``entries`` by full key, the secret keys, and the keys whose ESC
    value the stack file overrode (wholly, or per key for objects)."""

    __slots__ = ("entries", "secret_keys", "overridden", "warnings")
    _defaults = {"secret_keys": frozenset(), "overridden": (), "warnings": ()}
    _factories = {"entries": dict}
    entries: dict[str, ConfigEntry]
    secret_keys: frozenset[str]
    overridden: tuple[str, ...]
    warnings: tuple[str, ...]

    def values(self) -> dict[str, str]:
        """``key → string`` of every entry that can be applied (not ``encrypted``)."""
        return {k: e.value for k, e in self.entries.items() if not e.encrypted}

    def __repr__(self) -> str:
        return f"ConfigResult({list(self.entries.values())!r}, overridden={self.overridden!r})"


def value_text(v: "Value") -> str:
    """The config string of a value (see the module rules; numbers by the CLI's rule, nested
    ones too; unknown parts as ``"[unknown]"``)."""
    from ..esc.values import to_plain
    from .rendering import config_text

    if v.unknown:
        return UNKNOWN_TEXT
    r = v.repr
    return config_text(to_plain(v) if isinstance(r, (dict, list)) else r)


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


class _Undecrypted(str):
    """The placeholder of a ``{secure:}`` leaf that could not be decrypted here."""


def _plain_value(data: Any, decrypt: "Decrypt | None" = None, where: str = "") -> "Value":
    """A stack/project config value (typed YAML data) as a Value. A ``{secure: c}`` leaf is a
    secret string: ``decrypt(c)`` when a decrypter is given, else an undecrypted placeholder."""
    from ..esc import Value
    from ..esc.values import from_plain

    if isinstance(data, dict) and len(data) == 1 and "secure" in data:
        cipher = data["secure"]
        if decrypt is not None and isinstance(cipher, str):
            return Value(decrypt(cipher, where), secret=True)
        return Value(_Undecrypted(SECRET_TEXT), secret=True)
    if isinstance(data, dict):
        return Value({str(k): _plain_value(c, decrypt, where) for k, c in data.items()})
    if isinstance(data, list):
        return Value([_plain_value(c, decrypt, where) for c in data])
    return from_plain(data)


def _undecrypted(v: "Value") -> bool:
    from ..esc.values import walk

    return any(isinstance(x.repr, _Undecrypted) for x in walk(v))


def _delivered_value(text: str) -> "Value":
    """A value the CLI delivered as text, as a Value to merge ESC under: its JSON object when
    it is one (the CLI writes objects as JSON), else the text."""
    from ..esc import Value
    from ..esc.values import from_plain

    if text.startswith("{"):
        import json

        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return from_plain(data)
    return Value(text)


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


def _entry(key: str, v: "Value", source: str, secret: bool = False) -> ConfigEntry:
    from ..esc.values import contains_unknown, to_plain

    encrypted = _undecrypted(v)
    typed = not encrypted and not contains_unknown(v)
    return ConfigEntry(
        key,
        value_text(v),
        secret or _leaves_secret(v),
        source,
        encrypted=encrypted,
        data=to_plain(v) if typed else None,
        typed=typed,
    )


class Delivered(Record):
    """The config the Pulumi CLI delivered to this run (``PULUMI_CONFIG`` and
    ``PULUMI_CONFIG_SECRET_KEYS``): stack values, decrypted and rendered by the CLI, project
    defaults, and on Pulumi Cloud the ESC values the CLI applied itself. ``repr`` shows keys only."""

    __slots__ = ("config", "secret_keys")
    _defaults = {"secret_keys": frozenset()}
    config: Mapping[str, str]
    secret_keys: frozenset[str]

    def __repr__(self) -> str:
        return f"Delivered(keys={sorted(self.config)!r}, secret_keys={sorted(self.secret_keys)!r})"


Decrypt = Callable[[str, str], str]
"""``decrypt(ciphertext, key)``: a stack ``{secure:}`` value's plaintext (``key`` for errors)."""


def stack_decrypter(plan: "LoadPlan", environ: Mapping[str, str]) -> Decrypt | None:
    """A decrypter for the stack's ``{secure:}`` values when the stack uses the passphrase
    secrets manager and a passphrase is set (``PULUMI_CONFIG_PASSPHRASE[_FILE]``), else
    ``None`` (the values stay known-secret and unapplied). The key is derived only if some
    value needs it: it costs a million PBKDF2 rounds."""
    if not any(contains_secure(v) for v in plan.stack_config.values()):
        return None
    if not (environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        return None
    from ..secrets.passphrase import PassphraseCrypter

    where = str(plan.stack_file or "the stack file")
    crypter = PassphraseCrypter.from_stack(plan.stack_document, environ, where=where)
    if crypter is None:
        return None

    def decrypt(ciphertext: str, key: str) -> str:
        try:
            return crypter.decrypt(ciphertext)
        except DecryptionError as e:
            raise DecryptionError(f"{where}: config key {key!r}: {e}") from None

    return decrypt


def compute_config(
    plan: "LoadPlan",
    opened: "OpenedEnvironment | None",
    *,
    delivered: Delivered | None = None,
    decrypt: Decrypt | None = None,
) -> "ConfigResult":
    """Merge stack file, opened ``pulumiConfig`` and project defaults into config entries.

    Outside a run the stack and project files are the source (typed by yaml.v3's rules;
    ``{secure:}`` leaves decrypted by ``decrypt``, else known-secret but not applied). Inside a
    run pass ``delivered``: what the CLI delivered is the truth, never re-rendered; ESC fills
    the keys the stack did not set and replaces project defaults; an ESC object deep-merges
    under the CLI's JSON of a stack object; when the CLI applied ``environment:`` itself
    (``plan.applied_by_cli``) nothing it delivered changes.

    Example::

        result = compute_config(plan, open_composition(plan.backend, plan.composition))
        result.values()["myproj:region"]    # 'eu-west-1'
    """
    anonymous = f"{plan.stack_file.name if plan.stack_file else 'stack file'} (inline)"
    entries: dict[str, ConfigEntry] = {}
    overridden: list[str] = []
    warnings: list[str] = []
    from_esc = {} if plan.applied_by_cli else esc_values(opened, plan.project, warnings)

    if delivered is not None:
        for key, text in delivered.config.items():
            source = (
                SOURCE_STACK
                if key in plan.stack_config
                else SOURCE_DEFAULT
                if key in plan.project_defaults
                else SOURCE_CLI
            )
            entries[key] = ConfigEntry(key, text, key in delivered.secret_keys, source)
        for key, v in from_esc.items():
            have = entries.get(key)
            if have is None or have.source == SOURCE_DEFAULT:
                entries[key] = _entry(key, v, _source_of(v, anonymous))
                continue
            overridden.append(key)
            under = _delivered_value(have.value)
            if isinstance(under.repr, dict) and isinstance(v.repr, dict) and not v.unknown:
                merged = _deep_merge(v, under)
                entries[key] = _entry(key, merged, have.source, secret=have.secret)
    else:
        for key, raw in plan.project_defaults.items():
            entries[key] = _entry(key, _plain_value(raw), SOURCE_DEFAULT)
        for key, v in from_esc.items():
            entries[key] = _entry(key, v, _source_of(v, anonymous))
        for key, raw in plan.stack_config.items():
            v = _plain_value(raw, decrypt, key)
            if key in from_esc:
                overridden.append(key)
                v = _deep_merge(from_esc[key], v)
            entries[key] = _entry(key, v, SOURCE_STACK, secret=contains_secure(raw))

    return ConfigResult(
        entries=dict(sorted(entries.items())),
        secret_keys=frozenset(k for k, e in entries.items() if e.secret),
        overridden=tuple(overridden),
        warnings=tuple(warnings),
    )
