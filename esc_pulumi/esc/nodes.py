"""The syntax tree: YAML as typed nodes with their source ranges.

This is the output of :mod:`esc_pulumi.esc.syntax` and the input of :mod:`esc_pulumi.esc.ast`.
Nodes are immutable, so one parsed document can be evaluated many times, from many threads.
"""
from __future__ import annotations

from ._fast import Record
from .diagnostics import Pos, Range

Span = tuple[int, int, int, int, int, int]
"""Begin line, column, byte and end line, column, byte (1-based lines and columns, 0-based bytes).

Nodes keep this compact tuple rather than :class:`Range` objects: a document has hundreds of
thousands of nodes, and ranges are needed only for the few that get a diagnostic. A string
node that is not a single-line plain scalar (quoted, block, tagged, or spanning lines) has a
seventh element, 1: positions inside its text cannot be mapped from offsets into its value."""


def span_range(environment: str, span: Span) -> Range:
    return Range(environment, Pos(span[0], span[1], span[2]), Pos(span[3], span[4], span[5]))


class Node(Record):
    """A node (immutable; equal to a node of the same class with the same fields)."""

    __slots__ = ("environment", "span")
    environment: str
    span: Span

    @property
    def range(self) -> Range:
        return span_range(self.environment, self.span)

    def __repr__(self) -> str:
        # The place, never the text: a definition's scalars include plaintext secrets
        # (``fn::secret: hunter2``), and a repr ends up in logs and tracebacks.
        return f"{type(self).__qualname__}({_place(self.environment, self.span)})"


def _place(environment: str, span: Span) -> str:
    return f"{environment}:{span[0]}:{span[1]}-{span[3]}:{span[4]}"


class NullNode(Node):
    __slots__ = ()


class BoolNode(Node):
    __slots__ = ("value",)
    value: bool


class NumberNode(Node):
    """A number: ``value`` is an ``int`` or a ``float`` (YAML 1.2 core typing as Go's yaml.v3 does it)."""

    __slots__ = ("value",)
    value: int | float


class StringNode(Node):
    __slots__ = ("value",)
    value: str


class ArrayNode(Node):
    __slots__ = ("items",)
    items: tuple[Node, ...]


class ObjectEntry(Record):
    __slots__ = ("key", "value")
    key: StringNode
    value: Node


class ObjectNode(Node):
    """A mapping. Entries keep document order and duplicates (the AST layer reports those)."""

    __slots__ = ("entries",)
    entries: tuple[ObjectEntry, ...]


def child_path(parent: str, key: str | int) -> str:
    """The diagnostic path of a child: ``parent.key``, ``parent["odd key"]`` or ``parent[3]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.isascii() and key.isidentifier():  # [A-Za-z_][A-Za-z0-9_]*, without a regex
        return f"{parent}.{key}" if parent else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{escaped}"]'


def node_data(node: Node | None, duplicates: list[StringNode] | None = None) -> object:
    """The plain data a node tree denotes (dicts, lists, str, bool, int, float, None), typed as
    the tree is: the yaml.v3 rules of :mod:`.syntax`. A repeated mapping key keeps its last
    value; each repeat's key node is appended to ``duplicates`` when a list is given (yaml.v3
    refuses them when decoding into a map). Iterative: any depth.

    Example::

        node, _ = parse_yaml("a: yes\\nb: 1e6\\nc: 0o17\\n", "f.yaml")
        node_data(node)      # {'a': 'yes', 'b': 1000000.0, 'c': 15}
    """
    if node is None:
        return None
    out: list[object] = [None]
    # (node, container, slot): the value of `node` goes into container[slot].
    todo: list[tuple[Node, object, object]] = [(node, out, 0)]
    while todo:
        n, container, slot = todo.pop()
        if isinstance(n, ObjectNode):
            last: dict[str, Node] = {}
            for entry in n.entries:
                key = entry.key.value
                if key in last and duplicates is not None:
                    duplicates.append(entry.key)
                last[key] = entry.value
            d: dict[str, object] = dict.fromkeys(last)
            todo.extend((child, d, key) for key, child in last.items())
            value: object = d
        elif isinstance(n, ArrayNode):
            items: list[object] = [None] * len(n.items)
            todo.extend((item, items, i) for i, item in enumerate(n.items))
            value = items
        elif isinstance(n, NullNode):
            value = None
        else:
            value = n.value  # type: ignore[attr-defined]
        container[slot] = value  # type: ignore[index]
    return out[0]
