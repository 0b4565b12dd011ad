"""Tests of esc_pulumi.esc.syntax.parse_yaml: YAML text to typed nodes with positions."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esc_pulumi.esc.diagnostics import Diagnostic, Pos, Range, Severity
from esc_pulumi.esc.nodes import (
    ArrayNode,
    BoolNode,
    Node,
    NullNode,
    NumberNode,
    ObjectNode,
    StringNode,
)
from esc_pulumi.esc.syntax import parse_yaml

from .positions import check_source_spans, span, walk

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / ".." / "shared" / "esc-golden"


# ---------------------------------------------------------------------------------------------
# helpers


def load(text: str | bytes, filename: str = "f") -> Node:
    node, diags = parse_yaml(text, filename)
    assert diags == [], diags
    assert node is not None
    return node


def value_of(text: str) -> Node:
    """The node of ``v`` in the document ``v: <text>``."""
    root = load("v: " + text + "\n")
    assert isinstance(root, ObjectNode)
    (entry,) = root.entries
    assert entry.key.value == "v"
    return entry.value


def only_error(text: str | bytes) -> Diagnostic:
    node, diags = parse_yaml(text, "f")
    assert node is None
    assert len(diags) == 1, diags
    assert diags[0].severity is Severity.ERROR
    return diags[0]


def to_plain(node: Node | None):
    """The plain Python value of a tree, iteratively (trees may be very deep)."""
    if node is None:
        return None
    results: list = []
    # Work items: ("node", node) or ("build", node, count).
    work: list[tuple] = [("node", node)]
    while work:
        item = work.pop()
        if item[0] == "node":
            n = item[1]
            if isinstance(n, ObjectNode):
                work.append(("build", n, len(n.entries)))
                for e in reversed(n.entries):
                    work.append(("node", e.value))
            elif isinstance(n, ArrayNode):
                work.append(("build", n, len(n.items)))
                for x in reversed(n.items):
                    work.append(("node", x))
            elif isinstance(n, NullNode):
                results.append(None)
            else:
                results.append(n.value)  # type: ignore[attr-defined]
        else:
            _, n, count = item
            children = results[len(results) - count :] if count else []
            del results[len(results) - count :]
            if isinstance(n, ObjectNode):
                results.append({e.key.value: v for e, v in zip(n.entries, children)})
            else:
                results.append(list(children))
    (value,) = results
    return value


def depth(node: Node) -> int:
    d = 0
    while True:
        if isinstance(node, ObjectNode) and node.entries:
            node = node.entries[0].value
        elif isinstance(node, ArrayNode) and node.items:
            node = node.items[0]
        else:
            return d
        d += 1


# ---------------------------------------------------------------------------------------------
# typing of scalars


@pytest.mark.parametrize("text", ["", "~", "null", "Null", "NULL"])
def test_plain_nulls(text):
    assert isinstance(value_of(text), NullNode)


@pytest.mark.parametrize(
    "text, expected",
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False)],
)
def test_plain_bools(text, expected):
    node = value_of(text)
    assert isinstance(node, BoolNode)
    assert node.value is expected


@pytest.mark.parametrize(
    "text",
    ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "tRUE", "nULL", "nil", "none"],
)
def test_yaml11_words_are_strings(text):
    node = value_of(text)
    assert isinstance(node, StringNode)
    assert node.value == text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0", 0),
        ("42", 42),
        ("-3", -3),
        ("+12", 12),
        ("-0", 0),
        ("1_000", 1000),
        ("1__0_0", 100),
        ("0x1F", 31),
        ("0X1f", 31),
        ("-0x10", -16),
        ("0x_1F", 31),
        ("0o17", 15),
        ("0O17", 15),
        ("0b101", 5),
        ("-0b101", -5),
        ("017", 15),
        ("-017", -15),
        ("00", 0),
        ("9223372036854775807", 2**63 - 1),
        ("18446744073709551615", 2**64 - 1),
        ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_plain_integers(text, expected):
    node = value_of(text)
    assert isinstance(node, NumberNode)
    assert type(node.value) is int
    assert node.value == expected


def test_huge_integers():
    digits = "7" * 4000
    assert value_of(digits) == NumberNode(value_of(digits).environment, value_of(digits).span, int(digits))
    # Past Python's int/str conversion limit (and far past float64, where yaml.v3 gives up
    # on a number too): the text stays a string, and nothing raises.
    digits = "7" * 5000
    assert value_of(digits) == StringNode(value_of(digits).environment, value_of(digits).span, digits)
    assert value_of("0x" + "f" * 5000).value == int("f" * 5000, 16)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.5", 1.5),
        ("-1.5", -1.5),
        ("+2.", 2.0),
        ("1.0", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("+.5e1", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("2.50", 2.5),
        ("1_000.5", 1000.5),
        ("1e-400", 0.0),
        # yaml.v3: "09" is not a Go integer (bad octal digit) but it matches the float syntax.
        ("09", 9.0),
        ("-09", -9.0),
        ("089.5", 89.5),
        (".inf", math.inf),
        (".Inf", math.inf),
        (".INF", math.inf),
        ("+.inf", math.inf),
        ("-.inf", -math.inf),
        ("-.Inf", -math.inf),
        ("-.INF", -math.inf),
    ],
)
def test_plain_floats(text, expected):
    node = value_of(text)
    assert isinstance(node, NumberNode)
    assert type(node.value) is float
    assert node.value == expected


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_plain_nan(text):
    node = value_of(text)
    assert isinstance(node, NumberNode)
    assert math.isnan(node.value)


@pytest.mark.parametrize(
    "text",
    [
        "0x",  # prefix without digits
        "0b102",
        "0o8",
        "1e",
        "1e400",  # overflows float64: yaml.v3 keeps it a string
        "._5",
        ".",
        "+",
        "-a",
        "1.2.3",
        "1,000",
        "0x1p-2",
        "2001-12-14",  # timestamps stay strings
        "2001-12-14t21:59:43.10-05:00",
        "12:30:00",  # YAML 1.1 sexagesimal
        "-.nan",
        "+.NaN",
        ".infinity",
        "inf",
        "nan",
        "<<",  # merge keys are plain strings
        "1 2",
        "١٢",  # non-ASCII digits are not digits here
        "\uff11",
    ],
)
def test_plain_strings_that_look_numeric(text):
    node = value_of(text)
    assert isinstance(node, StringNode)
    assert node.value == text


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"1"', "1"),
        ("'true'", "true"),
        ('"null"', "null"),
        ("''", ""),
        ('""', ""),
        ('"0x1F"', "0x1F"),
        ("!!str 1", "1"),
        ("!!str true", "true"),
        ("!!str", ""),
        ("!!str ~", "~"),
        ("!<tag:yaml.org,2002:str> 12", "12"),
        ("!foo 12", "12"),  # local tags leave the text as it is
        ("!!binary aGVsbG8=", "aGVsbG8="),
        ("|\n  12\n", "12\n"),
        (">\n  true\n", "true\n"),
        ("|-\n  null\n", "null"),
    ],
)
def test_strings(text, expected):
    node = value_of(text)
    assert isinstance(node, StringNode)
    assert node.value == expected


def test_non_specific_tag_is_like_no_tag():
    # yaml.v3 treats the "!" tag as no tag at all.
    assert value_of("! 12") == NumberNode(value_of("! 12").environment, value_of("! 12").span, 12)
    assert isinstance(value_of('! "12"'), StringNode)


@pytest.mark.parametrize(
    "text, cls, expected",
    [
        ("!!int 12", NumberNode, 12),
        ('!!int "12"', NumberNode, 12),
        ("!!int 0x10", NumberNode, 16),
        ("!!float 1", NumberNode, 1.0),
        ("!!float '2.5'", NumberNode, 2.5),
        ("!!bool 'true'", BoolNode, True),
        ("!!bool FALSE", BoolNode, False),
        ("!!null ''", NullNode, None),
        ("!!null ~", NullNode, None),
        ("!!null", NullNode, None),
    ],
)
def test_explicit_tags(text, cls, expected):
    node = value_of(text)
    assert type(node) is cls
    if cls is not NullNode:
        assert node.value == expected  # type: ignore[attr-defined]
        assert type(node.value) is type(expected)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text, summary",
    [
        ("!!int abc", "cannot decode !!str `abc` as a !!int"),
        ("!!int 1.5", "cannot decode !!float `1.5` as a !!int"),
        ("!!bool yes", "cannot decode !!str `yes` as a !!bool"),
        ("!!null 0", "cannot decode !!int `0` as a !!null"),
        ("!!float true", "cannot decode !!bool `true` as a !!float"),
    ],
)
def test_explicit_tag_mismatch_is_an_error(text, summary):
    d = only_error("a: " + text + "\n")
    assert d.summary == summary
    assert d.range == Range("f", Pos(1, 4, 3), Pos(1, 4 + len(text), 3 + len(text)))


def test_numbers_in_flow_and_block_contexts():
    root = load("a: [1, 0x10, 2.5, yes, ~]\nb:\n  - 017\n  - -1_0\n")
    assert to_plain(root) == {"a": [1, 16, 2.5, "yes", None], "b": [15, -10]}


def test_tags_and_anchors_on_collections_are_ignored():
    root = load("a: &x !!map {b: 1}\nc: !!seq [1]\nd: !custom\n  e: f\n")
    assert to_plain(root) == {"a": {"b": 1}, "c": [1], "d": {"e": "f"}}


# ---------------------------------------------------------------------------------------------
# mapping keys


@pytest.mark.parametrize(
    "text, key_range",
    [
        ("1: a\n", ((1, 1, 0), (1, 2, 1))),
        ("a: 1\ntrue: b\n", ((2, 1, 5), (2, 5, 9))),
        ("null: a\n", ((1, 1, 0), (1, 5, 4))),
        ("~: a\n", ((1, 1, 0), (1, 2, 1))),
        ("? \n: a\n", ((1, 2, 1), (1, 2, 1))),  # empty key just after "?"
        ("1.5: a\n", ((1, 1, 0), (1, 4, 3))),
        ("a:\n  b:\n    0x10: c\n", ((3, 5, 12), (3, 9, 16))),
        ("{a: 1}: x\n", ((1, 1, 0), (1, 7, 6))),
        ("[a]: x\n", ((1, 1, 0), (1, 4, 3))),
        ("? - a\n  - b\n: x\n", ((1, 3, 2), (2, 6, 11))),
        ("a: {b: 1, 2: c}\n", ((1, 11, 10), (1, 12, 11))),
        ("!!int '1': a\n", ((1, 1, 0), (1, 10, 9))),
    ],
)
def test_keys_must_be_strings(text, key_range):
    d = only_error(text)
    assert d.summary == "mapping keys must be strings"
    assert d.range is not None
    assert span_of_range(d.range) == key_range


def span_of_range(r: Range):
    return (r.begin.line, r.begin.column, r.begin.byte), (r.end.line, r.end.column, r.end.byte)


def test_first_bad_key_is_reported():
    d = only_error("a: 1\n2: b\n3: c\n")
    assert d.range is not None and d.range.begin.line == 2


@pytest.mark.parametrize("key", ['"1"', "'true'", "!!str 1", '"null"', '""', "<<", "'~'"])
def test_string_keys(key):
    root = load(f"{key}: v\n")
    assert isinstance(root, ObjectNode)
    assert isinstance(root.entries[0].key, StringNode)


def test_duplicate_keys_are_kept_in_order():
    root = load("a: 1\nb: 2\na: 3\n<<: {c: 4}\n<<: 5\n")
    assert isinstance(root, ObjectNode)
    assert [(e.key.value, to_plain(e.value)) for e in root.entries] == [
        ("a", 1),
        ("b", 2),
        ("a", 3),
        ("<<", {"c": 4}),
        ("<<", 5),
    ]
    assert root.entries[0].key.range.begin.line == 1
    assert root.entries[2].key.range.begin.line == 3


def test_merge_keys_have_no_merge_semantics():
    root = load("base: &b {x: 1}\nderived:\n  <<: {y: 2}\n  z: 3\n")
    assert to_plain(root) == {"base": {"x": 1}, "derived": {"<<": {"y": 2}, "z": 3}}


# ---------------------------------------------------------------------------------------------
# aliases and anchors


@pytest.mark.parametrize(
    "text, alias_range",
    [
        ("a: &x 1\nb: *x\n", ((2, 4, 11), (2, 6, 13))),
        ("a: *undefined\n", ((1, 4, 3), (1, 14, 13))),
        ("a: [1, *x]\n", ((1, 8, 7), (1, 10, 9))),
        ("*x : a\n", ((1, 1, 0), (1, 3, 2))),
        ("- &a [1]\n- *a\n", ((2, 3, 11), (2, 5, 13))),
    ],
)
def test_aliases_are_refused(text, alias_range):
    d = only_error(text)
    assert d.summary == "alias nodes are not supported"
    assert d.range is not None
    assert span_of_range(d.range) == alias_range


def test_anchors_alone_are_harmless():
    root = load("a: &x 1\nb: &y {c: &z [2]}\n")
    assert to_plain(root) == {"a": 1, "b": {"c": [2]}}


def test_syntax_error_wins_over_alias():
    # yaml.v3 parses the whole document before ESC looks at aliases.
    d = only_error("a: *x\nb: [1\n")
    assert d.range is None
    assert d.summary.startswith("yaml: ")


# ---------------------------------------------------------------------------------------------
# syntax errors


@pytest.mark.parametrize(
    "text, summary",
    [
        # The golden case (esc-golden/unterminated-array): a parser error, context line 1.
        ("values:\n  some_unterminated_list: [hello, world\n", "yaml: line 1: did not find expected ',' or ']'"),
        # Scanner errors: yaml.v3 adds 1 to the 0-based line.
        ("a: b\n c: d\n", "yaml: line 2: mapping values are not allowed in this context"),
        ("a:\n\tb: 1\n", "yaml: line 2: found character that cannot start any token"),
        ("a: 'x\n", "yaml: line 2: found unexpected end of stream"),
        ('a: "x', "yaml: found unexpected end of stream"),
        ("a: @b\n", "yaml: found character that cannot start any token"),
        # Parser errors without context on line 0: no line at all.
        ("a: 1\n- b\n", "yaml: line 1: did not find expected key"),
        ("- a\nb: 1\n", "yaml: line 1: did not find expected '-' indicator"),
        ("]\n", "yaml: did not find expected node content"),
        ("a: {b: 1\n", "yaml: line 1: did not find expected ',' or '}'"),
    ],
)
def test_syntax_errors(text, summary):
    d = only_error(text)
    assert d.range is None
    assert d.path == ""
    assert d.summary == summary


def test_reader_errors():
    assert only_error("a: \x01\n").summary == "yaml: control characters are not allowed"
    assert only_error(b"a: \xff\n").summary == "yaml: invalid leading UTF-8 octet"
    assert only_error(b"a: \xc3\n").summary.startswith("yaml: ")
    assert only_error("a: \ud800\n").summary.startswith("yaml: ")


# ---------------------------------------------------------------------------------------------
# documents, input forms


@pytest.mark.parametrize("text", ["", b"", "\n\n", "# just a comment\n", "---\n", "--- # c\n...\n", "\ufeff"])
def test_empty_documents(text):
    assert parse_yaml(text, "f") == (None, [])


def test_explicit_null_document_is_a_node():
    assert isinstance(load("--- ~\n"), NullNode)
    assert isinstance(load("null"), NullNode)


def test_only_the_first_document_is_read():
    assert to_plain(load("a: 1\n---\nb: 2\n")) == {"a": 1}
    assert to_plain(load("a: 1\n---\nb: [\n")) == {"a": 1}
    assert to_plain(load("a: 1\n--- {\n")) == {"a": 1}
    assert to_plain(load("--- [1]\n...\n--- ]]]\n")) == [1]
    assert parse_yaml("---\n---\na: 1\n", "f") == (None, [])


def test_non_mapping_roots_are_returned():
    assert to_plain(load("[1, 2]")) == [1, 2]
    assert to_plain(load("- a\n")) == ["a"]
    assert to_plain(load("hello")) == "hello"
    assert to_plain(load("12")) == 12


def test_str_and_bytes_give_the_same_tree():
    text = "a: é\nb: [1, '€']\nc: |\n  😀\n"
    assert load(text) == load(text.encode("utf-8"))
    assert load(text) == load(bytearray(text.encode("utf-8")))


def test_utf16_with_bom():
    root = load("a: é\n".encode("utf-16"))
    assert to_plain(root) == {"a": "é"}


def test_filename_is_the_environment():
    root = load("a: [1]\n", "my-env")
    assert all(n.range.environment == "my-env" for n in walk(root))


# ---------------------------------------------------------------------------------------------
# positions


def test_empty_values_begin_just_after_their_indicator():
    root = load("imports:\n  - \nvalues:\n")
    imports, values = root.entries  # type: ignore[attr-defined]
    (item,) = imports.value.items
    assert isinstance(item, NullNode)
    assert span(item) == ((2, 4, 12), (2, 4, 12))
    assert isinstance(values.value, NullNode)
    assert span(values.value) == ((3, 8, 21), (3, 8, 21))
    assert span(imports.value) == ((2, 3, 11), (2, 4, 12))
    # with a comment after the ':'
    root = load("a:   # nothing\nb: 1\n")
    assert span(root.entries[0].value) == ((1, 3, 2), (1, 3, 2))  # type: ignore[attr-defined]


def test_crlf_line_breaks():
    root = load("a:\r\n  b: 1\r\nc: x\r\n")
    a, c = root.entries  # type: ignore[attr-defined]
    assert span(a.value.entries[0].value) == ((2, 6, 9), (2, 7, 10))
    assert span(c.value) == ((3, 4, 15), (3, 5, 16))


# ---------------------------------------------------------------------------------------------
# depth


@pytest.mark.parametrize("n", [1000, 5000])
def test_deep_flow_mappings(n):
    root = load("a: " + "{a: " * n + "1" + "}" * n + "\n")
    assert depth(root) == n + 1


@pytest.mark.parametrize("n", [1000, 5000])
def test_deep_flow_sequences(n):
    root = load("[" * n + "]" * n)
    assert depth(root) == n - 1
    root = load("[" * n + "x" + "]" * n)
    assert depth(root) == n


@pytest.mark.parametrize("n", [1000, 5000])
def test_deep_block_sequences(n):
    root = load("- " * n + "x\n")
    assert depth(root) == n


@pytest.mark.parametrize("n", [1000, 5000])
def test_deep_block_mappings(n):
    text = "".join(" " * i + "a:\n" for i in range(n)) + " " * n + "x\n"
    root = load(text)
    assert depth(root) == n
    innermost = root
    for _ in range(n - 1):
        innermost = innermost.entries[0].value  # type: ignore[attr-defined]
    assert span(innermost.entries[0].value) == ((n + 1, n + 1, len(text) - 2), (n + 1, n + 2, len(text) - 1))  # type: ignore[attr-defined]


def test_deep_mixed_nesting():
    n = 2500
    text = "a: " + "[{a: " * n + "1" + "}]" * n + "\n"
    assert depth(load(text)) == 2 * n + 1


def test_depth_limit_like_yaml_v3():
    d = only_error("[" * 10001 + "]" * 10001)
    assert d.summary == "yaml: exceeded max depth of 10000"
    assert depth(load("[" * 10000 + "]" * 10000)) == 9999


def test_block_depth_limit_like_yaml_v3():
    d = only_error("".join(" " * i + "a:\n" for i in range(10001)) + " " * 10001 + "x\n")
    assert d.summary == "yaml: line 10001: exceeded max depth of 10000"
    assert depth(load("- " * 10000 + "x\n")) == 10000


libyaml = pytest.importorskip("yaml._yaml")  # the C parser is what the engine runs on


def _libyaml_limit_settable() -> bool:
    return hasattr(libyaml, "_set_max_nest_level")


@pytest.fixture
def low_libyaml_limit():
    """libyaml's process-wide limit set far below the engine's rule, as another library may."""
    if not _libyaml_limit_settable():
        pytest.skip("this PyYAML release has no libyaml nesting limit to interfere")
    saved = libyaml._get_max_nest_level()
    libyaml._set_max_nest_level(10)
    yield 10
    libyaml._set_max_nest_level(saved)


def test_depth_rule_does_not_follow_libyaml_setting(low_libyaml_limit):
    assert depth(load("[" * 5000 + "]" * 5000)) == 4999
    assert depth(load("- " * 5000 + "x\n")) == 5000
    assert only_error("[" * 10001 + "]" * 10001).summary == "yaml: exceeded max depth of 10000"
    # ... and the process's setting is put back for the other PyYAML users
    assert libyaml._get_max_nest_level() == low_libyaml_limit
    assert yaml.load("[[[1]]]", Loader=yaml.CSafeLoader) == [[[1]]]
    with pytest.raises(yaml.YAMLError, match="nesting depth"):
        yaml.load("[" * 11 + "]" * 11, Loader=yaml.CSafeLoader)


def test_depth_rule_holds_in_concurrent_parses(low_libyaml_limit):
    import threading

    results: list[int] = []

    def worker() -> None:
        for _ in range(5):
            results.append(depth(load("[" * 3000 + "]" * 3000)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2999] * 20
    assert libyaml._get_max_nest_level() == low_libyaml_limit


def test_libyaml_nesting_error_reads_as_the_engine_rule(low_libyaml_limit):
    # Where libyaml's limit could not be lifted, its refusal still reads as the engine's rule.
    from esc_pulumi.esc.syntax import _syntax_error

    parser = libyaml.CParser("a:\n  b: " + "[" * 11 + "]" * 11 + "\n")
    with pytest.raises(yaml.YAMLError) as info:
        while parser.get_event() is not None:
            pass
    assert _syntax_error(info.value).summary == "yaml: line 2: exceeded max depth of 10000"


# ---------------------------------------------------------------------------------------------
# golden positions: the ranges pulumi/esc reports for every expression of the golden cases


def _golden_cases() -> list[str]:
    if not GOLDEN.is_dir():
        return []
    cases = []
    for case in sorted(os.listdir(GOLDEN)):
        expected = GOLDEN / case / "expected.json"
        if expected.is_file() and '"exprs"' in expected.read_text():
            cases.append(case)
    return cases


GOLDEN_CASES = _golden_cases()


class _GoldenEnv:
    """One environment file of a golden case, parsed, with its nodes indexed by begin."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        self.lines = self.text.splitlines()
        root, diags = parse_yaml(path.read_bytes(), path.stem)
        assert diags == [] and root is not None, (path, diags)
        self.by_begin: dict[tuple[int, int], list[Node]] = {}
        self.keys: set[int] = set()  # ids of the key nodes
        for n in walk(root):
            self.by_begin.setdefault((n.range.begin.line, n.range.begin.column), []).append(n)
        for n in walk(root):
            if isinstance(n, ObjectNode):
                self.keys.update(id(e.key) for e in n.entries)


def _expected_class(expr: dict) -> type | None:
    """The node class an expression comes from (None: not told by the golden data)."""
    if "list" in expr:
        return ArrayNode
    if "object" in expr or "builtin" in expr:
        return ObjectNode
    if "literal" in expr:
        lit = expr["literal"]
        if isinstance(lit, bool):
            return BoolNode
        if isinstance(lit, (int, float)):
            return NumberNode
        return StringNode
    if "symbol" in expr or "interpolate" in expr or "access" in expr:
        return StringNode  # interpolations and references
    schema = expr.get("schema")
    kind = schema.get("type") if isinstance(schema, dict) else None
    return {"null": NullNode, "object": ObjectNode, "array": ArrayNode}.get(kind)  # type: ignore[arg-type]


def _agrees_on_end(env: _GoldenEnv, node: Node) -> bool:
    """Whether ESC's end rule and ours give the same end for this node (see the module doc
    of syntax.py: ESC ends a scalar at begin + len(value) and a flow collection with its last
    item; we end them after the closing quote / bracket)."""
    while isinstance(node, (ObjectNode, ArrayNode)):
        if env.lines[node.range.begin.line - 1][node.range.begin.column - 1] in "[{":
            return False
        node = node.entries[-1].value if isinstance(node, ObjectNode) else node.items[-1]
    if isinstance(node, NullNode):
        return True
    first = env.lines[node.range.begin.line - 1][node.range.begin.column - 1]
    return first not in "'\"|>!&" and node.range.begin.line == node.range.end.line


def _esc_end(env: _GoldenEnv, node: Node) -> tuple[int, int]:
    """The end pulumi/esc reports: a scalar ends at its begin + the length of its value, on the
    same line; a collection ends where its last item ends, or at its begin when it is empty."""
    while isinstance(node, (ObjectNode, ArrayNode)):
        children = [e.value for e in node.entries] if isinstance(node, ObjectNode) else node.items
        if not children:
            return node.range.begin.line, node.range.begin.column
        node = children[-1]
    b = node.range.begin
    if isinstance(node, StringNode):
        length = len(node.value)
    else:  # the source text of a number, bool or null
        length = node.range.end.column - b.column
    return b.line, b.column + length


def _golden_walk(case: str):
    """Yield (env name, kind, expected node class or None, golden range dict) for every
    expression range and key range of the case's check/eval exprs trees."""
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    for section in ("check", "eval"):
        exprs = expected.get(section, {}).get("exprs")
        if not exprs:
            continue
        todo = list(exprs.values())
        while todo:
            expr = todo.pop()
            rng = expr.get("range", {})
            if rng.get("begin", {}).get("line", 0) > 0:
                yield rng["environment"], "expr", _expected_class(expr), rng
            for name, key_range in (expr.get("keyRanges") or {}).items():
                yield key_range["environment"], "key", StringNode, key_range
            if "list" in expr:
                todo.extend(expr["list"])
            if "object" in expr:
                todo.extend(expr["object"].values())
            if "builtin" in expr:
                builtin = expr["builtin"]
                name_range = builtin.get("nameRange")
                if name_range and name_range["begin"]["line"] > 0:
                    yield name_range["environment"], "key", StringNode, name_range
                if builtin.get("arg"):
                    todo.append(builtin["arg"])
            if expr.get("base"):
                todo.append(expr["base"])


def _env_path(case: str, env: str) -> Path:
    overrides = GOLDEN / case / "overrides.json"
    root_name = case
    if overrides.is_file():
        root_name = json.loads(overrides.read_text()).get("rootEnvironment", case)
    return GOLDEN / case / ("env.yaml" if env == root_name else f"{env}.yaml")


@pytest.mark.skipif(not GOLDEN_CASES, reason="golden data (../shared/esc-golden) not available")
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_positions(case):
    envs: dict[str, _GoldenEnv] = {}
    checked = ends_checked = 0
    for env_name, kind, cls, golden in _golden_walk(case):
        if env_name not in envs:
            envs[env_name] = _GoldenEnv(_env_path(case, env_name))
        env = envs[env_name]
        gb, ge = golden["begin"], golden["end"]
        candidates = [
            n
            for n in env.by_begin.get((gb["line"], gb["column"]), [])
            # (ESC gives some synthesized expressions, merged properties' "access" bases, the
            # range of a key: expressions may sit on keys, key ranges must be keys.)
            if (cls is None or type(n) is cls) and (kind != "key" or id(n) in env.keys)
        ]
        assert candidates, (case, env_name, kind, cls.__name__, golden)
        node = candidates[0]
        begin = node.range.begin
        assert (begin.line, begin.column) == (gb["line"], gb["column"])
        if gb["byte"] or (gb["line"], gb["column"]) == (1, 1):  # ESC leaves some bytes at 0
            assert begin.byte == gb["byte"], (case, golden, node.range)
        checked += 1
        if _agrees_on_end(env, node):
            end = node.range.end
            assert (end.line, end.column) == (ge["line"], ge["column"]), (case, golden, node.range)
            if ge["byte"]:
                assert end.byte == ge["byte"], (case, golden, node.range)
            ends_checked += 1
        else:
            # The one systematic difference (quoted scalars, flow collections and what ends
            # with them): we end after the closing quote or bracket, ESC computes its end.
            assert _esc_end(env, node) == (ge["line"], ge["column"]), (case, golden, node.range)
    assert checked > 0


def test_golden_positions_cover_several_cases():
    if not GOLDEN_CASES:
        pytest.skip("golden data (../shared/esc-golden) not available")
    assert len(GOLDEN_CASES) >= 10
    assert "literals" in GOLDEN_CASES and "interp" in GOLDEN_CASES


def test_golden_literals_exact():
    """The literals case, range by range, against the golden file's numbers."""
    path = GOLDEN / "literals" / "env.yaml"
    if not path.is_file():
        pytest.skip("golden data not available")
    root = load(path.read_bytes(), "literals")
    values = {e.key.value: e.value for e in root.entries[0].value.entries}  # type: ignore[attr-defined]
    assert isinstance(values["some_null"], NullNode)
    assert span(values["some_null"]) == ((2, 14, 21), (2, 18, 25))
    assert span(values["some_bool"]) == ((3, 14, 39), (3, 18, 43))
    assert span(values["some_number"]) == ((4, 16, 59), (4, 18, 61))
    assert span(values["some_list"]) == ((7, 5, 100), (8, 12, 119))
    assert span(values["some_object"]) == ((10, 5, 139), (11, 21, 172))


# ---------------------------------------------------------------------------------------------
# robustness (hypothesis)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_result(result) -> None:
    assert isinstance(result, tuple) and len(result) == 2
    node, diags = result
    assert isinstance(diags, list)
    assert all(isinstance(d, Diagnostic) for d in diags)
    if node is None:
        assert all(d.is_error for d in diags)
    else:
        assert diags == []
        for n in walk(node):
            assert isinstance(n.range, Range)
            assert n.range.begin.line >= 1 and n.range.begin.column >= 1 and n.range.begin.byte >= 0


@FAST
@given(st.text(max_size=200))
def test_random_text_never_raises(text):
    _check_result(parse_yaml(text, "f"))


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    _check_result(parse_yaml(data, "f"))


YAMLISH = st.lists(
    st.sampled_from(list(":-[]{}'\"&*!| \n#?,>%@`\tab01.~\\\r") + ["é", "\ufeff", "---", "...", "<<", "  ", "\n  "]),
    max_size=80,
).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_yamlish_text_never_raises(text):
    result = parse_yaml(text, "f")
    _check_result(result)
    node, _ = result
    if node is not None and "\r" not in text and not text.startswith("\ufeff"):
        check_source_spans(text, node)


_words = st.from_regex(r"[a-z][a-z _-]{0,8}", fullmatch=True).map(str.strip).filter(bool)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    _words,
)
_structures = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_words, children, max_size=4),
    ),
    max_leaves=20,
)


@FAST
@given(_structures, st.booleans())
def test_dumped_structures_round_trip(value, flow):
    text = yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)
    node, diags = parse_yaml(text, "f")
    assert diags == []
    assert to_plain(node) == value
    check_source_spans(text, node)  # type: ignore[arg-type]


_any_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85\ufeff"),
    max_size=12,
)


@FAST
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), _any_text),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_any_text, c, max_size=3)),
                    max_leaves=12),
       st.booleans())
def test_dumped_unicode_structures_parse(value, flow):
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    node, diags = parse_yaml(text, "f")
    # PyYAML dumps for YAML 1.1, so a few strings ("1e5", "0o7") are typed differently by
    # yaml.v3's rules; the parse must still succeed, with consistent positions.
    assert diags == [] or diags[0].summary == "mapping keys must be strings"
    if node is not None:
        check_source_spans(text, node)
    node2, diags2 = parse_yaml(text.encode("utf-8"), "f")
    assert (node2, diags2) == (node, diags)
