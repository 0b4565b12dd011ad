"""The reference's ranges (spec section 10), as the engine's loader asks the syntax layer for
them (``parse_yaml(..., reference=True)``): scalar ends from the decoded value's length,
collections ending with their last item, bytes derived from line and column. The source spans
(the default, used to edit definitions in place) are tested in test_syntax.py."""
from __future__ import annotations

from esc_pulumi.esc.nodes import ArrayNode, Node, ObjectNode
from esc_pulumi.esc.syntax import parse_yaml


def load(text: str | bytes, filename: str = "f") -> Node:
    node, diags = parse_yaml(text, filename, reference=True)
    assert diags == [], diags
    assert node is not None
    return node


def to_plain(node: Node):
    from esc_pulumi.esc.nodes import node_data

    return node_data(node)


def span(node: Node) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    b, e = node.range.begin, node.range.end
    return (b.line, b.column, b.byte), (e.line, e.column, e.byte)


def walk(node: Node):
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, ObjectNode):
            for e in n.entries:
                todo.append(e.key)
                todo.append(e.value)
        elif isinstance(n, ArrayNode):
            todo.extend(n.items)


def reference_byte(text: str, line: int, column: int) -> int | None:
    """The byte the reference derives from a line and column (spec section 10), for lines of
    ASCII text; ``None`` for other lines (their display-width walk is tested on its own)."""
    pieces = text.split("\n")[:-1]  # the lines a "\n" ends
    if line > len(pieces):
        return 0
    if not pieces[line - 1].isascii():
        return None
    return sum(len(p.encode("utf-8")) + 1 for p in pieces[: line - 1]) + column - 1


def check_positions_consistent(text: str, node: Node) -> None:
    """Every node's range follows the reference's rules (spec section 10): a begin is a place
    in the text, a scalar ends on its begin line as many columns on as its value has UTF-8
    bytes, a collection ends with its last item (or where it begins), and bytes come from
    line and column."""
    lines = text.split("\n")
    for n in walk(node):
        b, e = n.range.begin, n.range.end
        assert 1 <= b.line <= len(lines) + 1, (b, n)
        if b.line <= len(lines):
            assert 1 <= b.column <= len(lines[b.line - 1]) + 1, (b, n)
        for pos in (b, e):
            want = reference_byte(text, pos.line, pos.column)
            if want is not None:
                assert pos.byte == want, (pos, n)
        if isinstance(n, ObjectNode):
            last = n.entries[-1].value if n.entries else n
            assert (e.line, e.column) == (last.range.end.line, last.range.end.column) if n.entries else (e == b), n
        elif isinstance(n, ArrayNode):
            last = n.items[-1] if n.items else n
            assert (e.line, e.column) == (last.range.end.line, last.range.end.column) if n.items else (e == b), n
        else:
            assert (b.line, b.column) <= (e.line, e.column), n


# ---------------------------------------------------------------------------------------------
# typing of scalars


def test_bom():
    for text in ("\ufeffa: 1\n", b"\xef\xbb\xbfa: 1\n"):
        root = load(text)
        assert to_plain(root) == {"a": 1}
        # Columns do not count the BOM, nor do the bytes derived from them.
        assert span(root.entries[0].key) == ((1, 1, 0), (1, 2, 1))  # type: ignore[attr-defined]


def test_positions_of_a_block_mapping():
    text = "values:\n  a: hello\n  b: 'x y'\n  c: \"q\"\n"
    root = load(text)
    assert span(root) == ((1, 1, 0), (4, 7, 36))
    values = root.entries[0].value  # type: ignore[attr-defined]
    assert span(values) == ((2, 3, 10), (4, 7, 36))  # first key .. end of the last value
    a, b, c = values.entries
    assert span(a.key) == ((2, 3, 10), (2, 4, 11))
    assert span(a.value) == ((2, 6, 13), (2, 11, 18))
    assert span(b.value) == ((3, 6, 24), (3, 9, 27))  # from the quote, len("x y") on
    assert span(c.value) == ((4, 6, 35), (4, 7, 36))
    check_positions_consistent(text, root)


def test_positions_of_sequences():
    text = "a:\n  - x\n  - [1, {b: c}]\nd:\n- y\n"
    root = load(text)
    a, d = root.entries  # type: ignore[attr-defined]
    assert span(a.value) == ((2, 3, 5), (3, 14, 22))  # first '-' .. end of the last item
    flow = a.value.items[1]
    assert span(flow) == ((3, 5, 13), (3, 14, 22))  # '[' .. end of its last item
    assert span(flow.items[1]) == ((3, 9, 17), (3, 14, 22))  # '{' .. end of its last value
    assert span(d.value) == ((5, 1, 28), (5, 4, 31))  # indentless sequence
    check_positions_consistent(text, root)


def test_empty_collections():
    root = load("a: {}\nb: []\n")
    assert span(root.entries[0].value) == ((1, 4, 3), (1, 4, 3))  # type: ignore[attr-defined]
    assert span(root.entries[1].value) == ((2, 4, 9), (2, 4, 9))  # type: ignore[attr-defined]


def test_block_scalar_positions():
    text = "a: |\n  line one\n  line two\n\n# comment\nb: >-\n  folded\nc: |\nd: x\n"
    root = load(text)
    a, b, c, d = root.entries  # type: ignore[attr-defined]
    assert a.value.value == "line one\nline two\n"
    # '|' .. as many lines on as the value has breaks, plus what follows the last one
    assert span(a.value) == ((1, 4, 3), (3, 4, 19))
    assert span(b.value) == ((6, 4, 41), (6, 10, 47))  # "folded": no break, len 6
    assert c.value.value == ""
    assert span(c.value) == ((8, 4, 56), (8, 4, 56))
    check_positions_consistent(text, root)


def test_multiline_scalars():
    text = "a: plain\n  continued\nb: \"quoted\n  too\"\n"
    root = load(text)
    a, b = root.entries  # type: ignore[attr-defined]
    assert a.value.value == "plain continued"
    assert span(a.value) == ((1, 4, 3), (1, 19, 18))  # on the first line, len(value) on
    assert b.value.value == "quoted too"
    assert span(b.value) == ((3, 4, 24), (3, 14, 34))
    check_positions_consistent(text, root)


def test_tagged_and_anchored_scalars_begin_at_the_property():
    root = load("a: !!str 1\nb: &x 2\n")
    assert span(root.entries[0].value) == ((1, 4, 3), (1, 11, 10))  # type: ignore[attr-defined]
    assert span(root.entries[1].value) == ((2, 4, 14), (2, 5, 15))  # the anchor adds nothing  # type: ignore[attr-defined]


def test_non_ascii_positions():
    text = "é: ü€😀x\nb: [é, \"😀\"]\nc: |\n  ßß\n\"ü\": {k: v}\n"
    root = load(text)
    e1, e2, e3, e4 = root.entries  # type: ignore[attr-defined]
    # Ends add the value's UTF-8 length to the column; bytes walk the line by display width.
    assert span(e1.key) == ((1, 1, 0), (1, 3, 3))
    assert span(e1.value) == ((1, 4, 4), (1, 14, 14))  # the line is narrower: all of it
    assert span(e2.value) == ((2, 4, 18), (2, 12, 29))
    assert span(e2.value.items[0]) == ((2, 5, 19), (2, 7, 22))
    assert span(e2.value.items[1]) == ((2, 8, 23), (2, 12, 29))  # the emoji is 4 bytes, width 2
    assert span(e3.value) == ((3, 4, 34), (4, 4, 40))
    assert span(e4.key) == ((5, 1, 43), (5, 3, 46))
    assert span(e4.value) == ((5, 6, 49), (5, 11, 54))
    check_positions_consistent(text, root)
    # the same offsets far into a long document (past any lookup chunking)
    long_text = "x: " + "é" * 500 + "\n" + text
    root2 = load(long_text)
    assert span(root2.entries[1].value) == ((2, 4, 4 + 1004), (2, 14, 14 + 1004))  # type: ignore[attr-defined]
    check_positions_consistent(long_text, root2)


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
    check_positions_consistent(text, load(text))


def test_only_single_line_plain_scalars_map_positions_inside_them():
    from esc_pulumi.esc.ast import is_mappable

    root = load("a: ${x}\nb: '${x}'\nc: !!str ${x}\nd: ${x}\n  ${y}\n")
    assert [is_mappable(e.value) for e in root.entries] == [True, False, False, False]
