"""An in-process fake of the Pulumi engine: the ``ResourceMonitor`` and ``Engine`` gRPC services
a Python program talks to under ``pulumi up``, on 127.0.0.1, recording what it is sent.

The program side is the real Pulumi SDK in its own process (see :mod:`esc_pulumi.testing._exec`),
so everything the SDK does before the wire — serializing secrets, outputs, dependencies — is the
real thing. The services use the SDK's own generated stubs (``pulumi.runtime.proto``) and answer
as the engine would, minus the providers:

- ``GetDeploymentInfo`` / ``SupportsFeature``: the monitor's features (secrets, resource
  references, output values, alias specs, ...; not transforms or hooks, which would need the
  engine to call back into the program);
- ``RegisterResource``: records type, name, custom, parent and the inputs in wire form
  (``MessageToDict``: secrets wrapped), answers with a URN, an ID (none during a preview, as
  the real engine answers for resources it would create) and the inputs as the outputs;
- ``RegisterResourceOutputs``: records them (the root stack's are the stack outputs);
- ``ReadResource`` (``Resource.get``) echoes the given properties; ``Invoke`` and ``Call``
  record the request and return nothing;
- ``Engine.Log`` records severity and message; ``Get/SetRootResource`` keep the root URN.

Example::

    from esc_pulumi.testing import FakeEngine

    with FakeEngine() as engine:               # one server for many runs
        first = engine.run("path/to/project", "dev", config={"myproj:name": "a"})
        second = engine.run("path/to/project", "dev", preview=True)
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from concurrent import futures
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2, resource_pb2, resource_pb2_grpc

from .results import SEVERITIES, LogEntry, Resource

if TYPE_CHECKING:  # pragma: no cover
    from .results import ProgramRun

STACK_TYPE = "pulumi:pulumi:Stack"

# The monitor features this engine honours. All of them only change what the SDK puts in its
# requests, which are recorded as they come. Transforms, hooks, parameterization and the like
# are left out: claiming them would make the SDK wait for the engine to call back into it.
DEFAULT_FEATURES: tuple[str, ...] = (
    "RESOURCE_MONITOR_FEATURE_SECRETS",
    "RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES",
    "RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES",
    "RESOURCE_MONITOR_FEATURE_ALIAS_SPECS",
    "RESOURCE_MONITOR_FEATURE_REPLACEMENT_TRIGGER",
    "RESOURCE_MONITOR_FEATURE_DELETED_WITH",
    "RESOURCE_MONITOR_FEATURE_REPLACE_WITH",
)

# The string ids an SDK without GetDeploymentInfo probes with SupportsFeature.
_LEGACY_IDS = {
    "secrets": "RESOURCE_MONITOR_FEATURE_SECRETS",
    "resourceReferences": "RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES",
    "outputValues": "RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES",
    "aliasSpecs": "RESOURCE_MONITOR_FEATURE_ALIAS_SPECS",
    "deletedWith": "RESOURCE_MONITOR_FEATURE_DELETED_WITH",
    "replaceWith": "RESOURCE_MONITOR_FEATURE_REPLACE_WITH",
    "transforms": "RESOURCE_MONITOR_FEATURE_TRANSFORMS",
    "invokeTransforms": "RESOURCE_MONITOR_FEATURE_INVOKE_TRANSFORMS",
    "parameterization": "RESOURCE_MONITOR_FEATURE_PARAMETERIZATION",
    "resourceHooks": "RESOURCE_MONITOR_FEATURE_RESOURCE_HOOKS",
    "errorHooks": "RESOURCE_MONITOR_FEATURE_ERROR_HOOKS",
}

# As large as the SDK's own channel allows (pulumi.runtime._grpc_settings): a program with big
# inputs must not fail here when it would pass under the real engine.
_MAX_MESSAGE = 400 * 1024 * 1024
_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]


@dataclass(frozen=True)
class Deployment:
    """What one run is: what ``GetDeploymentInfo`` answers and what URNs are made of.

    Example::

        Deployment(project="webapp", stack="dev", dry_run=True)
    """

    project: str
    stack: str
    organization: str = "organization"
    dry_run: bool = False
    parallel: int = 4
    config: Mapping[str, str] = field(default_factory=dict)
    secret_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recording:
    """Everything the engine was sent during one deployment, in arrival order. ``resources``
    includes the root stack; each resource's ``outputs_wire`` is filled in from
    ``RegisterResourceOutputs``.

    Example::

        with engine.deployment(Deployment(project="p", stack="dev")):
            ...                                   # a program registers against engine.address
            recording = engine.recording()
        recording.stack.outputs_wire              # the stack outputs, secrets wrapped
    """

    resources: tuple[Resource, ...] = ()
    logs: tuple[LogEntry, ...] = ()
    invokes: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    root_urn: str = ""

    @property
    def stack(self) -> Resource | None:
        """The root ``pulumi:pulumi:Stack`` registration, if there was one."""
        for r in self.resources:
            if r.type == STACK_TYPE and not r.parent:
                return r
        return None


def _feature_numbers(names: Iterable[str]) -> frozenset[int]:
    # getattr: an older SDK's protos lack the newer names; a feature they lack cannot be asked for.
    return frozenset(getattr(resource_pb2, n) for n in names if hasattr(resource_pb2, n))


def _wire(message: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as the JSON-like dict the engine sees (secrets stay wrapped)."""
    return json_format.MessageToDict(message)


class _State:
    """The recording of the current deployment. gRPC serves each call on a worker thread, and the
    SDK sends registrations concurrently: every read and write holds ``lock``."""

    def __init__(self, features: frozenset[int]) -> None:
        self.lock = threading.Lock()
        self.features = features
        self.deployment = Deployment(project="project", stack="stack")
        self.reset(self.deployment)

    def reset(self, deployment: Deployment) -> None:
        with self.lock:
            self.deployment = deployment
            self.resources: dict[str, Resource] = {}  # by URN, in arrival order
            self.qualified: dict[str, str] = {}  # URN -> the type chain URNs of children use
            self.outputs: dict[str, dict[str, Any]] = {}
            self.logs: list[LogEntry] = []
            self.invokes: list[tuple[str, Mapping[str, Any]]] = []
            self.root_urn = ""

    def _chain(self, type_: str, parent: str) -> str:
        # The type chain of a URN: the parent's chain, then this type; the root stack's type is
        # left out of its children's chains, as the engine does. Callers hold the lock.
        parent_chain = self.qualified.get(parent, "") if parent else ""
        return f"{parent_chain}${type_}" if parent_chain else type_

    def urn(self, type_: str, name: str, parent: str) -> str:
        """The engine's URN: ``urn:pulumi:<stack>::<project>::<type chain>::<name>``."""
        dep = self.deployment
        return f"urn:pulumi:{dep.stack}::{dep.project}::{self._chain(type_, parent)}::{name}"

    def add(self, resource: Resource) -> str | None:
        """Record a registration; the error message if its URN is already taken."""
        with self.lock:
            if resource.urn in self.resources:
                return f"Duplicate resource URN '{resource.urn}'; try giving it a unique name"
            self.resources[resource.urn] = resource
            root_stack = resource.type == STACK_TYPE and not resource.parent
            self.qualified[resource.urn] = "" if root_stack else self._chain(resource.type, resource.parent)
        return None

    def snapshot(self) -> Recording:
        with self.lock:
            resources = []
            for urn, r in self.resources.items():
                if urn in self.outputs:
                    r = dataclasses.replace(r, outputs_wire=MappingProxyType(self.outputs[urn]))
                resources.append(r)
            return Recording(
                resources=tuple(resources),
                logs=tuple(self.logs),
                invokes=tuple(self.invokes),
                root_urn=self.root_urn,
            )


class _Monitor(resource_pb2_grpc.ResourceMonitorServicer):
    """The resource monitor: what the SDK calls for every resource, invoke and stack output."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def GetDeploymentInfo(self, request: empty_pb2.Empty, context: Any) -> resource_pb2.DeploymentInfo:  # noqa: N802
        dep = self.state.deployment
        return resource_pb2.DeploymentInfo(
            project=dep.project,
            stack=dep.stack,
            organization=dep.organization,
            config=dict(dep.config),
            configSecretKeys=list(dep.secret_keys),
            dryRun=dep.dry_run,
            parallel=dep.parallel,
            supportedFeatures=sorted(self.state.features),
        )

    def SupportsFeature(  # noqa: N802
        self, request: resource_pb2.SupportsFeatureRequest, context: Any
    ) -> resource_pb2.SupportsFeatureResponse:
        name = _LEGACY_IDS.get(request.id)
        number = getattr(resource_pb2, name) if name and hasattr(resource_pb2, name) else None
        return resource_pb2.SupportsFeatureResponse(hasSupport=number in self.state.features)

    def RegisterResource(  # noqa: N802
        self, request: resource_pb2.RegisterResourceRequest, context: Any
    ) -> resource_pb2.RegisterResourceResponse:
        state = self.state
        dry_run = state.deployment.dry_run
        with state.lock:
            urn = state.urn(request.type, request.name, request.parent)
        # As the engine does: a custom resource gets its provider's ID once created (an import
        # keeps the ID it names); during a preview nothing is created, so there is none yet.
        rid: str | None = None
        if request.custom and not dry_run:
            rid = request.importId or f"{request.name}-id"
        resource = Resource(
            type=request.type,
            name=request.name,
            custom=request.custom,
            urn=urn,
            parent=request.parent,
            inputs_wire=MappingProxyType(_wire(request.object)),
            id=rid,
            provider=request.provider,
            dependencies=tuple(request.dependencies),
            protect=bool(request.protect),
            remote=request.remote,
        )
        error = state.add(resource)
        if error is not None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        response = resource_pb2.RegisterResourceResponse(urn=urn, id=rid or "")
        # No provider computes outputs here: the outputs are the inputs, as a provider that
        # stores what it is given would answer.
        response.object.CopyFrom(request.object)
        return response

    def RegisterResourceOutputs(  # noqa: N802
        self, request: resource_pb2.RegisterResourceOutputsRequest, context: Any
    ) -> empty_pb2.Empty:
        with self.state.lock:
            self.state.outputs[request.urn] = _wire(request.outputs)
        return empty_pb2.Empty()

    def ReadResource(  # noqa: N802
        self, request: resource_pb2.ReadResourceRequest, context: Any
    ) -> resource_pb2.ReadResourceResponse:
        state = self.state
        with state.lock:
            urn = state.urn(request.type, request.name, request.parent)
        resource = Resource(
            type=request.type,
            name=request.name,
            custom=True,
            urn=urn,
            parent=request.parent,
            inputs_wire=MappingProxyType(_wire(request.properties)),
            id=request.id,
            provider=request.provider,
            dependencies=tuple(request.dependencies),
            read=True,
        )
        error = state.add(resource)
        if error is not None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        response = resource_pb2.ReadResourceResponse(urn=urn)
        response.properties.CopyFrom(request.properties)
        return response

    def Invoke(  # noqa: N802
        self, request: resource_pb2.ResourceInvokeRequest, context: Any
    ) -> resource_pb2.ResourceInvokeResponse:
        with self.state.lock:
            self.state.invokes.append((request.tok, MappingProxyType(_wire(request.args))))
        return resource_pb2.ResourceInvokeResponse()

    def Call(self, request: resource_pb2.ResourceCallRequest, context: Any) -> provider_pb2.CallResponse:  # noqa: N802
        with self.state.lock:
            self.state.invokes.append((request.tok, MappingProxyType(_wire(request.args))))
        return provider_pb2.CallResponse()

    def SignalAndWaitForShutdown(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:  # noqa: N802
        # Every step has "run" the moment it was registered: nothing to wait for.
        return empty_pb2.Empty()


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine service: logging and the root resource."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def Log(self, request: engine_pb2.LogRequest, context: Any) -> empty_pb2.Empty:  # noqa: N802
        severity = SEVERITIES[request.severity] if 0 <= request.severity < len(SEVERITIES) else str(request.severity)
        entry = LogEntry(severity, request.message, request.urn, request.streamId, request.ephemeral)
        with self.state.lock:
            self.state.logs.append(entry)
        return empty_pb2.Empty()

    def GetRootResource(  # noqa: N802
        self, request: engine_pb2.GetRootResourceRequest, context: Any
    ) -> engine_pb2.GetRootResourceResponse:
        with self.state.lock:
            return engine_pb2.GetRootResourceResponse(urn=self.state.root_urn)

    def SetRootResource(  # noqa: N802
        self, request: engine_pb2.SetRootResourceRequest, context: Any
    ) -> engine_pb2.SetRootResourceResponse:
        with self.state.lock:
            self.state.root_urn = request.urn
        return engine_pb2.SetRootResourceResponse()

    def RequirePulumiVersion(  # noqa: N802
        self, request: engine_pb2.RequirePulumiVersionRequest, context: Any
    ) -> engine_pb2.RequirePulumiVersionResponse:
        # A stand-in for every engine version: any range is satisfied.
        return engine_pb2.RequirePulumiVersionResponse()


class FakeEngine:
    """The fake engine's gRPC server (monitor and engine services on one 127.0.0.1 port).

    Start it once and run many programs against it (``with FakeEngine() as engine: ...``); it
    records one deployment at a time (:meth:`deployment`), so runs through one engine are
    serialized. ``features`` are the monitor feature names it reports (``DEFAULT_FEATURES``).

    Example::

        with FakeEngine() as engine:
            run = engine.run(project_dir, "dev", config={"myproj:region": "eu-west-1"})
            assert run.ok
    """

    def __init__(self, *, features: Iterable[str] = DEFAULT_FEATURES, max_workers: int = 16) -> None:
        self._state = _State(_feature_numbers(features))
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._port = 0
        self._run_lock = threading.Lock()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what the language host passes as ``--monitor`` and ``--engine``."""
        if self._server is None:
            raise RuntimeError("the fake engine is not started: use `with FakeEngine() as engine:` or start()")
        return f"127.0.0.1:{self._port}"

    def start(self) -> "FakeEngine":
        """Start serving on an ephemeral port of 127.0.0.1 (idempotent)."""
        if self._server is not None:
            return self
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="fake-engine"),
            options=_SERVER_OPTIONS,
        )
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(_Monitor(self._state), server)
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(self._state), server)
        port = server.add_insecure_port("127.0.0.1:0")
        if not port:
            raise RuntimeError("the fake engine could not bind a port on 127.0.0.1")
        server.start()
        self._server, self._port = server, port
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def __enter__(self) -> "FakeEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def deployment(self, deployment: Deployment) -> Iterator["FakeEngine"]:
        """Record one deployment: the recording starts empty; read it with :meth:`recording`
        before leaving. One deployment at a time (others wait)."""
        with self._run_lock:
            self._state.reset(deployment)
            yield self

    def recording(self) -> Recording:
        """A snapshot of what the current (or last) deployment sent."""
        return self._state.snapshot()

    def run(self, project_dir: str | os.PathLike[str], stack: str = "dev", **options: Any) -> "ProgramRun":
        """:func:`esc_pulumi.testing.run_program` against this engine (same options)."""
        from .host import run_program

        return run_program(project_dir, stack, engine=self, **options)
