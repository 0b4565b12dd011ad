"""Unit tests of esc_pulumi.formats and esc_pulumi.projection (expected texts by hand, from the
esc CLI's rules: Go's encoding/json, yaml.v3, strconv.Quote)."""
from __future__ import annotations

import sys

import pytest

from esc_pulumi.errors import EscError
from esc_pulumi.esc import Value
from esc_pulumi.esc.values import from_plain
from esc_pulumi.cli.formats import FORMATS, go_json_indent, render, string_text, yaml_text
from esc_pulumi.runtime.projection import ProjectedValue, Projection, project, secret_texts


def env(**values):
    return from_plain(values)


# -- json ---------------------------------------------------------------------------------------


def test_json_go_escaping_and_numbers():
    data = {"s": "<a href='x'>&</a>", "u": "é\u2028", "c": "\x01\t", "f": 1e21, "g": 0.000001, "h": 2.0, "i": 10**20}
    assert go_json_indent(data) == (
        "{\n"
        '  "c": "\\u0001\\t",\n'
        '  "f": 1e+21,\n'
        '  "g": 1e-06,\n'
        '  "h": 2,\n'
        '  "i": 100000000000000000000,\n'
        '  "s": "\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e",\n'
        '  "u": "é\\u2028"\n'
        "}"
    )


def test_json_empty_containers_and_scalars():
    assert go_json_indent({"a": {}, "b": []}) == '{\n  "a": {},\n  "b": []\n}'
    assert render(from_plain(None), "json", show_secrets=False, environment="") == "null\n"
    assert render(from_plain("x"), "json", show_secrets=False, environment="") == '"x"\n'


def test_json_deep_nesting_does_not_recurse():
    data: object = "leaf"
    for _ in range(5000):
        data = [data]
    text = go_json_indent(data)
    assert text.count("[") == 5000 and '"leaf"' in text


# -- yaml ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, shown",
    [
        ("hello world", "hello world"),
        ("123", '"123"'),
        ("1.5", '"1.5"'),
        ("-7", '"-7"'),
        ("0x1F", '"0x1F"'),
        ("1_000", '"1_000"'),
        (".5", '".5"'),
        ("1e3", '"1e3"'),
        ("true", '"true"'),
        ("False", '"False"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("", '""'),
        ("yes", '"yes"'),
        ("off", '"off"'),
        ("y", '"y"'),
        ("2001-12-14", '"2001-12-14"'),
        ("1:20", '"1:20"'),
        (".inf", '".inf"'),
        ("- a", "'- a'"),
        ("a: b", "'a: b'"),
        ("a #b", "'a #b'"),
        ("a#b", "a#b"),
        (" lead", "' lead'"),
        ("trail ", "'trail '"),
        ("'q", "'''q'"),
        ("[x]", "'[x]'"),
        ("*star", "'*star'"),
        ("it's", "it's"),
        ("tab\there", '"tab\\there"'),
        ("é😀", "é😀"),
        ("bell\x07", '"bell\\a"'),
        ("1.2.3", "1.2.3"),
        ("v1", "v1"),
        ("$HOME/x", "$HOME/x"),
    ],
)
def test_yaml_string_styles(text, shown):
    assert yaml_text({"k": text}) == f"k: {shown}\n"


def test_yaml_literal_blocks():
    assert yaml_text({"k": "a\nb"}) == "k: |-\n  a\n  b\n"
    assert yaml_text({"k": "a\nb\n"}) == "k: |\n  a\n  b\n"
    assert yaml_text({"k": "\n"}) == 'k: "\\n"\n'


def test_yaml_scalars_and_containers():
    assert yaml_text({"i": 8080, "f": 1e6, "b": False, "z": None, "e": {}, "l": []}) == (
        "b: false\ne: {}\nf: 1e+06\ni: 8080\nl: []\nz: null\n"
    )
    assert yaml_text({"a": [1, [2, 3], {"p": 1, "q": 2}]}) == (
        "a:\n  - 1\n  - - 2\n    - 3\n  - p: 1\n    q: 2\n"
    )
    assert yaml_text("top") == "top\n"
    assert yaml_text(None) == "null\n"
    assert yaml_text("") == '""\n'
    assert yaml_text([]) == "[]\n"


def test_yaml_key_order_is_yaml_v3s():
    # Digit runs compare as numbers; non-letters sort before letters unless after a digit.
    assert yaml_text({k: 1 for k in ["b", "aB", "a10", "a2", "a_b"]}) == "a_b: 1\na2: 1\na10: 1\naB: 1\nb: 1\n"
    assert yaml_text({"true": 1, "yes": 2}) == '"true": 1\n"yes": 2\n'


# -- string -------------------------------------------------------------------------------------


def test_string_conversion():
    v = env(a=1, b=[True, None, "x y"], c={"q": 'say "hi"'}, s=Value("pw", secret=True))
    assert string_text(v, redact=True) == (
        '"a"="1","b"="\\"true\\",\\"\\",\\"x y\\"","c"="\\"q\\"=\\"say \\\\\\"hi\\\\\\"\\"","s"="[secret]"'
    )
    assert string_text(v.repr["s"], redact=False) == "pw"
    assert string_text(Value(None, unknown=True), redact=True) == "[unknown]"
    assert string_text(Value(None, secret=True, unknown=True), redact=True) == "[secret]"


# -- dotenv / shell -----------------------------------------------------------------------------


def test_dotenv_quoting():
    v = env(environmentVariables={"B": "line\nnext", "A": "tab\t\"q\" \\ $x é", "C": 1.5})
    assert render(v, "dotenv", show_secrets=False, environment="") == (
        'A="tab\\t\\"q\\" \\\\ $x é"\nB="line\\nnext"\nC="1.5"\n'
    )
    assert render(v, "shell", show_secrets=False, environment="").startswith('export A="tab')


def test_dotenv_without_projection_is_empty():
    assert render(env(a=1), "dotenv", show_secrets=True, environment="") == ""


def test_unknown_format():
    with pytest.raises(EscError, match='^unknown output format "flat"$'):
        render(env(), "flat", show_secrets=False, environment="")
    assert FORMATS == ("json", "yaml", "dotenv", "shell", "string", "detailed")


# -- projection ---------------------------------------------------------------------------------


def test_projection_rules():
    v = env(
        environmentVariables={
            "S": "s",
            "B": True,
            "N": 3,
            "F": 0.5,
            "Z": None,
            "O": {"x": 1},
            "L": [1],
            "P": Value("pw", secret=True),
        },
        files={"K": "data"},
    )
    p = project(v)
    assert {k: (x.text, x.secret) for k, x in p.variables.items()} == {
        "S": ("s", False),
        "B": ("true", False),
        "N": ("3", False),
        "F": ("0.5", False),
        "Z": ("", False),
        "P": ("pw", True),
    }
    assert p.files == {"K": ProjectedValue("data", False)}
    assert p.secrets == ["pw"]
    assert project(env(a=1)) == Projection({}, {})


def test_projection_repr_hides_secrets():
    p = project(env(environmentVariables={"P": Value("hunter2", secret=True), "Q": "open"}))
    assert "hunter2" not in repr(p) and "hunter2" not in str(p)
    assert "[secret]" in repr(p) and "'open'" in repr(p)


def test_unknown_entry_is_an_error_naming_it():
    v = env(environmentVariables={"TOKEN": Value(None, unknown=True)})
    with pytest.raises(EscError, match="environmentVariables.TOKEN"):
        project(v)
    assert render(env(environmentVariables={"T": Value(None, secret=True, unknown=True)}), "dotenv",
                  show_secrets=False, environment="") == 'T="[secret]"\n'


def test_secret_texts():
    v = env(
        a=Value("short", secret=True),
        b=Value({"x": Value("inner"), "n": Value(42)}, secret=True),
        c=[Value("longer-secret", secret=True), "plain"],
        d=Value(None, unknown=True, secret=True),
    )
    assert secret_texts(v) == ["longer-secret", "inner", "short", "42"]


def test_yaml_integers_past_int64_and_float64():
    assert yaml_text({"k": 9223372036854775807}) == "k: 9223372036854775807\n"
    assert yaml_text({"k": 10**23}) == "k: 1e+23\n"  # Float64(), as yaml.v3 writes a json.Number
    huge = int("f" * 4000, 16)  # past float64 and Python's 4300-digit guard
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        digits = str(huge)
    finally:
        sys.set_int_max_str_digits(saved)
    assert yaml_text({"k": huge}) == f'k: "{digits}"\n'
