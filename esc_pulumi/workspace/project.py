"""Pulumi project and stack files: where they are, and what they say about config and ESC.

Mirrors the Pulumi CLI (see ``spec/pulumi-integration.md``): ``Pulumi.yaml`` (or ``.yml`` /
``.json``) found by searching upward; ``Pulumi.<stack>.yaml`` beside it or under
``stackConfigDir``; config keys without a namespace belong to the project.

Example::

    project = find_project(Path.cwd())
    stack = read_stack(project, "dev")
    stack.environment             # ['aws-dev', 'myproj/app@stable'], a mapping, or None
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..esc._fast import Record
from ..errors import ConfigurationError

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml", "Pulumi.json")
# The keys of a project config entry written in its schema form (``{type: string, default: x}``).
_SCHEMA_KEYS = frozenset({"type", "description", "default", "value", "secret", "items"})


class Project(Record):
    """A ``Pulumi.yaml``: its folder, name, where stack files live and the config defaults."""

    __slots__ = ("path", "name", "stack_config_dir", "defaults", "declarations", "backend_url")
    _defaults = {"backend_url": None}
    _factories = {"defaults": dict, "declarations": dict}
    path: Path
    name: str
    stack_config_dir: Path
    defaults: dict[str, Any]
    # Typed declarations (``{type: integer, default: 1, secret: true}``) by full key.
    declarations: dict[str, dict[str, Any]]
    backend_url: str | None  # the project's ``backend.url`` (where the CLI keeps state)

    @property
    def dir(self) -> Path:
        return self.path.parent


class StackFile(Record):
    """A ``Pulumi.<stack>.yaml``. ``config`` has full ``ns:key`` keys and raw YAML values
    (``{"secure": ...}`` for values encrypted by the stack's secrets provider)."""

    __slots__ = ("path", "exists", "config", "environment", "document")
    _defaults = {"environment": None}
    _factories = {"config": dict, "document": dict}
    path: Path
    exists: bool
    config: dict[str, Any]
    environment: Any  # the raw ``environment:`` value (list or mapping) or None
    # The whole file as typed data (``encryptionsalt``, ``secretsprovider``, ``config``, ...).
    document: dict[str, Any]


def load_document(path: Path) -> Any:
    """A project or stack file as plain data, typed as the Pulumi CLI types it: yaml.v3's
    YAML 1.2 rules (the engine's syntax layer: ``yes`` is a string, ``1e6`` a float, ``0o17``
    the integer 15), or JSON for ``.json`` files. Errors name the file (and line:column)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror or e}") from None
    if path.suffix == ".json":
        try:
            text = raw.decode("utf-8")
            return json.loads(text) if text.strip() else None
        except ValueError as e:
            where = f"{path}:{e.lineno}:{e.colno}" if isinstance(e, json.JSONDecodeError) else str(path)
            raise ConfigurationError(f"{where}: malformed {path.name}: {getattr(e, 'msg', e)}") from None
    from ..esc.nodes import node_data
    from ..esc.syntax import parse_yaml

    node, diagnostics = parse_yaml(raw, str(path))
    for d in diagnostics:
        if d.is_error:
            where = f"{path}:{d.range.begin.line}:{d.range.begin.column}" if d.range else _syntax_where(path, raw)
            raise ConfigurationError(f"{where}: malformed {path.name}: {d.summary}")
    duplicates: list[Any] = []
    data = node_data(node, duplicates)
    if duplicates:
        key = duplicates[0]
        b = key.range.begin
        raise ConfigurationError(
            f"{path}:{b.line}:{b.column}: mapping key {key.value!r} is already defined: remove one of them"
        )
    return data


def _syntax_where(path: Path, raw: bytes) -> str:
    """``path:line:column`` of a YAML syntax error (the engine words it as yaml.v3 does, which
    names no column; libyaml's mark has both)."""
    import yaml

    try:
        for _ in yaml.parse(raw, Loader=yaml.SafeLoader):
            pass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if mark is not None:
            return f"{path}:{mark.line + 1}:{mark.column + 1}"
    except yaml.YAMLError:
        pass
    return str(path)


def find_project(start: Path, project_dir_words: str = "load(project_dir=...)") -> Path:
    """The project file in ``start`` or the nearest folder above it (the error's advice names
    the setting as ``project_dir_words``)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        for name in PROJECT_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    raise ConfigurationError(
        f"no Pulumi.yaml found in {start} or any folder above it: run inside a Pulumi project "
        f"or pass {project_dir_words}"
    )


def project_file_in(folder: Path) -> Path | None:
    for name in PROJECT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


class ParsedKey(Record):
    """A config key as the CLI parses it: ``full`` is ``namespace:name``; ``odd`` says why the
    CLI accepts it although it is probably a mistake (an empty namespace or name)."""

    __slots__ = ("full", "odd")
    _defaults = {"odd": ""}
    full: str
    odd: str


def parse_key(key: Any, project: str) -> ParsedKey | None:
    """A config key as ``pulumi config set`` parses it, or ``None`` when the CLI refuses it.

    No colon → ``project:key``; ``ns:key`` kept; ``ns:config:key`` → ``ns:key`` (the old form);
    ``:k`` and ``k:`` are accepted (an empty namespace or name) but marked ``odd``.

    Example::

        parse_key("aws:config:region", "p").full     # 'aws:region'
    """
    if not isinstance(key, str) or not key:
        return None
    colons = key.count(":")
    if colons == 0:
        return ParsedKey(f"{project}:{key}")
    if colons == 1:
        namespace, name = key.split(":")
    elif colons == 2 and key.split(":")[1] == "config":
        namespace, _, name = key.split(":")
    else:
        return None
    odd = "an empty namespace" if not namespace else "an empty name" if not name else ""
    return ParsedKey(f"{namespace}:{name}", odd)


KEY_FORMS = "use 'key', 'namespace:key' or 'namespace:config:key'"


def full_key(key: str, project: str, *, where: str) -> str:
    """``key`` parsed as the CLI parses it; a form the CLI refuses is an error naming the key."""
    parsed = parse_key(key, project)
    if parsed is None:
        raise ConfigurationError(f"{where}: invalid config key {key!r}: {KEY_FORMS}")
    return parsed.full


def read_project(path: Path) -> Project:
    """Parse a project file: ``name``, ``stackConfigDir`` and ``config`` defaults."""
    doc = load_document(path)
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: malformed project file: expected a mapping with 'name'")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{path}: the project file has no 'name'")
    scd = doc.get("stackConfigDir")
    stack_dir = path.parent / scd if isinstance(scd, str) and scd else path.parent
    defaults: dict[str, Any] = {}
    declarations: dict[str, dict[str, Any]] = {}
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigurationError(f"{path}: 'config' must be a mapping")
    for key, spec in cfg.items():
        k = full_key(key, name, where=str(path))
        if isinstance(spec, dict) and spec and set(spec) <= _SCHEMA_KEYS:
            # Schema form: only a default/value is config; a bare declaration sets nothing.
            declarations[k] = dict(spec)
            if "value" in spec:
                defaults[k] = spec["value"]
            elif "default" in spec:
                defaults[k] = spec["default"]
        else:
            defaults[k] = spec
    backend = doc.get("backend")
    url = backend.get("url") if isinstance(backend, dict) else None
    return Project(
        path=path,
        name=name,
        stack_config_dir=stack_dir,
        defaults=defaults,
        declarations=declarations,
        backend_url=url if isinstance(url, str) and url else None,
    )


def selected_stack(project: Project, environ: Mapping[str, str]) -> str | None:
    """The stack the Pulumi CLI would use: ``PULUMI_STACK``, else the one chosen with
    ``pulumi stack select`` (``$PULUMI_HOME/workspaces/<project>-<sha1 of the Pulumi.yaml
    path>-workspace.json``, ``{"stack": name}``), else ``None``."""
    if environ.get("PULUMI_STACK"):
        return environ["PULUMI_STACK"]
    import hashlib

    home = Path(environ["PULUMI_HOME"]) if environ.get("PULUMI_HOME") else Path.home() / ".pulumi"
    # The CLI hashes the path it found the project at: as given, or with symlinks resolved.
    for candidate in dict.fromkeys((os.path.abspath(project.path), str(project.path.resolve()))):
        digest = hashlib.sha1(candidate.encode("utf-8")).hexdigest()
        path = home / "workspaces" / f"{project.name}-{digest}-workspace.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        stack = data.get("stack") if isinstance(data, dict) else None
        if isinstance(stack, str) and stack:
            return stack
    return None


def stack_file_name(stack: str, extension: str) -> str:
    """``Pulumi.<short stack name>.<ext>``: ``org/proj/dev`` → ``Pulumi.dev.yaml``."""
    short = stack.rsplit("/", 1)[-1] if stack.count("/") else stack
    return f"Pulumi.{short.replace('/', '-')}{extension}"


def read_stack(project: Project, stack: str) -> StackFile:
    """Parse the stack file; a missing one means empty config, as in the CLI."""
    path = project.stack_config_dir / stack_file_name(stack, project.path.suffix)
    if not path.is_file():
        return StackFile(path=path, exists=False)
    doc = load_document(path)
    if doc is None:
        return StackFile(path=path, exists=True)
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: malformed stack file: expected a mapping")
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigurationError(f"{path}: 'config' must be a mapping")
    config: dict[str, Any] = {}
    given: dict[str, str] = {}
    for k, v in cfg.items():
        full = full_key(k, project.name, where=str(path))
        if full in given:
            raise ConfigurationError(
                f"{path}: config keys {given[full]!r} and {k!r} both mean {full!r}: keep one of them"
            )
        given[full] = k
        config[full] = v
    env = doc.get("environment")
    if env is not None and not isinstance(env, (list, dict)):
        raise ConfigurationError(
            f"{path}: 'environment' must be a list of environment names or a mapping "
            "(imports/values)"
        )
    return StackFile(path=path, exists=True, config=config, environment=env, document=dict(doc))


def is_secure(value: Any) -> bool:
    """``{secure: ...}``: a value encrypted by the stack's secrets provider."""
    return isinstance(value, dict) and len(value) == 1 and "secure" in value


def contains_secure(value: Any) -> bool:
    stack = [value]
    while stack:
        x = stack.pop()
        if is_secure(x):
            return True
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return False
