"""``esc-pulumi open``: every output format byte for byte as the esc CLI prints it (section 9 of
the language spec). Expected texts are written by hand from the spec, not produced by the code."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from .conftest import run_script

EXPECTED_JSON = """\
{
  "bool": true,
  "environmentVariables": {
    "DOLLAR": "cost $5",
    "FLAG": false,
    "NIL": null,
    "NUM": 8080,
    "OBJ": {
      "ignored": true
    },
    "PLAIN": "plain value",
    "PW": "[secret]",
    "QUOTED": "a \\"b\\" \\\\c"
  },
  "files": {
    "KEY_FILE": "key-data"
  },
  "float": 1.5,
  "html": "\\u003cb\\u003e\\u0026\\u003c/b\\u003e",
  "list": [
    1,
    "two"
  ],
  "multi": "line1\\nline2",
  "nested": {
    "a": 1,
    "b": 2
  },
  "nothing": null,
  "num": 42,
  "quote": "say \\"hi\\"",
  "secret": "[secret]",
  "str": "hello",
  "yes": "yes"
}
"""

EXPECTED_YAML = """\
bool: true
environmentVariables:
  DOLLAR: cost $5
  FLAG: false
  NIL: null
  NUM: 8080
  OBJ:
    ignored: true
  PLAIN: plain value
  PW: '[secret]'
  QUOTED: a "b" \\c
files:
  KEY_FILE: key-data
float: 1.5
html: <b>&</b>
list:
  - 1
  - two
multi: |-
  line1
  line2
nested:
  a: 1
  b: 2
nothing: null
num: 42
quote: say "hi"
secret: '[secret]'
str: hello
"yes": "yes"
"""

EXPECTED_DOTENV = """\
DOLLAR="cost $5"
FLAG="false"
NIL=""
NUM="8080"
PLAIN="plain value"
PW="[secret]"
QUOTED="a \\"b\\" \\\\c"
KEY_FILE="[unknown]"
"""

def _small_range(b: tuple[int, int, int], e: tuple[int, int, int], env: str = "myproj/small") -> dict:
    return {"environment": env, "begin": dict(zip(("line", "column", "byte"), b)),
            "end": dict(zip(("line", "column", "byte"), e))}


_NOWHERE = _small_range((0, 0, 0), (0, 0, 0))
_NAME = {"value": {"name": {"value": "myproj/small", "trace": {"def": _NOWHERE}}}, "trace": {"def": _NOWHERE}}
_NAME_SCHEMA = {"properties": {"name": {"type": "string", "const": "myproj/small"}}, "type": "object",
                "required": ["name"]}
# `open myproj/small --format detailed`: the API's Environment of myproj/small ("values:\n  a: x\n"),
# every struct's fields in the reference's Go order (written here in that order), 2-space indent.
EXPECTED_DETAILED_SMALL = json.dumps({
    "exprs": {"a": {"range": _small_range((2, 6, 13), (2, 7, 14)), "schema": {"type": "string", "const": "x"},
                    "literal": "x"}},
    "properties": {"a": {"value": "x", "trace": {"def": _small_range((2, 6, 13), (2, 7, 14))}}},
    "schema": {"properties": {"a": {"type": "string", "const": "x"}}, "type": "object", "required": ["a"]},
    "executionContext": {
        "properties": {"currentEnvironment": _NAME, "rootEnvironment": _NAME},
        "schema": {"properties": {"currentEnvironment": _NAME_SCHEMA, "rootEnvironment": _NAME_SCHEMA},
                   "type": "object", "required": ["currentEnvironment", "rootEnvironment"]},
    },
}, indent=2) + "\n"


def open_(tmp_path: Path, env: dict[str, str], *args: str):
    return run_script(["open", *args], cwd=tmp_path, env=env)


def test_json_is_the_default_format(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt")
    assert (r.code, r.err) == (0, "")
    assert r.out == EXPECTED_JSON


def test_yaml(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "--format", "yaml")
    assert (r.code, r.err) == (0, "")
    assert r.out == EXPECTED_YAML


def test_dotenv_redacted(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "--format", "dotenv")
    assert (r.code, r.err) == (0, "")
    assert r.out == EXPECTED_DOTENV


def test_shell_redacted(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "-f", "shell")
    assert r.code == 0
    assert r.out == "".join("export " + line + "\n" for line in EXPECTED_DOTENV.splitlines())


def test_dotenv_revealed_writes_the_files(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "--format", "dotenv", "--show-secrets")
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[:7] == [
        'DOLLAR="cost $5"',
        'FLAG="false"',
        'NIL=""',
        'NUM="8080"',
        'PLAIN="plain value"',
        'PW="hunter2"',
        'QUOTED="a \\"b\\" \\\\c"',
    ]
    assert len(lines) == 8 and lines[7].startswith('KEY_FILE="') and lines[7].endswith('"')
    path = Path(lines[7][len('KEY_FILE="') : -1])
    try:
        assert path.name.startswith("esc-")
        assert path.read_text() == "key-data"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        path.unlink()


def test_shell_revealed(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/app", "--format", "shell", "--show-secrets")
    assert r.code == 0
    assert r.out == 'export AWS_REGION="us-west-2"\nexport DB_PASSWORD="s3cr3t-pw"\n'


def test_string_includes_merged_keys(tmp_path, backend_env):
    # obj = {foo: bar} from the import, {hello: world} from app itself.
    r = open_(tmp_path, backend_env, "myproj/app", "obj", "--format", "string")
    assert (r.code, r.out) == (0, '"foo"="bar","hello"="world"\n')


def test_string_of_scalars_and_arrays(tmp_path, backend_env):
    assert open_(tmp_path, backend_env, "myproj/fmt", "list", "-f", "string").out == '"1","two"\n'
    assert open_(tmp_path, backend_env, "myproj/fmt", "num", "-f", "string").out == "42\n"
    assert open_(tmp_path, backend_env, "myproj/fmt", "secret", "-f", "string").out == "[secret]\n"
    r = open_(tmp_path, backend_env, "myproj/fmt", "secret", "-f", "string", "--show-secrets")
    assert r.out == "hunter2\n"


def test_path_selects_a_value(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "nested")
    assert r.out == '{\n  "a": 1,\n  "b": 2\n}\n'
    r = open_(tmp_path, backend_env, "myproj/fmt", 'environmentVariables["PLAIN"]')
    assert r.out == '"plain value"\n'
    r = open_(tmp_path, backend_env, "myproj/fmt", "list[1]", "--format", "yaml")
    assert r.out == "two\n"


def test_missing_path_prints_null(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "no.such[3]")
    assert (r.code, r.out) == (0, "null\n")


def test_detailed_root(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/small", "--format", "detailed")
    assert (r.code, r.err) == (0, "")
    assert r.out == EXPECTED_DETAILED_SMALL


def test_detailed_whole_environment_redacts_its_model(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/app", "--format", "detailed")
    assert (r.code, r.err) == (0, "")
    model = json.loads(r.out)
    assert list(model) == ["exprs", "properties", "schema", "executionContext"]
    # The environment's own expressions, each on top of what it overrides in its import.
    assert sorted(model["exprs"]) == ["environmentVariables", "greeting", "obj", "pulumiConfig"]
    obj = model["exprs"]["obj"]
    assert obj["base"]["range"]["environment"] == "myproj/base"
    assert obj["object"]["hello"]["literal"] == "world"
    assert model["properties"]["password"] == {
        "value": "[secret]", "secret": True, "trace": model["properties"]["password"]["trace"]}
    assert model["schema"]["properties"]["password"] == {"type": "string"}
    assert model["executionContext"]["properties"]["rootEnvironment"]["value"]["name"]["value"] == "myproj/app"
    assert "s3cr3t-pw" not in r.out
    r = open_(tmp_path, backend_env, "myproj/app", "--format", "detailed", "--show-secrets")
    model = json.loads(r.out)
    assert model["properties"]["password"]["value"] == "s3cr3t-pw"
    assert model["schema"]["properties"]["password"] == {"type": "string", "const": "s3cr3t-pw"}


def test_detailed_with_a_path_is_that_value(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "nested", "--format", "detailed")
    assert r.code == 0
    assert list(json.loads(r.out)) == ["value", "trace"]


def test_detailed_of_a_stack_of_several_environments_is_the_composition(tmp_path, project):
    from .conftest import write

    write(project / "Pulumi.two.yaml",
          "config:\n  esc:backend: file://../envs\n  esc:environments: [myproj/small, myproj/base]\n")
    r = run_script(["open", "--stack", "two", "--format", "detailed"], cwd=project, env={})
    assert r.code == 0, r.err
    model = json.loads(r.out)
    # An anonymous composition defines nothing itself: no exprs, the merged properties.
    assert list(model) == ["properties", "schema", "executionContext"]
    assert set(model["properties"]) == {"a", "region", "obj", "password"}
    assert model["executionContext"]["properties"]["rootEnvironment"]["value"]["name"]["value"] == "<yaml>"


def test_detailed_redacts_secrets(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "secret", "--format", "detailed")
    assert r.code == 0
    assert r.out.startswith('{\n  "value": "[secret]",\n  "secret": true,\n  "trace": {\n')
    assert "hunter2" not in r.out
    r = open_(tmp_path, backend_env, "myproj/fmt", "secret", "--format", "detailed", "--show-secrets")
    assert r.out.startswith('{\n  "value": "hunter2",\n  "secret": true,\n  "trace": {\n')


def test_secrets_only_with_show_secrets(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "--show-secrets")
    assert '"secret": "hunter2"' in r.out and '"PW": "hunter2"' in r.out
    for fmt in ("json", "yaml", "dotenv", "shell", "string", "detailed"):
        r = open_(tmp_path, backend_env, "myproj/fmt", "--format", fmt)
        assert r.code == 0, fmt
        assert "hunter2" not in r.out + r.err, fmt


def test_unknown_format(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/fmt", "--format", "flat")
    assert r.code != 0 and r.out == ""
    assert r.err == 'esc-pulumi: unknown output format "flat"\n'


def test_definition_errors_as_esc_prints_them(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "myproj/bad")
    assert r.code != 0 and r.out == ""
    # The file as the backend URL names it (here an absolute file:// path).
    assert r.err == (
        f'{tmp_path}/envs/myproj/bad.yaml:4:8: unknown property "nope"\n'
        f"{tmp_path}/envs/myproj/bad.yaml:5:14: receiver must be an array or an object\n"
    )


def test_default_project_and_bare_names(tmp_path, backend_env):
    r = open_(tmp_path, backend_env, "plain")
    assert (r.code, r.out) == (0, '{\n  "hello": "world"\n}\n')


def test_absolute_store_from_another_directory(tmp_path, backend_env):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run_script(["open", "myproj/base", "region", "-f", "string"], cwd=elsewhere, env=backend_env)
    assert (r.code, r.out) == (0, "us-west-2\n")


@pytest.mark.parametrize(
    "args, message",
    [
        (["open", "myproj/missing"], "not found"),
        (["open", "a/b/c"], "no organization is set here"),
        (["open", "a/b/c/d"], "invalid environment reference"),
        (["open", "myproj/fmt", "a b"], "invalid property path"),
    ],
)
def test_errors_are_one_line(tmp_path, backend_env, args, message):
    r = run_script(args, cwd=tmp_path, env=backend_env)
    assert r.code != 0 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("esc-pulumi: ") and message in r.err
    assert "Traceback" not in r.err


def test_no_ref_outside_a_project(tmp_path, backend_env):
    r = run_script(["open"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and "Pulumi.yaml" in r.err and r.err.count("\n") == 1


def test_infinity_is_never_printed_as_invalid_json(tmp_path):
    import json as _json

    from .conftest import run_script, write

    write(tmp_path / "envs" / "myproj" / "e.yaml", "values:\n  f: .inf\n  ok: 1\n")
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    r = run_script(["open", "myproj/e"], cwd=tmp_path, env=env)
    assert r.code == 1 and r.out == ""
    assert "+Inf" in r.err and "myproj/e:2:6" in r.err and "--format yaml" in r.err
    r = run_script(["open", "myproj/e", "ok"], cwd=tmp_path, env=env)
    assert r.code == 0 and _json.loads(r.out) == 1
    r = run_script(["open", "myproj/e", "-f", "yaml"], cwd=tmp_path, env=env)
    assert r.code == 0 and "f: .inf" in r.out


def test_the_esc_cli_s_org_project_env_form(tmp_path):
    from .conftest import run_script, write

    write(tmp_path / "envs" / "infra" / "dev.yaml", "values:\n  a: 1\n")
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}", "ESC_PULUMI_ORGANIZATION": "acme"}
    r = run_script(["open", "acme/infra/dev", "a"], cwd=tmp_path, env=env)
    assert (r.code, r.out.strip()) == (0, "1"), r.err
    r = run_script(["open", "other/infra/dev"], cwd=tmp_path, env=env)
    assert r.code == 1 and "'other'" in r.err and "'acme'" in r.err
    env.pop("ESC_PULUMI_ORGANIZATION")
    r = run_script(["open", "acme/infra/dev", "a"], cwd=tmp_path, env=env)  # nothing to check it against
    assert r.code == 1 and "no organization is set" in r.err and "ESC_PULUMI_ORGANIZATION" in r.err


def test_an_environment_without_values_prints_nothing(tmp_path):
    from .conftest import run_script, write

    write(tmp_path / "envs" / "p" / "empty.yaml", "")
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    for fmt in ("json", "yaml", "detailed", "dotenv"):
        r = run_script(["open", "p/empty", "-f", fmt], cwd=tmp_path, env=env)
        assert (r.code, r.out) == (0, ""), (fmt, r.err)


def test_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    from .conftest import run_script, write

    write(tmp_path / "envs" / "p" / "e.yaml", "values:\n  a: [1, 2\n  b: 3\n")
    env = {"ESC_PULUMI_BACKEND": "file://envs"}
    r = run_script(["open", "p/e"], cwd=tmp_path, env=env)
    assert r.code == 1
    assert r.err.splitlines()[0] == "envs/p/e.yaml:2:6: yaml: did not find expected ',' or ']' (while parsing a flow sequence that starts here)"


def test_local_paths_are_shown_as_the_url_gives_them(tmp_path):
    from .conftest import run_script, write

    store = tmp_path / "store"
    write(store / "p" / "e.yaml", "values: {a: 1}\n")
    elsewhere = tmp_path / "a" / "b" / "c"
    elsewhere.mkdir(parents=True)
    r = run_script(["open", "p/missing"], cwd=elsewhere, env={"ESC_PULUMI_BACKEND": f"file://{store}"})
    assert r.code == 1 and f"no file {store}/p/missing.yaml" in r.err and "../" not in r.err


def _def(line: int, begin: tuple[int, int], end: tuple[int, int]) -> dict:
    return {
        "environment": "myproj/fmt",
        "begin": {"line": line, "column": begin[0], "byte": begin[1]},
        "end": {"line": line, "column": end[0], "byte": end[1]},
    }


def test_detailed_ranges_are_the_references(tmp_path, backend_env):
    """The traces follow the reference's ranges (spec section 10): a quoted scalar ends as many
    columns after its quote as its decoded value is long; a flow list ends with its last item.
    Byte offsets worked out by hand from myproj/fmt.yaml (see conftest)."""
    import json

    r = open_(tmp_path, backend_env, "myproj/fmt", "quote", "--format", "detailed")
    assert r.code == 0
    # line 8: "  quote: 'say \"hi\"'", at byte 92; the value is 8 bytes long
    assert json.loads(r.out) == {"value": 'say "hi"', "trace": {"def": _def(8, (10, 101), (18, 109))}}
    r = open_(tmp_path, backend_env, "myproj/fmt", "list", "--format", "detailed")
    assert r.code == 0
    # line 11: "  list: [1, two]", at byte 149
    assert json.loads(r.out) == {
        "value": [
            {"value": 1, "trace": {"def": _def(11, (10, 158), (11, 159))}},
            {"value": "two", "trace": {"def": _def(11, (13, 161), (16, 164))}},
        ],
        "trace": {"def": _def(11, (9, 157), (16, 164))},
    }
