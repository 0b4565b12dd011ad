"""What a program run through the fake engine produced: resources, stack outputs, log lines.

Everything keeps the **wire form** the SDK sent (``inputs_wire``, ``outputs.wire``: secrets
wrapped as ``{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": ...}``),
with helpers for the plain values (``inputs``, ``outputs[name]``) and for where the secrets were
(``secret_paths``). No ``repr`` here ever shows a secret's value.

Example::

    run = run_program("examples/local", "dev", config=config, secret_keys=keys)
    db = run.resource("db")
    db.inputs["host"]            # 'dev-db.internal'
    db.secret_paths              # ('password',)
    run.outputs["dbPassword"]    # the plaintext (tests may look) ...
    "dbPassword" in run.outputs.secret   # ... but it went to the engine as a secret
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator

from ._wire import SECRET_TEXT, mask, secret_paths, secret_texts, unwrap

# Engine log severities (pulumirpc.LogSeverity) by number, as the SDK sends them.
SEVERITIES = ("debug", "info", "warning", "error")


class ProgramFailed(AssertionError):
    """Raised by :meth:`ProgramRun.check` when the program exited non-zero. An
    ``AssertionError`` so that pytest shows it as a failed expectation with the program's stderr.

    Example::

        with pytest.raises(ProgramFailed, match="Missing required configuration"):
            run_program(project, "dev").check()
    """


@dataclass(frozen=True)
class LogEntry:
    """One ``Engine.Log`` call: ``severity`` is ``"debug"``, ``"info"``, ``"warning"`` or
    ``"error"``; ``urn`` the resource it was about (``""`` for none).

    Example::

        LogEntry("info", "connecting to dev-db.internal")
    """

    severity: str
    message: str
    urn: str = ""
    stream_id: int = 0
    ephemeral: bool = False


@dataclass(frozen=True, repr=False)
class Resource:
    """A resource registration as the engine received it.

    ``inputs_wire`` is ``MessageToDict`` of the request's properties (secrets wrapped);
    ``outputs_wire`` what the program registered as the resource's outputs
    (``RegisterResourceOutputs``: component resources and the stack), ``None`` if nothing was;
    ``id`` is ``None`` for component resources and, as with the real engine, during a preview;
    ``read`` is true for ``Resource.get`` lookups (``ReadResource``).

    Example::

        db = run.resource("db")
        db.type, db.custom           # ('webapp:index:Database', True)
        db.inputs["password"]        # the plaintext
        db.secret_paths              # ('password',): it was a secret on the wire
    """

    type: str
    name: str
    custom: bool
    urn: str
    parent: str = ""
    inputs_wire: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    provider: str = ""
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    remote: bool = False
    read: bool = False
    outputs_wire: Mapping[str, Any] | None = None

    @property
    def inputs(self) -> dict[str, Any]:
        """The inputs as plain values (secret wrappers removed, unknowns as ``UNKNOWN``)."""
        return unwrap(dict(self.inputs_wire))

    @property
    def secret_paths(self) -> tuple[str, ...]:
        """Dotted paths of the inputs that went to the engine as secrets, sorted."""
        return tuple(secret_paths(dict(self.inputs_wire)))

    @property
    def outputs(self) -> dict[str, Any] | None:
        """The registered outputs as plain values (``None`` when none were registered)."""
        return None if self.outputs_wire is None else unwrap(dict(self.outputs_wire))

    def __repr__(self) -> str:
        return (
            f"Resource({self.type!r}, {self.name!r}, custom={self.custom}, "
            f"inputs={mask(dict(self.inputs_wire))!r}, secret_paths={list(self.secret_paths)!r})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class StackOutputs(Mapping[str, Any]):
    """The stack's outputs. As a mapping: name → plain value (secrets unwrapped). ``wire``
    holds what the engine received; ``secret`` the names whose value is, or holds, a secret;
    ``secret_paths`` exactly where (``dbPassword``, ``settings.token``).

    Example::

        run.outputs["appName"]                 # 'webapp'
        run.outputs.secret                     # frozenset({'dbPassword', 'dbUrl'})
        run.outputs.wire["dbPassword"]         # {'4dabf1...': '1b4706...', 'value': '...'}
        run.outputs.masked()["dbPassword"]     # '[secret]'
    """

    wire: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return unwrap(self.wire[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.wire)

    def __len__(self) -> int:
        return len(self.wire)

    def plain(self) -> dict[str, Any]:
        """Every output as a plain value (a dict; secrets unwrapped)."""
        return unwrap(dict(self.wire))

    @property
    def secret_paths(self) -> tuple[str, ...]:
        """Paths of the secret values, sorted (the first part is the output's name)."""
        return tuple(secret_paths(dict(self.wire)))

    @property
    def secret(self) -> frozenset[str]:
        """Names of the outputs that are, or contain, secrets."""
        return frozenset(p.split(".", 1)[0].split("[", 1)[0] for p in self.secret_paths)

    def masked(self) -> dict[str, Any]:
        """The outputs as plain values with every secret shown as ``[secret]``."""
        return mask(dict(self.wire))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StackOutputs):
            return dict(self.wire) == dict(other.wire)
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StackOutputs({self.masked()!r})"


def _masked_config(config: Mapping[str, str], secret_keys: frozenset[str]) -> dict[str, str]:
    return {k: (SECRET_TEXT if k in secret_keys else v) for k, v in config.items()}


@dataclass(frozen=True, repr=False)
class ProgramRun:
    """One run of a program, as :func:`esc_pulumi.testing.run_program` returns it.

    ``resources``: every registration but the root stack's, in the order the engine got them;
    ``stack``: the root ``pulumi:pulumi:Stack`` registration (``None`` if the program died
    before it); ``outputs``: the stack outputs; ``logs``: every ``Engine.Log`` call (the SDK's
    own debug lines included: see :meth:`messages`); ``config`` / ``secret_keys``: what the
    program was given in ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``; ``exit_code``,
    ``stdout``, ``stderr`` of the program's process. The repr masks every secret and leaves
    stdout and stderr out (a program may print anything).

    Example::

        run = run_program(project, "dev", config={"myproj:name": "x"})
        run.check()                                   # raises ProgramFailed with stderr if it failed
        run.resource("bucket").inputs["name"]         # 'x'
        run.messages("info")                          # ['created the bucket']
    """

    project: str
    stack: str
    preview: bool
    exit_code: int
    stdout: str
    stderr: str
    resources: tuple[Resource, ...] = ()
    stack_resource: Resource | None = None
    outputs: StackOutputs = field(default_factory=StackOutputs)
    logs: tuple[LogEntry, ...] = ()
    invokes: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    secret_keys: frozenset[str] = frozenset()
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """The program exited 0."""
        return self.exit_code == 0

    def check(self) -> "ProgramRun":
        """``self`` if the program succeeded, else :class:`ProgramFailed` with its stderr (the
        run's secrets masked in it: an exception message is no place for them)."""
        if self.exit_code != 0:
            raise ProgramFailed(
                f"program {self.project}/{self.stack} exited {self.exit_code}:\n"
                f"{self.mask_secrets(self.stderr.strip())}"
            )
        return self

    def resource(self, name: str, type: str | None = None) -> Resource:
        """The one resource called ``name`` (of ``type``, when given); ``KeyError`` otherwise."""
        found = [r for r in self.resources if r.name == name and (type is None or r.type == type)]
        if len(found) != 1:
            what = f"{name!r}" + (f" of type {type!r}" if type else "")
            have = ", ".join(f"{r.type}::{r.name}" for r in self.resources) or "none"
            raise KeyError(f"{len(found)} resources named {what} (registered: {have})")
        return found[0]

    def messages(self, *severities: str) -> list[str]:
        """Log messages of the given severities (default: info, warning and error — everything
        but the SDK's debug chatter), in order."""
        wanted = set(severities) or {"info", "warning", "error"}
        unknown = wanted - set(SEVERITIES)
        if unknown:
            raise ValueError(f"unknown severities {sorted(unknown)}; use {', '.join(SEVERITIES)}")
        return [e.message for e in self.logs if e.severity in wanted]

    def secret_texts(self) -> frozenset[str]:
        """Every plaintext that was a secret in this run: the text inside each secret the engine
        received (resource inputs, registered outputs, stack outputs) and the values of the
        secret config keys. For checks that no secret leaked elsewhere.

        Example::

            assert not any(s in run.stdout + run.stderr for s in run.secret_texts())
        """
        found: set[str] = {v for k, v in self.config.items() if k in self.secret_keys}
        found.update(secret_texts(dict(self.outputs.wire)))
        for r in (*self.resources, *((self.stack_resource,) if self.stack_resource else ())):
            found.update(secret_texts(dict(r.inputs_wire)))
            if r.outputs_wire is not None:
                found.update(secret_texts(dict(r.outputs_wire)))
        return frozenset(found)

    def mask_secrets(self, text: str, *, shortest: int = 3) -> str:
        """``text`` with every :meth:`secret_texts` string (of at least ``shortest``
        characters: masking "1" everywhere would say nothing) replaced by ``[secret]``."""
        for s in sorted(self.secret_texts(), key=len, reverse=True):
            if len(s) >= shortest:
                text = text.replace(s, SECRET_TEXT)
        return text

    def __repr__(self) -> str:
        return (
            f"ProgramRun(project={self.project!r}, stack={self.stack!r}, preview={self.preview}, "
            f"exit_code={self.exit_code}, resources={list(self.resources)!r}, outputs={self.outputs!r}, "
            f"config={_masked_config(self.config, self.secret_keys)!r}, "
            f"secret_keys={sorted(self.secret_keys)!r}, logs={len(self.logs)}, "
            f"stdout=<{len(self.stdout)} chars>, stderr=<{len(self.stderr)} chars>)"
        )

    __str__ = __repr__
