"""The fake engine on its own, spoken to with the SDK's gRPC stubs as the SDK speaks to it."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, resource_pb2, resource_pb2_grpc

from esc_pulumi.testing import Deployment, FakeEngine
from esc_pulumi.testing._wire import SECRET_SIG, SIG_KEY


@pytest.fixture(scope="module")
def engine():
    with FakeEngine() as e:
        yield e


@pytest.fixture
def stubs(engine):
    channel = grpc.insecure_channel(engine.address)
    yield resource_pb2_grpc.ResourceMonitorStub(channel), engine_pb2_grpc.EngineStub(channel)
    channel.close()


def props(data: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(data)
    return s


def register(monitor, type_, name, data=None, *, parent="", custom=True):
    return monitor.RegisterResource(
        resource_pb2.RegisterResourceRequest(type=type_, name=name, parent=parent, custom=custom, object=props(data or {}))
    )


def test_listens_on_loopback_only(engine):
    host, port = engine.address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_deployment_info_and_features(engine, stubs):
    monitor, _ = stubs
    dep = Deployment(project="p", stack="s", organization="o", dry_run=True, parallel=7,
                     config={"p:a": "1"}, secret_keys=("p:a",))
    with engine.deployment(dep):
        info = monitor.GetDeploymentInfo(empty_pb2.Empty())
    assert (info.project, info.stack, info.organization, info.dryRun, info.parallel) == ("p", "s", "o", True, 7)
    assert dict(info.config) == {"p:a": "1"} and list(info.configSecretKeys) == ["p:a"]
    features = set(info.supportedFeatures)
    assert resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS in features
    assert resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES in features
    assert resource_pb2.RESOURCE_MONITOR_FEATURE_TRANSFORMS not in features  # needs callbacks

    def supports(name):
        return monitor.SupportsFeature(resource_pb2.SupportsFeatureRequest(id=name)).hasSupport

    # The string ids an older SDK probes with.
    assert supports("secrets") and supports("resourceReferences") and supports("outputValues")
    assert not supports("transforms") and not supports("no-such-feature")


def test_register_resource_records_the_wire_form(engine, stubs):
    monitor, _ = stubs
    secret = {SIG_KEY: SECRET_SIG, "value": "hunter2"}
    with engine.deployment(Deployment(project="p", stack="s")):
        stack = register(monitor, "pulumi:pulumi:Stack", "p-s", custom=False)
        comp = register(monitor, "my:index:Comp", "c", parent=stack.urn, custom=False)
        child = register(monitor, "my:index:Thing", "t", {"pw": secret, "n": 1}, parent=comp.urn)
        monitor.RegisterResourceOutputs(
            resource_pb2.RegisterResourceOutputsRequest(urn=stack.urn, outputs=props({"out": secret}))
        )
        recording = engine.recording()
    assert stack.urn == "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"
    assert comp.urn == "urn:pulumi:s::p::my:index:Comp::c"  # the stack's type is not in the chain
    assert child.urn == "urn:pulumi:s::p::my:index:Comp$my:index:Thing::t"
    assert child.id == "t-id" and comp.id == ""
    assert dict(child.object) == {"pw": {SIG_KEY: SECRET_SIG, "value": "hunter2"}, "n": 1.0}  # echoed
    assert [r.name for r in recording.resources] == ["p-s", "c", "t"]
    thing = recording.resources[2]
    assert thing.parent == comp.urn and thing.custom and thing.secret_paths == ("pw",)
    assert thing.inputs_wire == {"pw": secret, "n": 1.0}
    assert recording.stack is recording.resources[0]
    assert recording.stack.outputs_wire == {"out": secret}


def test_preview_gives_no_ids_and_duplicates_are_refused(engine, stubs):
    monitor, _ = stubs
    with engine.deployment(Deployment(project="p", stack="s", dry_run=True)):
        first = register(monitor, "my:index:Thing", "t", {"a": "b"})
        with pytest.raises(grpc.RpcError) as e:
            register(monitor, "my:index:Thing", "t")
    assert first.id == "" and dict(first.object) == {"a": "b"}
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Duplicate resource URN" in e.value.details()


def test_engine_log_and_root_resource(engine, stubs):
    _, eng = stubs
    with engine.deployment(Deployment(project="p", stack="s")):
        eng.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message="hello"))
        eng.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message="careful", urn="urn:x"))
        assert eng.GetRootResource(engine_pb2.GetRootResourceRequest()).urn == ""
        eng.SetRootResource(engine_pb2.SetRootResourceRequest(urn="urn:root"))
        assert eng.GetRootResource(engine_pb2.GetRootResourceRequest()).urn == "urn:root"
        recording = engine.recording()
    assert [(e.severity, e.message, e.urn) for e in recording.logs] == [
        ("info", "hello", ""), ("warning", "careful", "urn:x"),
    ]
    assert recording.root_urn == "urn:root"


def test_a_new_deployment_starts_empty(engine, stubs):
    monitor, _ = stubs
    with engine.deployment(Deployment(project="p", stack="s")):
        register(monitor, "my:index:Thing", "t")
    with engine.deployment(Deployment(project="p", stack="s")):
        register(monitor, "my:index:Thing", "t")  # no duplicate: the last deployment is gone
        assert [r.name for r in engine.recording().resources] == ["t"]


def test_concurrent_registrations_are_all_recorded(engine, stubs):
    monitor, eng = stubs
    n = 200
    with engine.deployment(Deployment(project="p", stack="s")):
        with ThreadPoolExecutor(max_workers=16) as pool:
            urns = list(pool.map(lambda i: register(monitor, "my:index:Thing", f"t{i}", {"i": i}).urn, range(n)))
            list(pool.map(lambda i: eng.Log(engine_pb2.LogRequest(message=f"m{i}")), range(n)))
        recording = engine.recording()
    assert len(set(urns)) == n
    assert sorted(r.name for r in recording.resources) == sorted(f"t{i}" for i in range(n))
    assert {r.inputs["i"] for r in recording.resources} == set(range(n))
    assert len(recording.logs) == n


def test_address_needs_a_started_engine():
    engine = FakeEngine()
    with pytest.raises(RuntimeError, match="not started"):
        engine.address
    engine.start()
    try:
        assert engine.start().address == engine.address  # idempotent
    finally:
        engine.stop()
        engine.stop()
