"""Position helpers of the syntax tests: a node's span and the rules of both span modes."""
from __future__ import annotations

from esc_pulumi.esc.nodes import ArrayNode, Node, ObjectNode

Span = tuple[tuple[int, int, int], tuple[int, int, int]]


def span(node: Node) -> Span:
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


def check_source_spans(text: str, node: Node) -> None:
    """line/column (code points) and byte offsets of every node agree with the text."""
    data = text.encode("utf-8")
    for n in walk(node):
        for pos in (n.range.begin, n.range.end):
            before = data[: pos.byte].decode("utf-8")  # also checks byte is on a char boundary
            if pos.byte == len(data) and pos.column == 1 and pos.line == before.count("\n") + 2:
                # libyaml (and yaml.v3) put the end of a stream that does not end with a line
                # break at the start of a line after it; empty nodes can sit there.
                continue
            assert pos.line == before.count("\n") + 1, (pos, n)
            assert pos.column == len(before) - (before.rfind("\n") + 1) + 1, (pos, n)
        assert (n.range.begin.byte, n.range.begin.line) <= (n.range.end.byte, n.range.end.line)


def reference_byte(text: str, line: int, column: int) -> int | None:
    """The byte the reference derives from a line and column (spec section 10), for lines of
    ASCII text; ``None`` for other lines (their display-width walk is tested on its own)."""
    pieces = text.split("\n")[:-1]  # the lines a "\n" ends
    if line > len(pieces):
        return 0
    if not pieces[line - 1].isascii():
        return None
    return sum(len(p.encode("utf-8")) + 1 for p in pieces[: line - 1]) + column - 1


def check_reference_spans(text: str, node: Node) -> None:
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
