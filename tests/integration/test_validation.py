"""The project's typed config declarations, checked as the Pulumi CLI checks them
(``esc_pulumi.workspace.validation``): missing values, wrong types, plain values of secret keys,
the DIY preflight, and the end-to-end path from the files through ``compute_config``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esc_pulumi.backends.base import OpenedEnvironment
from esc_pulumi.esc import Value
from esc_pulumi.esc.values import from_plain
from esc_pulumi.errors import ConfigurationError
from esc_pulumi.workspace.mapping import ConfigEntry, compute_config
from esc_pulumi.workspace.plan import make_plan
from esc_pulumi.workspace.project import Project, read_project
from esc_pulumi.workspace.validation import (
    ERROR,
    HINT_CLI,
    HINT_LOAD,
    SOURCE_PROJECT,
    WARNING,
    ConfigDeclaration,
    ConfigType,
    diy_preflight,
    diy_warning,
    esc_only_keys,
    infer_type,
    is_diy_backend,
    raise_for,
    state_backend,
    validate,
)

ENV = "environment myproj/app"


def proj(**declarations: dict[str, Any]) -> Project:
    """A project ``myproj`` with schema-form declarations (``aws__region`` → ``aws:region``)."""
    decls = {}
    defaults = {}
    for name, spec in declarations.items():
        key = name.replace("__", ":") if "__" in name else f"myproj:{name}"
        decls[key] = spec
        if spec.get("value") is not None or "value" in spec:
            defaults[key] = spec["value"]
        elif "default" in spec:
            defaults[key] = spec["default"]
    return Project(Path("/p/Pulumi.yaml"), "myproj", Path("/p"), defaults=defaults, declarations=decls)


def typed(key: str, data: Any, source: str = "stack file", *, secret: bool = False) -> ConfigEntry:
    return ConfigEntry(key, str(data), secret, source, data=data, typed=True)


def entries(*items: ConfigEntry) -> dict[str, ConfigEntry]:
    return {e.key: e for e in items}


def messages(problems) -> list[str]:
    return [p.message for p in problems]


# -- missing values -------------------------------------------------------------------------


def test_missing_keys_in_one_message_sorted_as_declared():
    p = proj(zeta={"type": "string"}, alpha={"type": "integer"}, aws__region={"type": "string"})
    problems = validate(p, "dev", {})
    assert messages(problems) == [
        "Stack 'dev' is missing configuration values 'alpha', 'aws:region', and 'zeta'"
    ]
    (problem,) = problems
    assert problem.keys == ("myproj:alpha", "aws:region", "myproj:zeta")
    assert problem.severity == ERROR and problem.key == ""


def test_one_and_two_missing_keys_read_as_the_cli_words_them():
    assert messages(validate(proj(a={"type": "string"}), "dev", {})) == [
        "Stack 'dev' is missing configuration value 'a'"
    ]
    assert messages(validate(proj(b={"type": "string"}, a={}), "prod", {})) == [
        "Stack 'prod' is missing configuration values 'a' and 'b'"
    ]


def test_a_default_or_value_satisfies_the_declaration_but_null_does_not():
    p = proj(
        d={"type": "string", "default": "x"},
        v={"type": "integer", "value": 3},
        n={"type": "string", "default": None},
    )
    e = entries(
        ConfigEntry("myproj:d", "x", False, "project default", data="x", typed=True),
        ConfigEntry("myproj:v", "3", False, "project default", data=3, typed=True),
        ConfigEntry("myproj:n", "null", False, "project default", data=None, typed=True),
    )
    assert messages(validate(p, "dev", e)) == ["Stack 'dev' is missing configuration value 'n'"]


def test_values_supplied_by_esc_satisfy_declarations():
    p = proj(replicas={"type": "integer"}, tags={"type": "array", "items": {"type": "string"}})
    e = entries(typed("myproj:replicas", 3, ENV), typed("myproj:tags", ["a", "b"], ENV))
    assert validate(p, "dev", e) == []
    # ...but not on the CLI's DIY preflight, which never sees ESC.
    assert messages(validate(p, "dev", e, supplied_by_esc=False)) == [
        "Stack 'dev' is missing configuration values 'replicas' and 'tags'"
    ]


# -- types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declared, good, bad",
    [
        ({"type": "string"}, ["", "x", "3"], [3, True, None, ["a"], {"a": 1}]),
        # An int, or what strconv.Atoi reads; never a float (YAML 3.0 is a float64), never a bool.
        ({"type": "integer"}, [0, -7, 2**63 - 1, "3", "+4", "-5", "007"],
         [3.0, 3.5, True, "3.0", "0x10", "1_000", "", "x", 2**63, None, [1]]),
        ({"type": "boolean"}, [True, False, "true", "false"], ["True", "yes", 1, 0, None, "1"]),
        ({"type": "array", "items": {"type": "string"}}, [[], ["a", "b"]], [["a", 1], "a", {"a": "b"}, None]),
        ({"type": "array", "items": {"type": "integer"}}, [[1, 2], [1, "2"]], [[1.5], [True], [[1]]]),
        ({"type": "object"}, [{}, {"a": [1]}], [[], "{}", None]),
    ],
)
def test_types(declared, good, bad):
    p = proj(k=declared)
    name = ConfigDeclaration.parse("myproj:k", declared, "myproj").type.full_name
    for data in good:
        assert validate(p, "dev", entries(typed("myproj:k", data))) == [], data
    for data in bad:
        problems = validate(p, "dev", entries(typed("myproj:k", data)))
        assert messages(problems) == [f"Stack 'dev' with configuration key 'k' must be of type '{name}'"], data
        assert problems[0].key == "myproj:k" and problems[0].source == "stack file"


def test_nested_array_types_are_named_recursively():
    p = proj(grid={"type": "array", "items": {"type": "array", "items": {"type": "integer"}}})
    assert validate(p, "dev", entries(typed("myproj:grid", [[1, 2], [3]]))) == []
    assert messages(validate(p, "dev", entries(typed("myproj:grid", [[1, "x"]], ENV)))) == [
        "Stack 'dev' with configuration key 'grid' must be of type 'array<array<integer>>'"
    ]
    assert ConfigType("array", ConfigType("array", ConfigType("string"))).full_name == "array<array<string>>"


def test_a_deeply_nested_value_does_not_recurse():
    t: ConfigType = ConfigType("integer")
    value: Any = 1
    for _ in range(5000):
        t, value = ConfigType("array", t), [value]
    assert t.accepts(value)
    assert not t.accepts([[[["x"]]]])
    assert t.full_name == "array<" * 5000 + "integer" + ">" * 5000


def test_type_inferred_from_the_default():
    assert infer_type("x") == ConfigType("string")
    assert infer_type(3) == ConfigType("integer")
    assert infer_type(False) == ConfigType("boolean")
    assert infer_type({"a": 1}) == ConfigType("object")
    assert infer_type(["a", "b"]) == ConfigType("array", ConfigType("string"))
    assert infer_type([1, "a"]) == ConfigType("array")  # mixed: only "an array"
    assert infer_type([]) == ConfigType("array")
    assert infer_type(0.5) is None and infer_type(None) is None
    p = proj(replicas={"default": 1}, name={"default": "web"}, tags={"default": ["a"]}, ratio={"default": 0.5})
    e = entries(
        typed("myproj:replicas", "three", ENV),
        typed("myproj:name", 42),
        typed("myproj:tags", ["b", 2]),
        typed("myproj:ratio", "anything"),  # a float default infers no type: not checked
    )
    assert messages(validate(p, "dev", e)) == [
        "Stack 'dev' with configuration key 'name' must be of type 'string'",
        "Stack 'dev' with configuration key 'replicas' must be of type 'integer'",
        "Stack 'dev' with configuration key 'tags' must be of type 'array<string>'",
    ]


def test_project_defaults_are_not_checked_against_the_stack_and_untyped_keys_not_at_all():
    p = proj(free={"description": "anything goes"}, d={"type": "integer", "default": 1})
    e = entries(typed("myproj:free", {"any": ["thing"]}), typed("myproj:d", 1, "project default"))
    assert validate(p, "dev", e) == []


# -- secrets --------------------------------------------------------------------------------


def test_secret_key_with_a_plain_value():
    p = proj(dbPassword={"type": "string", "secret": True})
    problems = validate(p, "dev", entries(typed("myproj:dbPassword", "hunter2")))
    assert messages(problems) == [
        "Stack 'dev' with configuration key 'dbPassword' must be encrypted as it's secret"
    ]
    assert "pulumi config set --secret dbPassword" in problems[0].hint
    # From an environment: the fix is fn::secret there.
    problems = validate(p, "dev", entries(typed("myproj:dbPassword", "hunter2", ENV)))
    assert problems[0].source == ENV and "fn::secret" in problems[0].hint
    assert all("hunter2" not in p.describe() for p in problems)


def test_secret_key_with_a_stack_secure_value_is_fine_whatever_its_type():
    p = proj(dbPassword={"type": "integer", "secret": True})
    encrypted = ConfigEntry("myproj:dbPassword", "[secret]", True, "stack file", encrypted=True)
    assert validate(p, "dev", entries(encrypted)) == []


def test_secret_key_with_an_esc_secret_is_fine_and_still_type_checked():
    p = proj(dbPassword={"type": "string", "secret": True}, pin={"type": "integer", "secret": True})
    e = entries(
        typed("myproj:dbPassword", "hunter2", ENV, secret=True),
        typed("myproj:pin", "not-a-number", ENV, secret=True),
    )
    problems = validate(p, "dev", e)
    assert messages(problems) == ["Stack 'dev' with configuration key 'pin' must be of type 'integer'"]
    assert "not-a-number" not in problems[0].describe()


def test_the_secret_rule_comes_first_one_problem_per_key():
    p = proj(pin={"type": "integer", "secret": True})
    assert messages(validate(p, "dev", entries(typed("myproj:pin", "abc")))) == [
        "Stack 'dev' with configuration key 'pin' must be encrypted as it's secret"
    ]


def test_text_only_and_unknown_values_are_not_type_checked():
    p = proj(n={"type": "integer"}, s={"type": "string", "secret": True})
    # What the CLI delivered in PULUMI_CONFIG: text only (the CLI validated it itself).
    text = ConfigEntry("myproj:n", "not a number", False, "stack file")
    # A check-mode unknown: neither its type nor its secrecy is known yet.
    unknown = ConfigEntry("myproj:s", "[unknown]", False, ENV)
    assert validate(p, "dev", entries(text, unknown)) == []
    # A text-only value of a secret key still needs its secrecy.
    plain = ConfigEntry("myproj:s", "x", False, "stack file")
    assert len(validate(p, "dev", entries(text, plain))) == 1


# -- declarations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"type": "int"}, "config key 'k' in Pulumi.yaml has an unknown type 'int'"),
        ({"type": None}, "config key 'k' in Pulumi.yaml has an unknown type None"),
        ({"type": "array"}, "config key 'k' in Pulumi.yaml declares an array but does not say the type"),
        ({"type": "array", "items": {"type": "list"}}, "config key 'k' in Pulumi.yaml (its items) has an unknown type 'list'"),
        ({"type": "array", "items": "string"}, "config key 'k' in Pulumi.yaml: 'items' must be a mapping"),
        ({"type": "string", "secret": "yes"}, "config key 'k' in Pulumi.yaml: 'secret' must be true or false"),
        ({"type": "integer", "default": "x"},
         "The default value specified for configuration key 'k' is not of the expected type 'integer'"),
    ],
)
def test_declarations_the_cli_refuses(spec, words):
    p = proj(k=spec, ok={"type": "string"})
    problems = validate(p, "dev", entries(typed("myproj:k", "v"), typed("myproj:ok", "v")))
    assert len(problems) == 1 and problems[0].message.startswith(words), problems
    assert problems[0].source == SOURCE_PROJECT and problems[0].key == "myproj:k"


def test_unknown_type_names_the_key_through_raise_for():
    p = proj(replicas={"type": "int"})
    with pytest.raises(ConfigurationError) as e:
        raise_for(validate(p, "dev", {}), HINT_LOAD)
    assert "'replicas' in Pulumi.yaml has an unknown type 'int'" in str(e.value)
    assert "string, integer, boolean, array" in str(e.value)


# -- raise_for ------------------------------------------------------------------------------


def test_raise_for_lists_every_error_then_the_hint_and_never_a_secret():
    p = proj(a={"type": "string"}, n={"type": "integer"}, pw={"type": "string", "secret": True})
    e = entries(typed("myproj:n", "many", ENV), typed("myproj:pw", "hunter2"))
    with pytest.raises(ConfigurationError) as exc:
        raise_for(validate(p, "dev", e), HINT_CLI)
    lines = str(exc.value).splitlines()
    assert lines == [
        "Stack 'dev' with configuration key 'n' must be of type 'integer' (from environment myproj/app)",
        "Stack 'dev' with configuration key 'pw' must be encrypted as it's secret (from the stack file; "
        "set it with: pulumi config set --secret pw)",
        "Stack 'dev' is missing configuration value 'a' (set it in the stack file or in an "
        "environment's pulumiConfig, or give its declaration a default)",
        "to skip these checks, pass --skip-config-validation",
    ]
    assert "hunter2" not in str(exc.value) and "many" not in str(exc.value)


def test_raise_for_ignores_warnings_and_no_problems():
    raise_for([], HINT_LOAD)
    p = proj(n={"type": "integer"})
    warning = diy_warning(p, "dev", entries(typed("myproj:n", 1, ENV)))
    assert warning is not None and warning.severity == WARNING
    raise_for([warning], HINT_LOAD)


# -- the DIY preflight ----------------------------------------------------------------------


def test_diy_preflight_is_what_the_cli_raises_on_the_stack_file_alone():
    p = proj(
        replicas={"type": "integer"},
        region={"type": "string", "default": "us-east-1"},
        name={"type": "string"},
        port={"type": "integer"},
    )
    merged = entries(
        typed("myproj:replicas", 3, ENV),
        typed("myproj:region", "eu-west-1", ENV),  # replaces the default; the CLI sees the default
        typed("myproj:name", "web"),
        typed("myproj:port", "eighty"),  # a stack value: wrong in both views
    )
    assert messages(validate(p, "dev", merged)) == [
        "Stack 'dev' with configuration key 'port' must be of type 'integer'"
    ]
    assert messages(diy_preflight(p, "dev", merged)) == [
        "Stack 'dev' with configuration key 'port' must be of type 'integer'",
        "Stack 'dev' is missing configuration value 'replicas'",
    ]
    assert esc_only_keys(p, merged) == ["myproj:replicas"]


def test_diy_warning_names_the_keys_quotes_the_cli_and_says_what_to_do():
    p = proj(replicas={"type": "integer"}, tags={"type": "array", "items": {"type": "string"}},
             missing={"type": "string"})
    merged = entries(typed("myproj:replicas", 3, ENV), typed("myproj:tags", ["a"], ENV))
    w = diy_warning(p, "dev", merged, backend="s3://state")
    assert w is not None
    assert w.severity == WARNING and w.keys == ("myproj:replicas", "myproj:tags")
    assert w.message.startswith("only ESC supplies 'replicas' and 'tags' (declared in Pulumi.yaml without a default)")
    assert "on the DIY backend s3://state `pulumi up` validates the config before the program runs" in w.message
    # The CLI's own message names every key it misses, the one missing everywhere too.
    assert "stops with: Stack 'dev' is missing configuration values 'missing', 'replicas', and 'tags'." in w.message
    assert "`default:`" in w.message and "remove them from Pulumi.yaml" in w.message
    assert "esc-pulumi run -- pulumi up" in w.message
    # Nothing only ESC supplies: no warning.
    assert diy_warning(p, "dev", entries(typed("myproj:replicas", 3), typed("myproj:tags", ["a"]))) is None


def test_state_backend_as_the_cli_picks_it(tmp_path):
    project_file = tmp_path / "Pulumi.yaml"
    project_file.write_text("name: p\nruntime: python\nbackend:\n  url: gs://bucket\n")
    creds = tmp_path / "home"
    creds.mkdir()
    (creds / "credentials.json").write_text('{"current": "azblob://container"}')
    env = {"PULUMI_CREDENTIALS_PATH": str(creds)}
    assert state_backend(project_file, {**env, "PULUMI_BACKEND_URL": "s3://b"}) == ("s3://b", "PULUMI_BACKEND_URL")
    assert state_backend(project_file, env) == ("gs://bucket", "Pulumi.yaml backend.url")
    assert state_backend(None, env)[0] == "azblob://container"
    assert state_backend(None, {"PULUMI_CREDENTIALS_PATH": str(tmp_path / "none")}) == (None, "")
    assert [is_diy_backend(u) for u in ("file://~", "s3://b", "azblob://c", "gs://d", "https://api.pulumi.com")] == [
        True, True, True, True, False
    ]


# -- end to end: files -> compute_config -> validate ----------------------------------------


PROJECT_YAML = """\
name: myproj
runtime: python
config:
  replicas:
    type: integer
  ratio:
    type: integer
  enabled:
    type: boolean
    default: false
  dbPassword:
    type: string
    secret: true
  apiKey:
    type: string
    secret: true
  tags:
    type: array
    items:
      type: string
  region:
    default: us-east-1
"""


def test_from_the_files_through_compute_config(project):
    root = project(
        "config:\n"
        "  esc:environments: [myproj/app]\n"
        "  myproj:ratio: 3.0\n"  # a yaml.v3 float: not an integer
        "  myproj:enabled: 'true'\n"  # the text "true" passes as a boolean
        "  myproj:apiKey:\n"
        "    secure: v1:AAAA:BBBB\n",
        project_yaml=PROJECT_YAML,
    )
    plan = make_plan("dev", root, backend=f"file://{root / 'envs'}")
    opened = OpenedEnvironment(
        Value({"pulumiConfig": from_plain({"replicas": 2, "tags": ["a", 1], "region": 7, "dbPassword": "pw"})})
    )
    result = compute_config(plan, opened)
    problems = validate(read_project(root / "Pulumi.yaml"), "dev", result.entries)
    assert [(p.key, p.source, p.message) for p in problems] == [
        ("myproj:dbPassword", "environment", "Stack 'dev' with configuration key 'dbPassword' must be encrypted as it's secret"),
        ("myproj:ratio", "stack file", "Stack 'dev' with configuration key 'ratio' must be of type 'integer'"),
        ("myproj:region", "environment", "Stack 'dev' with configuration key 'region' must be of type 'string'"),
        ("myproj:tags", "environment", "Stack 'dev' with configuration key 'tags' must be of type 'array<string>'"),
    ]
    # An ESC secret satisfies `secret: true`; the stack's {secure:} value is a present secret.
    fixed = OpenedEnvironment(
        Value({"pulumiConfig": from_plain({
            "replicas": 2, "ratio": 3, "tags": ["a"], "region": "eu-west-1",
            "dbPassword": Value("pw", secret=True),
        })})
    )
    (root / "Pulumi.dev.yaml").write_text(
        "config:\n  esc:environments: [myproj/app]\n  myproj:apiKey:\n    secure: v1:AAAA:BBBB\n"
    )
    plan = make_plan("dev", root, backend=f"file://{root / 'envs'}")
    result = compute_config(plan, fixed)
    project_ = read_project(root / "Pulumi.yaml")
    assert validate(project_, "dev", result.entries) == []
    # Plain `pulumi up` on a DIY backend sees none of it: region falls back to its default.
    assert messages(diy_preflight(project_, "dev", result.entries)) == [
        "Stack 'dev' is missing configuration values 'dbPassword', 'ratio', 'replicas', and 'tags'"
    ]
