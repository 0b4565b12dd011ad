"""The wrapper's stack config file (esc_pulumi.workspace.config_file): the typed YAML writer read
back with the CLI's yaml.v3 rules, and the merge of the stack file with ESC's pulumiConfig."""
from __future__ import annotations

import math
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esc_pulumi.errors import ConfigurationError, MappingError
from esc_pulumi.esc import Value
from esc_pulumi.esc.values import JSONNumber, from_plain
from esc_pulumi.esc.nodes import node_data
from esc_pulumi.esc.syntax import parse_yaml
from esc_pulumi.workspace.config_file import (
    SecretText,
    merge_stack_config,
    write_private_file,
    yaml_document,
    yaml_flow,
)


def read_back(text: str):
    node, diagnostics = parse_yaml(text.encode("utf-8"), "f.yaml")
    assert not [d.summary for d in diagnostics if d.is_error]
    return node_data(node)


def fake_encrypt(secrets):
    return [f"CT[{s.key}]" for s in secrets]


text_chars = st.characters(blacklist_categories=("Cs",))
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(text_chars, max_size=20)
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(text_chars, max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(text_chars, min_size=1, max_size=10), documents, max_size=5))
def test_yaml_document_reads_back_as_the_same_typed_data(config):
    doc = {"encryptionsalt": "v1:x", "config": config}
    back = read_back(yaml_document(doc))
    assert back == doc
    # Types too: an int stays an int, a float a float (1e6 is not re-typed as 1000000).
    def types(x):
        if isinstance(x, dict):
            return {k: types(v) for k, v in x.items()}
        if isinstance(x, list):
            return [types(v) for v in x]
        return type(x)
    assert types(back) == types(doc)


def test_strings_that_yaml_would_retype_stay_strings():
    tricky = ["yes", "no", "on", "off", "y", "~", "null", "true", "1e6", "0o17", "0x10", ".inf", "12",
              "- a", "a: b", "#c", "&x", "*x", "!t", "'q'", '"dq"', "", " lead", "trail ", "a\nb\n",
              "\t", "\x00\x1f\x7f\x85\u2028\u2029\ufeff", "é😀", "\\n", "{a: 1}", "[1]", "%TAG", "---", "..."]
    back = read_back(yaml_document({"config": {f"p:k{i}": s for i, s in enumerate(tricky)}}))
    assert list(back["config"].values()) == tricky


def test_numbers():
    assert yaml_flow(42) == "42" and yaml_flow(1e6) == "1000000.0" and yaml_flow(1000000.5) == "1000000.5"
    assert yaml_flow(1.5e-7) == "1.5e-07" and yaml_flow(2**70) == str(2**70)
    assert yaml_flow(math.inf) == ".inf" and yaml_flow(-math.inf) == "-.inf" and yaml_flow(math.nan) == ".nan"
    # A number from fn::fromJSON: an integer when its text is one.
    assert yaml_flow(JSONNumber("10")) == "10" and yaml_flow(JSONNumber("1.50")) == "1.5"
    assert read_back("a: " + yaml_flow(1e21))["a"] == 1e21
    assert yaml_document({}) == "{}\n"
    with pytest.raises(ConfigurationError, match="surrogate"):
        yaml_flow("\ud800")


def test_precedence_and_deep_merge():
    stack = {
        "p:s": "stack", "p:o": {"a": {"x": 1, "n": None}, "arr": [1], "keep": True},
        "p:scalarVsObj": "stack", "p:objVsScalar": {"a": 1},
    }
    esc = {
        "p:s": from_plain("esc"), "p:o": from_plain({"a": {"x": 2, "y": 3, "n": 5}, "arr": [2, 3], "new": "e"}),
        "p:scalarVsObj": from_plain({"a": 1}), "p:objVsScalar": from_plain("esc"), "p:only": from_plain(7),
    }
    m = merge_stack_config({"config": {}, "environment": ["x"], "encryptedkey": "k"}, stack, esc, encrypt=fake_encrypt)
    c = m.document["config"]
    assert c["p:s"] == "stack" and c["p:scalarVsObj"] == "stack" and c["p:objVsScalar"] == {"a": 1}
    assert c["p:o"] == {"a": {"x": 1, "n": None, "y": 3}, "arr": [1], "keep": True, "new": "e"}
    assert c["p:only"] == 7
    assert "environment" not in m.document and m.document["encryptedkey"] == "k"
    assert m.secret_keys == () and set(m.esc_keys) == {"p:o", "p:only"}


def test_secrets_become_secure_values():
    seen = []

    def encrypt(secrets):
        seen.extend(secrets)
        return [f"CT{i}" for i, _ in enumerate(secrets)]

    stack = {"p:merge": {"own": "x"}, "p:mixed": {"own": {"secure": "v1:stack"}}, "p:kept": {"secure": "v1:k"}}
    esc = {
        "p:pw": Value("hunter2", secret=True),
        "p:num": Value(5, secret=True),
        "p:obj": from_plain({"u": "admin", "p": Value("pa<ss", secret=True)}),
        "p:merge": from_plain({"e": Value("hidden", secret=True)}),
        "p:mixed": from_plain({"e": Value(5, secret=True), "plain": 1}),
        "p:kept": Value("esc", secret=True),
    }
    m = merge_stack_config({}, stack, esc, encrypt=encrypt)
    texts = {s.key: s.text for s in seen}
    assert texts == {
        "p:pw": "hunter2", "p:num": "5", "p:obj": '{"p":"pa\\u003css","u":"admin"}',
        "p:merge": '{"e":"hidden","own":"x"}', "p:mixed": "5",
    }
    c = m.document["config"]
    assert set(c["p:pw"]) == {"secure"} and c["p:kept"] == {"secure": "v1:k"}
    assert c["p:mixed"]["own"] == {"secure": "v1:stack"} and set(c["p:mixed"]["e"]) == {"secure"}
    assert c["p:mixed"]["plain"] == 1
    assert set(m.secret_keys) == {"p:pw", "p:num", "p:obj", "p:merge", "p:mixed"}
    text = yaml_document(m.document)
    assert "hunter2" not in text and "hidden" not in text
    assert "hunter2" not in repr(m) and "hunter2" not in repr(seen)


def test_no_encryption_without_secrets():
    def refuse(secrets):
        raise AssertionError("nothing to encrypt")

    merge_stack_config({}, {"p:a": 1}, {"p:b": from_plain("x")}, encrypt=refuse)


def test_unknowns_and_short_encryptors_are_errors():
    with pytest.raises(MappingError, match="p:u"):
        merge_stack_config({}, {}, {"p:u": Value(None, unknown=True)}, encrypt=fake_encrypt)
    with pytest.raises(ConfigurationError):
        merge_stack_config({}, {}, {"p:s": Value("x", secret=True)}, encrypt=lambda s: [])


def test_secret_text_repr():
    assert "hunter2" not in repr(SecretText("p:k", "hunter2"))


def test_write_private_file(tmp_path):
    old = os.umask(0)
    try:
        p = write_private_file(tmp_path / "f.yaml", "x: 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and p.read_text() == "x: 1\n"
    with pytest.raises(FileExistsError):
        write_private_file(p, "again")
