"""Every mapping case of the Pulumi CLI: namespacing, value types, secrets, precedence."""
from __future__ import annotations

import pytest

from esc_pulumi.backends.base import OpenedEnvironment
from esc_pulumi.esc import Value
from esc_pulumi.esc.values import from_plain
from esc_pulumi.errors import MappingError
from esc_pulumi.workspace.mapping import compute_config
from esc_pulumi.workspace.plan import make_plan


def opened(pulumi_config: dict) -> OpenedEnvironment:
    return OpenedEnvironment(from_plain({"pulumiConfig": pulumi_config}))


def plan_for(project, stack_config: str = "", defaults: str = ""):
    root = project(
        "config:\n" + (stack_config or "  esc:environments: [e]\n"),
        project_yaml="name: myproj\nruntime: python\n" + (f"config:\n{defaults}" if defaults else ""),
    )
    return make_plan("dev", root)


def test_namespacing(project):
    r = compute_config(plan_for(project), opened({"plain": "a", "aws:region": "b"}))
    assert r.values()["myproj:plain"] == "a"
    assert r.values()["aws:region"] == "b"


@pytest.mark.parametrize("key", ["a:b:c", "a:b:config", "a:config:b:c", ""])
def test_bad_keys_name_the_key(project, key):
    with pytest.raises(MappingError) as e:
        compute_config(plan_for(project), opened({key: "v"}))
    assert repr(key) in str(e.value)


def test_same_key_twice_after_namespacing(project):
    with pytest.raises(MappingError, match="both mean config key 'myproj:a'"):
        compute_config(plan_for(project), opened({"a": 1, "myproj:a": 2}))


@pytest.mark.parametrize(
    "value, text",
    [
        ("text", "text"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (3.0, "3"),
        (None, "null"),
        ({"b": 1, "a": [True, None, "x"]}, '{"a":[true,null,"x"],"b":1}'),
        (["z", {"y": 2, "x": 1}], '["z",{"x":1,"y":2}]'),
        ({"html": "<a&b>"}, '{"html":"\\u003ca\\u0026b\\u003e"}'),
    ],
)
def test_value_types(project, value, text):
    r = compute_config(plan_for(project), opened({"k": value}))
    assert r.values()["myproj:k"] == text
    assert "myproj:k" not in r.secret_keys


def test_unknown_value(project):
    pc = Value({"k": Value(None, unknown=True)})
    r = compute_config(plan_for(project), OpenedEnvironment(Value({"pulumiConfig": pc})))
    assert r.values()["myproj:k"] == "[unknown]"


def test_secret_leaf_makes_the_key_secret(project):
    obj = Value({"user": Value("admin"), "port": Value(5432, secret=True)})
    pc = Value({"db": obj, "pw": Value("hunter2", secret=True), "plain": Value("x")})
    r = compute_config(plan_for(project), OpenedEnvironment(Value({"pulumiConfig": pc})))
    assert r.secret_keys == {"myproj:db", "myproj:pw"}
    assert r.values()["myproj:db"] == '{"port":5432,"user":"admin"}'
    assert "hunter2" not in repr(r) and "5432" not in repr(r.entries["myproj:db"])


def test_precedence_stack_over_esc_over_defaults(project):
    plan = plan_for(
        project,
        "  esc:environments: [e]\n  myproj:both: stack\n  myproj:stackOnly: s\n",
        "  both: default\n  escAndDefault: default\n  defaultOnly: d\n",
    )
    r = compute_config(plan, opened({"both": "esc", "escAndDefault": "esc", "escOnly": "e"}))
    v = r.values()
    assert v["myproj:both"] == "stack"
    assert v["myproj:escAndDefault"] == "esc"
    assert v["myproj:defaultOnly"] == "d"
    assert v["myproj:stackOnly"] == "s" and v["myproj:escOnly"] == "e"
    assert r.overridden == ("myproj:both",)
    src = {k: e.source for k, e in r.entries.items()}
    assert src["myproj:both"] == "stack file"
    assert src["myproj:defaultOnly"] == "project default"
    assert src["myproj:escOnly"] == "environment"  # from_plain values have no definition


def test_deep_merge_stack_wins_per_key_arrays_replaced(project):
    plan = plan_for(
        project,
        "  esc:environments: [e]\n  myproj:obj:\n    a: stack\n    nested: {x: stack}\n    list: [s]\n",
    )
    esc = {"obj": {"a": "esc", "b": "esc", "nested": {"x": "esc", "y": "esc"}, "list": [1, 2]}}
    r = compute_config(plan, opened(esc))
    assert r.values()["myproj:obj"] == '{"a":"stack","b":"esc","list":["s"],"nested":{"x":"stack","y":"esc"}}'
    assert r.overridden == ("myproj:obj",)


def test_merged_secret_survives_only_if_its_leaf_does(project):
    plan = plan_for(project, "  esc:environments: [e]\n  myproj:o: {pw: overridden}\n  myproj:p: {other: 1}\n")
    pc = Value(
        {
            "o": Value({"pw": Value("s3cret", secret=True)}),
            "p": Value({"pw": Value("s3cret", secret=True)}),
        }
    )
    r = compute_config(plan, OpenedEnvironment(Value({"pulumiConfig": pc})))
    assert "myproj:o" not in r.secret_keys  # the stack replaced the only secret leaf
    assert "myproj:p" in r.secret_keys


def test_secure_stack_values_are_secret_and_never_applied(project):
    plan = plan_for(project, "  esc:environments: [e]\n  myproj:pw:\n    secure: v1:abcdef\n")
    r = compute_config(plan, opened({"pw": "from-esc"}))
    e = r.entries["myproj:pw"]
    assert e.secret and e.encrypted and e.source == "stack file"
    assert "myproj:pw" not in r.values()
    assert "myproj:pw" in r.secret_keys and r.overridden == ("myproj:pw",)


def test_no_pulumi_config(project):
    r = compute_config(plan_for(project), OpenedEnvironment(from_plain({"other": 1})))
    assert [k for k in r.values() if not k.startswith("esc:")] == []
    with pytest.raises(MappingError, match="must be an object"):
        compute_config(plan_for(project), OpenedEnvironment(from_plain({"pulumiConfig": [1]})))


def test_stack_values_are_stringified_like_the_cli(project):
    plan = plan_for(project, "  esc:environments: [e]\n  n: 3\n  b: true\n  o: {k: [1, 2]}\n")
    v = compute_config(plan, None).values()
    assert (v["myproj:n"], v["myproj:b"], v["myproj:o"]) == ("3", "true", '{"k":[1,2]}')
    assert v["esc:environments"] == '["e"]'
