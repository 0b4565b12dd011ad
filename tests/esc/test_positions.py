"""Node positions, in both span modes of the syntax layer, one table for both.

- source spans (the default, used to edit definitions in place): a node ends just after its
  last character, bytes are offsets in the text as given;
- the reference's ranges (spec section 10; ``parse_yaml(..., reference=True)``, what the
  engine's loader asks for): scalar ends from the decoded value's length, collections ending
  with their last item, bytes derived from line and column.

Each document of :data:`CASES` lists the spans of chosen nodes in both modes; every node of the
tree is also checked against the mode's own rules."""
from __future__ import annotations

import pytest

from esc_pulumi.esc.nodes import ArrayNode, Node, ObjectNode, node_data
from esc_pulumi.esc.syntax import parse_yaml

from .positions import Span, check_reference_spans, check_source_spans, span

def load(text: str | bytes, filename: str = "f", *, reference: bool = True) -> Node:
    node, diags = parse_yaml(text, filename, reference=reference)
    assert diags == [], diags
    assert node is not None
    return node


def pick(node: Node, *steps: int | str) -> Node:
    """The node at ``steps``: an int is an entry of an object (then ``"key"`` or ``"value"``)
    or an item of an array."""
    for step in steps:
        if isinstance(step, str):
            node = getattr(node, step)
        elif isinstance(node, ObjectNode):
            node = node.entries[step]  # type: ignore[assignment]
        else:
            assert isinstance(node, ArrayNode)
            node = node.items[step]
    return node


NON_ASCII = "é: ü€😀x\nb: [é, \"😀\"]\nc: |\n  ßß\n\"ü\": {k: v}\n"

# id -> (document, its data or None, [(steps, source span, reference span)])
CASES: dict[str, tuple[str | bytes, object, list[tuple[tuple[int | str, ...], Span, Span]]]] = {
    # Columns do not count a BOM; source bytes are offsets in the text as given, the
    # reference's are derived from the columns.
    "bom": ("\ufeffa: 1\n", {"a": 1}, [((0, "key"), ((1, 1, 3), (1, 2, 4)), ((1, 1, 0), (1, 2, 1)))]),
    "bom-bytes": (b"\xef\xbb\xbfa: 1\n", {"a": 1}, [((0, "key"), ((1, 1, 3), (1, 2, 4)), ((1, 1, 0), (1, 2, 1)))]),
    "block-mapping": ("values:\n  a: hello\n  b: 'x y'\n  c: \"q\"\n", None, [
        ((), ((1, 1, 0), (4, 9, 38)), ((1, 1, 0), (4, 7, 36))),
        ((0, "value"), ((2, 3, 10), (4, 9, 38)), ((2, 3, 10), (4, 7, 36))),  # first key .. last value
        ((0, "value", 0, "key"), ((2, 3, 10), (2, 4, 11)), ((2, 3, 10), (2, 4, 11))),
        ((0, "value", 0, "value"), ((2, 6, 13), (2, 11, 18)), ((2, 6, 13), (2, 11, 18))),
        # quotes included / from the quote, len("x y") on
        ((0, "value", 1, "value"), ((3, 6, 24), (3, 11, 29)), ((3, 6, 24), (3, 9, 27))),
        ((0, "value", 2, "value"), ((4, 6, 35), (4, 9, 38)), ((4, 6, 35), (4, 7, 36))),
    ]),
    "sequences": ("a:\n  - x\n  - [1, {b: c}]\nd:\n- y\n", None, [
        ((0, "value"), ((2, 3, 5), (3, 16, 24)), ((2, 3, 5), (3, 14, 22))),  # first '-' .. last item
        ((0, "value", 1), ((3, 5, 13), (3, 16, 24)), ((3, 5, 13), (3, 14, 22))),  # '[' .. after ']' / last item
        ((0, "value", 1, 1), ((3, 9, 17), (3, 15, 23)), ((3, 9, 17), (3, 14, 22))),
        ((1, "value"), ((5, 1, 28), (5, 4, 31)), ((5, 1, 28), (5, 4, 31))),  # indentless sequence
    ]),
    "empty-collections": ("a: {}\nb: []\n", {"a": {}, "b": []}, [
        ((0, "value"), ((1, 4, 3), (1, 6, 5)), ((1, 4, 3), (1, 4, 3))),
        ((1, "value"), ((2, 4, 9), (2, 6, 11)), ((2, 4, 9), (2, 4, 9))),
    ]),
    "block-scalars": (
        "a: |\n  line one\n  line two\n\n# comment\nb: >-\n  folded\nc: |\nd: x\n",
        {"a": "line one\nline two\n", "b": "folded", "c": "", "d": "x"},
        [
            # '|' .. after the last character / as many lines on as the value has breaks
            ((0, "value"), ((1, 4, 3), (3, 11, 26)), ((1, 4, 3), (3, 4, 19))),
            ((1, "value"), ((6, 4, 41), (7, 9, 52)), ((6, 4, 41), (6, 10, 47))),  # no break, len 6
            ((2, "value"), ((8, 4, 56), (8, 5, 57)), ((8, 4, 56), (8, 4, 56))),  # empty: after '|' / at it
        ],
    ),
    "multiline-scalars": ("a: plain\n  continued\nb: \"quoted\n  too\"\n", {"a": "plain continued", "b": "quoted too"}, [
        ((0, "value"), ((1, 4, 3), (2, 12, 20)), ((1, 4, 3), (1, 19, 18))),  # reference: on the first line
        ((1, "value"), ((3, 4, 24), (4, 7, 38)), ((3, 4, 24), (3, 14, 34))),
    ]),
    # Tagged and anchored scalars begin at the property; an anchor adds nothing to a reference end.
    "properties": ("a: !!str 1\nb: &x 2\n", {"a": "1", "b": 2}, [
        ((0, "value"), ((1, 4, 3), (1, 11, 10)), ((1, 4, 3), (1, 11, 10))),
        ((1, "value"), ((2, 4, 14), (2, 8, 18)), ((2, 4, 14), (2, 5, 15))),
    ]),
    # Source: columns in code points, bytes in UTF-8. Reference: ends add the value's UTF-8
    # length to the column, bytes walk the line by display width (the emoji: 4 bytes, width 2).
    "non-ascii": (NON_ASCII, None, [
        ((0, "key"), ((1, 1, 0), (1, 2, 2)), ((1, 1, 0), (1, 3, 3))),
        ((0, "value"), ((1, 4, 4), (1, 8, 14)), ((1, 4, 4), (1, 14, 14))),  # a narrower line: all of it
        ((1, "value"), ((2, 4, 18), (2, 12, 30)), ((2, 4, 18), (2, 12, 29))),
        ((1, "value", 0), ((2, 5, 19), (2, 6, 21)), ((2, 5, 19), (2, 7, 22))),
        ((1, "value", 1), ((2, 8, 23), (2, 11, 29)), ((2, 8, 23), (2, 12, 29))),
        ((2, "value"), ((3, 4, 34), (4, 5, 42)), ((3, 4, 34), (4, 4, 40))),
        ((3, "key"), ((5, 1, 43), (5, 4, 47)), ((5, 1, 43), (5, 3, 46))),
        ((3, "value"), ((5, 6, 49), (5, 12, 55)), ((5, 6, 49), (5, 11, 54))),
    ]),
    # the same offsets far into a long document (past any lookup chunking)
    "non-ascii-far": ("x: " + "é" * 500 + "\n" + NON_ASCII, None, [
        ((1, "value"), ((2, 4, 4 + 1004), (2, 8, 14 + 1004)), ((2, 4, 4 + 1004), (2, 14, 14 + 1004))),
    ]),
}


@pytest.mark.parametrize("reference", [False, True], ids=["source", "reference"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_positions(case: str, reference: bool) -> None:
    text, data, spans = CASES[case]
    root = load(text, reference=reference)
    if data is not None:
        assert node_data(root) == data
    got = {steps: span(pick(root, *steps)) for steps, _, _ in spans}
    want = {steps: (ref if reference else src) for steps, src, ref in spans}
    assert got == want
    if isinstance(text, str) and not text.startswith("\ufeff"):  # the rules read the text as it is
        (check_reference_spans if reference else check_source_spans)(text, root)


def test_keys_that_are_not_strings_are_placed_as_the_reference_places_them():
    from esc_pulumi.esc import load_definition

    for text, where in (("{a: 1}: x\n", (1, 1, 1, 6)), ("[a]: x\n", (1, 1, 1, 3)), ("!!int '1': a\n", (1, 1, 1, 8))):
        _, diags = load_definition(text, "f")
        (d,) = diags
        assert d.summary == "mapping keys must be strings"
        r = d.range
        assert (r.begin.line, r.begin.column, r.end.line, r.end.column) == where, text


def test_consistency_on_a_mixed_document():
    text = "a:\n  b: [1, {c: 'd e'}]\n  f: |\n    g\n    h\n  i: \"j\"\nk: []\nl: plain"
    check_reference_spans(text, load(text))


def test_only_single_line_plain_scalars_map_positions_inside_them():
    from esc_pulumi.esc.ast import is_mappable

    root = load("a: ${x}\nb: '${x}'\nc: !!str ${x}\nd: ${x}\n  ${y}\n")
    assert [is_mappable(e.value) for e in root.entries] == [True, False, False, False]
