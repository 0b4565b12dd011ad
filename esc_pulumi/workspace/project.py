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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml", "Pulumi.json")
# The keys of a project config entry written in its schema form (``{type: string, default: x}``).
_SCHEMA_KEYS = frozenset({"type", "description", "default", "value", "secret", "items"})


@dataclass(frozen=True)
class Project:
    """A ``Pulumi.yaml``: its folder, name, where stack files live and the config defaults."""

    path: Path
    name: str
    stack_config_dir: Path
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.path.parent


@dataclass(frozen=True)
class StackFile:
    """A ``Pulumi.<stack>.yaml``. ``config`` has full ``ns:key`` keys and raw YAML values
    (``{"secure": ...}`` for values encrypted by the stack's secrets provider)."""

    path: Path
    exists: bool
    config: dict[str, Any] = field(default_factory=dict)
    environment: Any = None  # the raw ``environment:`` value (list or mapping) or None


def _load_document(path: Path) -> Any:
    """YAML (or JSON) text of a project/stack file; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigurationError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text) if text.strip() else None
        import yaml  # lazily: keeps `import esc_pulumi` cheap

        return yaml.safe_load(text)
    except (ValueError, Exception) as e:  # yaml.YAMLError, json.JSONDecodeError
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigurationError(f"{where}: malformed {path.name}: {problem}") from None


def find_project(start: Path) -> Path:
    """The project file in ``start`` or the nearest folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        for name in PROJECT_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    raise ConfigurationError(
        f"no Pulumi.yaml found in {start} or any folder above it: run inside a Pulumi project "
        "or pass project_dir="
    )


def project_file_in(folder: Path) -> Path | None:
    for name in PROJECT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def namespaced(key: Any, project: str) -> str | None:
    """The full config key Pulumi uses: ``key`` → ``project:key``, ``ns:key`` kept; ``None``
    for anything else (more colons, an empty part, not a string)."""
    if not isinstance(key, str) or not key:
        return None
    colons = key.count(":")
    if colons == 0:
        return f"{project}:{key}"
    if colons == 1 and not key.startswith(":") and not key.endswith(":"):
        return key
    return None


def full_key(key: str, project: str, *, where: str) -> str:
    """``key`` → ``project:key``; ``ns:key`` kept; more colons are an error naming the key."""
    full = namespaced(key, project)
    if full is None:
        raise ConfigurationError(f"{where}: invalid config key {key!r}: use 'key' or 'namespace:key'")
    return full


def read_project(path: Path) -> Project:
    """Parse a project file: ``name``, ``stackConfigDir`` and ``config`` defaults."""
    doc = _load_document(path)
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: malformed project file: expected a mapping with 'name'")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{path}: the project file has no 'name'")
    scd = doc.get("stackConfigDir")
    stack_dir = path.parent / scd if isinstance(scd, str) and scd else path.parent
    defaults: dict[str, Any] = {}
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigurationError(f"{path}: 'config' must be a mapping")
    for key, spec in cfg.items():
        k = full_key(key, name, where=str(path))
        if isinstance(spec, dict) and spec and set(spec) <= _SCHEMA_KEYS:
            # Schema form: only a default/value is config; a bare declaration sets nothing.
            if "value" in spec:
                defaults[k] = spec["value"]
            elif "default" in spec:
                defaults[k] = spec["default"]
        else:
            defaults[k] = spec
    return Project(path=path, name=name, stack_config_dir=stack_dir, defaults=defaults)


def stack_file_name(stack: str, extension: str) -> str:
    """``Pulumi.<short stack name>.<ext>``: ``org/proj/dev`` → ``Pulumi.dev.yaml``."""
    short = stack.rsplit("/", 1)[-1] if stack.count("/") else stack
    return f"Pulumi.{short.replace('/', '-')}{extension}"


def read_stack(project: Project, stack: str) -> StackFile:
    """Parse the stack file; a missing one means empty config, as in the CLI."""
    path = project.stack_config_dir / stack_file_name(stack, project.path.suffix)
    if not path.is_file():
        return StackFile(path=path, exists=False)
    doc = _load_document(path)
    if doc is None:
        return StackFile(path=path, exists=True)
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: malformed stack file: expected a mapping")
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigurationError(f"{path}: 'config' must be a mapping")
    config = {full_key(k, project.name, where=str(path)): v for k, v in cfg.items()}
    env = doc.get("environment")
    if env is not None and not isinstance(env, (list, dict)):
        raise ConfigurationError(
            f"{path}: 'environment' must be a list of environment names or a mapping "
            "(imports/values)"
        )
    return StackFile(path=path, exists=True, config=config, environment=env)


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
