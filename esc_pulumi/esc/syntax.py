"""YAML text to the typed node tree of :mod:`esc_pulumi.esc.nodes`.

This reproduces what pulumi/esc gets from Go's ``gopkg.in/yaml.v3`` (YAML 1.2 core typing, not
PyYAML's YAML 1.1 defaults), on top of libyaml (PyYAML's C parser, of which yaml.v3 is a port):

- only the first document is read; an empty stream or an empty first document gives ``None``;
- plain scalars are typed as yaml.v3 does it (``yes``/``on`` are strings, ``017`` is octal,
  ``0x1F``/``0o17``/``0b101``/``1_000`` are integers, timestamps are strings); quoted, block and
  ``!!str`` scalars are strings; ``!!null``/``!!bool``/``!!int``/``!!float`` are honoured;
- mapping keys must be strings, aliases are refused, duplicate keys are kept in order;
- syntax errors give one diagnostic without a range, worded as yaml.v3 words them.

The event stream is driven with an explicit stack: no recursion depends on the document's depth
(yaml.v3's limit of 10000 nested flow collections / indentation levels is applied).

Positions: 1-based line, 1-based column in code points (a leading BOM is not counted, as in
yaml.v3). Ranges are the reference's (spec section 10): a scalar begins at its first character
(quote, ``|``/``>``, or the tag/anchor before it) and ends on its start line, as many columns
on as its decoded value has UTF-8 bytes (a block scalar: as many lines on as it has line
breaks); an empty value begins and ends just after its ``:`` or ``-``. A block mapping begins
at its first key, a block sequence at its first ``-``, a flow collection at its bracket; every
collection ends where its last item ends (an empty one where it begins). Byte offsets are
derived from line and column as the reference does it (see :class:`_Lines`).
"""
from __future__ import annotations

import re

import yaml
from yaml import events as _events
from yaml.error import MarkedYAMLError, YAMLError
from yaml.reader import ReaderError
from yaml.scanner import ScannerError

from ._fast import fast_constructor
from ._gc import collector_paused
from ._nest_limit import libyaml_nesting_lifted
from .diagnostics import Diagnostic, Pos, Range, error
from .nodes import ArrayNode, BoolNode, Node, NullNode, NumberNode, ObjectEntry, ObjectNode, Span, StringNode, span_range

try:  # libyaml (the normal case): fast, and the same algorithm as yaml.v3
    from yaml._yaml import CParser as _CParser

    def _new_parser(source: str | bytes):
        return _CParser(source)

except ImportError:  # pragma: no cover - PyYAML built without libyaml
    def _new_parser(source: str | bytes):
        return yaml.SafeLoader(source)


__all__ = ["parse_yaml"]


_NullNode = fast_constructor(NullNode)
_BoolNode = fast_constructor(BoolNode)
_NumberNode = fast_constructor(NumberNode)
_StringNode = fast_constructor(StringNode)
_ArrayNode = fast_constructor(ArrayNode)
_ObjectNode = fast_constructor(ObjectNode)
_ObjectEntry = fast_constructor(ObjectEntry)

_ScalarEvent = _events.ScalarEvent
_MappingStartEvent = _events.MappingStartEvent
_MappingEndEvent = _events.MappingEndEvent
_SequenceStartEvent = _events.SequenceStartEvent
_SequenceEndEvent = _events.SequenceEndEvent
_AliasEvent = _events.AliasEvent
_StreamEndEvent = _events.StreamEndEvent
_DocumentStartEvent = _events.DocumentStartEvent

_INF = float("inf")
_NAN = float("nan")

# Plain scalars whose whole text decides their type (yaml.v3's resolve map).
# Values: (kind, value) with kind 0 = null, 1 = bool, 2 = number.
_PLAIN_CONSTANTS: dict[str, tuple[int, object]] = {}
for _t in ("", "~", "null", "Null", "NULL"):
    _PLAIN_CONSTANTS[_t] = (0, None)
for _t in ("true", "True", "TRUE"):
    _PLAIN_CONSTANTS[_t] = (1, True)
for _t in ("false", "False", "FALSE"):
    _PLAIN_CONSTANTS[_t] = (1, False)
for _t in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
    _PLAIN_CONSTANTS[_t] = (2, _INF)
for _t in ("-.inf", "-.Inf", "-.INF"):
    _PLAIN_CONSTANTS[_t] = (2, -_INF)
for _t in (".nan", ".NaN", ".NAN"):
    _PLAIN_CONSTANTS[_t] = (2, _NAN)
del _t

_NUMBER_START = frozenset("0123456789+-.")
# yaml.v3's yamlStyleFloat (applied to the text with '_' removed).
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
# Go's strconv.ParseFloat on a text starting with '.' (no '_' removal there).
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
# Go's strconv.ParseInt(s, 0, 64) syntax, without the 64-bit limit.
_GO_INT = re.compile(
    r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|0[oO]([0-7]+)|(0[0-7]*)|([1-9][0-9]*))\Z"
)
_OCTAL_DIGITS = frozenset("01234567")

_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAGS = frozenset((_YAML_TAG + "str", _YAML_TAG + "binary"))
_TYPED_TAGS = {
    _YAML_TAG + "null": "!!null",
    _YAML_TAG + "bool": "!!bool",
    _YAML_TAG + "int": "!!int",
    _YAML_TAG + "float": "!!float",
}
_KIND_TAG = {0: "!!null", 1: "!!bool"}

_WHITESPACE = frozenset(" \t\r\n\x85\u2028\u2029")
_BREAKS = frozenset("\r\n\x85\u2028\u2029")


def _go_int(plain: str) -> int | None:
    """``strconv.ParseInt(plain, 0, ...)`` without the size limit, or None."""
    m = _GO_INT.match(plain)
    if m is None:
        return None
    sign, hexd, bind, octd, zero, dec = m.groups()
    if dec is not None:
        v = int(dec)
    elif hexd is not None:
        v = int(hexd, 16)
    elif zero is not None:
        v = int(zero, 8)
    elif octd is not None:
        v = int(octd, 8)
    else:
        v = int(bind, 2)
    return -v if sign == "-" else v


def _plain_number(text: str) -> int | float | None:
    """The number a plain scalar starting with a digit, a sign or '.' denotes, else None.

    This is yaml.v3's resolve(): '_' removed, Go integer syntax (base prefixes, leading-0
    octal), then its float syntax; a float that overflows (``1e400``) stays a string.
    """
    if text[0] == ".":
        if _DOT_FLOAT.match(text):
            return float(text)
        return None
    plain = text.replace("_", "") if "_" in text else text
    try:
        if plain.isdigit() and plain.isascii():
            if plain[0] != "0" or len(plain) == 1:
                return int(plain)
            if _OCTAL_DIGITS.issuperset(plain):
                return int(plain, 8)
            # "09": not an octal integer; yaml.v3 then reads it as a float.
        else:
            v = _go_int(plain)
            if v is not None:
                return v
    except ValueError:
        # More decimal digits than Python converts (sys.get_int_max_str_digits()): far past
        # float64 too, where yaml.v3 gives up and keeps the text.
        return None
    if _FLOAT.match(plain):
        f = float(plain)
        if f != _INF and f != -_INF:
            return f
    return None


def _resolve(text: str) -> tuple[int, object]:
    """yaml.v3's untagged resolution: (kind, value), kind 0 null, 1 bool, 2 number, 3 string."""
    c = _PLAIN_CONSTANTS.get(text)
    if c is not None:
        return c
    if text[0] in _NUMBER_START:
        n = _plain_number(text)
        if n is not None:
            return 2, n
    return 3, text


def _short_tag(kind: int, value: object) -> str:
    if kind == 2:
        return "!!int" if type(value) is int else "!!float"
    return _KIND_TAG.get(kind, "!!str")


def _tagged_scalar(tag: str, text: str, env: str, span: Span) -> tuple[Node, Diagnostic | None]:
    """A scalar with an explicit tag (any style)."""
    if tag in _STR_TAGS:
        return StringNode(env, span, text), None
    want = _TYPED_TAGS.get(tag)
    if want is None:
        # Local tags and the other YAML tags: yaml.v3 leaves the text as it is.
        return StringNode(env, span, text), None
    kind, value = _resolve(text)
    got = _short_tag(kind, value)
    if got == want:
        if kind == 0:
            return NullNode(env, span), None
        if kind == 1:
            return BoolNode(env, span, value), None  # type: ignore[arg-type]
        return NumberNode(env, span, value), None  # type: ignore[arg-type]
    if want == "!!float" and got == "!!int":
        return NumberNode(env, span, float(value)), None  # type: ignore[arg-type]
    return StringNode(env, span, text), error(f"cannot decode {got} `{text}` as a {want}", span_range(env, span))


def _syntax_error(exc: BaseException, filename: str = "") -> Diagnostic:
    """A parser exception worded as yaml.v3 words it (``yaml: line N: problem``), with the
    parser's own place as the diagnostic's ``location`` (for people; the reference has none)."""
    d = _worded_syntax_error(exc)
    # The construct that is not closed (libyaml's context) is where the fix goes; else the
    # place the parser stopped.
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    if filename and mark is not None and d.range is None:
        at = Pos(mark.line + 1, mark.column + 1, mark.index)
        problem = getattr(exc, "problem", None) or d.summary
        context = getattr(exc, "context", None)
        if context and getattr(exc, "context_mark", None) is not None:
            problem = f"{problem} ({context} that starts here)"
        return d.replace(location=Range(filename, at, at), problem=f"yaml: {problem}")
    return d


def _worded_syntax_error(exc: BaseException) -> Diagnostic:
    if isinstance(exc, ReaderError):
        return error(f"yaml: {exc.reason}")
    if isinstance(exc, MarkedYAMLError) and exc.problem == _LIBYAML_TOO_DEEP:
        # libyaml's own limit, met although it is lifted above ours (a build whose limit
        # cannot be set): the document is deeper than the engine's rule allows either way.
        mark = exc.problem_mark
        return _too_deep(mark.line if mark is not None else 0)
    if isinstance(exc, MarkedYAMLError):
        line = 0
        context_mark, problem_mark = exc.context_mark, exc.problem_mark
        if context_mark is not None and context_mark.line != 0:
            line = context_mark.line
        elif problem_mark is not None and problem_mark.line != 0:
            line = problem_mark.line
        if line and isinstance(exc, ScannerError):
            line += 1  # yaml.v3: "scanner errors don't iterate line before returning error"
        where = f"line {line}: " if line else ""
        problem = exc.problem or "unknown problem parsing YAML content"
        return error(f"yaml: {where}{problem}")
    if isinstance(exc, UnicodeError):
        return error(f"yaml: invalid UTF-8 text: {exc}")
    return error(f"yaml: {exc}")


class _Offsets:
    """Code point offsets (as libyaml counts them: BOM excluded) to UTF-8 byte offsets.

    Only used for text that is not pure ASCII (there, both are the same). The UTF-8 length of
    every 64-code-point chunk is summed up front; a look-up encodes at most one partial chunk.
    """

    __slots__ = ("source", "bom", "starts")

    _CHUNK = 64

    def __init__(self, source: str) -> None:
        self.source = source
        self.bom = 1 if source.startswith("\ufeff") else 0
        chunk = self._CHUNK
        starts = [0]
        total = 0
        for i in range(0, len(source), chunk):
            total += len(source[i : i + chunk].encode("utf-8"))
            starts.append(total)
        self.starts = starts

    def byte(self, index: int) -> int:
        i = index + self.bom
        k, r = divmod(i, self._CHUNK)
        if r == 0:
            return self.starts[k]
        start = k * self._CHUNK
        return self.starts[k] + len(self.source[start:i].encode("utf-8"))


def _decode(text: str | bytes) -> str:
    if isinstance(text, str):
        return text
    data = bytes(text)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    return data.decode("utf-8")


def parse_yaml(text: str | bytes, filename: str, *, reference: bool = False) -> tuple[Node | None, list[Diagnostic]]:
    """Parse the first YAML document of ``text`` into a node tree.

    Never raises: every problem is a diagnostic. Returns ``(None, [])`` for an empty document
    and ``(None, [error])`` when the document cannot be loaded.
    """
    try:
        with collector_paused(), libyaml_nesting_lifted(_LIBYAML_DEPTH):
            return _parse(text, filename, reference)
    except RecursionError:  # pragma: no cover - nothing here recurses on depth
        return None, [error("yaml: document nested too deeply")]
    except Exception as exc:  # pragma: no cover - last resort: never raise
        return None, [error(f"yaml: {exc}")]


def _parse(text: str | bytes, filename: str, reference: bool = False) -> tuple[Node | None, list[Diagnostic]]:
    try:
        source = _decode(text)
    except UnicodeError as exc:
        return None, [_invalid_bytes(text, exc)]

    if source.isascii():
        offsets = None
        parser_input: str | bytes = source
    else:
        try:
            parser_input = source.encode("utf-8")
        except UnicodeError as exc:  # lone surrogates in a str
            return None, [error(f"yaml: invalid Unicode character: {exc.reason}")]
        offsets = _Offsets(source)

    try:
        return _convert(_new_parser(parser_input), source, filename, offsets, reference)
    except YAMLError as exc:
        return None, [_syntax_error(exc, filename)]
    except UnicodeError as exc:
        return None, [_syntax_error(exc, filename)]


def _invalid_bytes(text: str | bytes, exc: UnicodeError) -> Diagnostic:
    """The diagnostic for bytes that are not UTF-8: libyaml's (= yaml.v3's) wording if it has one."""
    try:
        parser = _new_parser(bytes(text))  # type: ignore[arg-type]
        while type(parser.get_event()) is not _StreamEndEvent:
            pass
    except YAMLError as yexc:
        return _syntax_error(yexc)
    except Exception:
        pass
    return error(f"yaml: invalid UTF-8 text: {exc}")


def _convert(parser, source: str, filename: str, offsets: _Offsets | None, reference: bool = False):
    """Build the tree of the first document from the parser's events, with an explicit stack."""
    get = parser.get_event
    get()  # StreamStartEvent
    ev = get()
    if type(ev) is not _DocumentStartEvent:
        return None, []  # no document at all
    ev = get()
    ScalarEvent = _ScalarEvent
    if (
        type(ev) is ScalarEvent
        and ev.value == ""
        and not ev.style
        and ev.tag is None
        and ev.anchor is None
    ):
        get()  # DocumentEndEvent
        return None, []  # an empty document ("---" alone)

    MappingStartEvent = _MappingStartEvent
    SequenceStartEvent = _SequenceStartEvent
    MappingEndEvent = _MappingEndEvent
    SequenceEndEvent = _SequenceEndEvent
    StringNode_ = _StringNode
    ObjectEntry_ = _ObjectEntry
    constants_get = _PLAIN_CONSTANTS.get
    number_start = _NUMBER_START
    plain_number = _plain_number
    byte_at = None if offsets is None else offsets.byte
    lines = _Lines(source, offsets)
    last_line = lines.count  # positions on later lines have byte 0 (see _Lines)
    no_key = _NO_KEY

    # The collection being filled: its items, whether it is a mapping, and the key waiting
    # for its value (mappings only). Enclosing collections wait on `stack`.
    root_holder: list = []
    items: list = root_holder
    is_map = False
    key = no_key
    begin: tuple[int, int, int]
    stack: list[tuple] = []
    flow_depth = block_depth = 0
    fatal: Diagnostic | None = None

    while True:
        t = type(ev)
        if t is ScalarEvent:
            sm = ev.start_mark
            em = ev.end_mark
            index = sm.index
            bl = sm.line + 1
            bc = sm.column + 1
            value = ev.value
            style = ev.style
            if not reference:
                # Source spans: where the text is (editors of the definition splice by them).
                bb = index if byte_at is None else byte_at(index)
                if em.index == index:
                    rng = (bl, bc, bb, bl, bc, bb)
                elif style == "|" or style == ">":
                    e = _block_scalar_end(source, em, offsets)
                    rng = (bl, bc, bb, e.line, e.column, e.byte)
                elif byte_at is None:
                    rng = (bl, bc, bb, em.line + 1, em.column + 1, em.index)
                else:
                    rng = (bl, bc, bb, em.line + 1, em.column + 1, byte_at(em.index))
            # The reference's ranges (spec section 10): a scalar ends on its start line, as
            # many columns on as its decoded value has UTF-8 bytes; bytes come from columns.
            elif byte_at is None:
                if bl > last_line:
                    if style == "|" or style == ">":
                        rng = _block_span(bl, bc, value, lines)
                    else:
                        rng = (bl, bc, 0, bl, bc + len(value), 0)
                elif style == "|" or style == ">":
                    rng = _block_span(bl, bc, value, lines)
                elif ev.tag is not None and em.index != index:
                    n = len(value) + _tag_width(source, index)
                    rng = (bl, bc, index, bl, bc + n, index + n)
                else:
                    n = len(value)
                    rng = (bl, bc, index, bl, bc + n, index + n)
            else:
                if style == "|" or style == ">":
                    rng = _block_span(bl, bc, value, lines)
                else:
                    n = len(value.encode("utf-8"))
                    if ev.tag is not None and em.index != index:
                        n += _tag_width(source, index + offsets.bom)
                    ec = bc + n
                    rng = (bl, bc, lines.byte(bl, bc), bl, ec, lines.byte(bl, ec))
            tag = ev.tag
            if tag is not None and tag != "!":
                # A tagged scalar is not plain: positions inside it are not mapped.
                node, diag = _tagged_scalar(tag, value, filename, rng + _UNMAPPABLE)
                if diag is not None and fatal is None:
                    fatal = diag
            elif style:
                node = StringNode_(filename, rng + _UNMAPPABLE, value)
            else:
                c = constants_get(value)
                if c is not None:
                    kind = c[0]
                    if kind == 0:
                        node = _NullNode(filename, rng)
                    elif kind == 1:
                        node = _BoolNode(filename, rng, c[1])
                    else:
                        node = _NumberNode(filename, rng, c[1])
                elif value[0] in number_start:
                    n = plain_number(value)
                    if n is not None:
                        node = _NumberNode(filename, rng, n)
                    else:
                        node = StringNode_(filename, rng if em.line == sm.line else rng + _UNMAPPABLE, value)
                elif em.line != sm.line:
                    node = StringNode_(filename, rng + _UNMAPPABLE, value)
                else:
                    node = StringNode_(filename, rng, value)
        elif t is MappingStartEvent or t is SequenceStartEvent:
            sm = ev.start_mark
            if not reference:
                begin = (sm.line + 1, sm.column + 1, sm.index if byte_at is None else byte_at(sm.index))
            elif byte_at is None:
                begin = (sm.line + 1, sm.column + 1, sm.index if sm.line < last_line else 0)
            else:
                begin = (sm.line + 1, sm.column + 1, lines.byte(sm.line + 1, sm.column + 1))
            flow = ev.flow_style
            if flow:
                flow_depth += 1
                if flow_depth > _MAX_DEPTH:
                    return None, [_too_deep(sm.line)]
            else:
                block_depth += 1
                if block_depth > _MAX_DEPTH:
                    return None, [_too_deep(sm.line)]
            stack.append((items, is_map, key, begin, flow))
            items = []
            is_map = t is MappingStartEvent
            key = no_key
            ev = get()
            continue
        elif t is MappingEndEvent or t is SequenceEndEvent:
            done, done_is_map = items, is_map
            items, is_map, key, begin, flow = stack.pop()
            # A collection ends with its last item, recursively (a flow collection's closing
            # bracket is not part of it), and an empty one where it begins: the reference's
            # ranges, spec section 10.
            if flow:
                flow_depth -= 1
            else:
                block_depth -= 1
            if flow and not reference:  # the source span: through the closing bracket
                em = ev.end_mark
                end = (em.line + 1, em.column + 1, em.index if byte_at is None else byte_at(em.index))
            elif done:
                end = (done[-1].value if done_is_map else done[-1]).span[3:6]
            else:
                end = begin
            if done_is_map:
                node = _ObjectNode(filename, begin + end, tuple(done))
            else:
                node = _ArrayNode(filename, begin + end, tuple(done))
        elif t is _AliasEvent:
            sm = ev.start_mark
            em = ev.end_mark
            node = _NullNode(
                filename,
                (
                    sm.line + 1,
                    sm.column + 1,
                    lines.byte(sm.line + 1, sm.column + 1) if reference else (sm.index if byte_at is None else byte_at(sm.index)),
                    em.line + 1,
                    em.column + 1,
                    lines.byte(em.line + 1, em.column + 1) if reference else (em.index if byte_at is None else byte_at(em.index)),
                ),
            )
            if fatal is None:
                fatal = error("alias nodes are not supported", node.range)
        else:  # pragma: no cover - libyaml sends nothing else inside a document
            raise YAMLError(f"unexpected event {ev!r}")

        if is_map:
            if key is no_key:
                if type(node) is not StringNode and fatal is None:
                    fatal = error("mapping keys must be strings", node.range)
                key = node
            else:
                if type(key) is StringNode:
                    items.append(ObjectEntry_(key, node))
                key = no_key
        else:
            items.append(node)
            if items is root_holder:
                break
        ev = get()

    get()  # DocumentEndEvent: yaml.v3 reads it too (and reports what breaks it)
    if fatal is not None:
        return None, [fatal]
    return root_holder[0], []


_NO_KEY = object()
_UNMAPPABLE = (1,)  # see nodes.Span

# yaml.v3 refuses more than 10000 nested flow collections or block indentation levels
# ("exceeded max depth of 10000"). The rule is counted here, not left to libyaml, whose limit
# depends on the PyYAML release (none before 6.0.4, 1000 since); libyaml's flow scanning is
# quadratic in the depth, so the same limit also bounds the time spent on hostile input.
_MAX_DEPTH = 10000
# libyaml (PyYAML >= 6.0.4) has a process-wide limit of its own, 1000 by default, counted a
# little differently; while we parse it is lifted well above ours so that ours decides.
_LIBYAML_DEPTH = 2 * _MAX_DEPTH
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _too_deep(line0: int) -> Diagnostic:
    where = f"line {line0 + 1}: " if line0 else ""
    return error(f"yaml: {where}exceeded max depth of {_MAX_DEPTH}")


def _tag_width(source: str, index: int) -> int:
    """Columns a scalar's tag adds to its range: the tag as written, and one space."""
    j = index
    n = len(source)
    while j < n and source[j] not in _WHITESPACE:
        j += 1
    return j - index + 1


def _block_span(bl: int, bc: int, value: str, lines: "_Lines") -> Span:
    """A block scalar's range as the reference computes it: as many lines on as the value has
    line breaks, at the start column plus the UTF-8 length of what follows the last one."""
    breaks = value.count("\n")
    last = value[value.rfind("\n") + 1:] if breaks else value
    el = bl + breaks
    ec = bc + len(last.encode("utf-8"))
    return (bl, bc, lines.byte(bl, bc), el, ec, lines.byte(el, ec))


class _Lines:
    """Byte offsets of (line, column) positions as the reference derives them (spec section 10).

    The file is split on ``\n``; a line past the last piece that a ``\n`` ends has byte 0 (so
    does the last line of a file without a final newline). On an ASCII line the byte is the
    line's offset plus column - 1; on other lines the columns are walked as display width over
    grapheme clusters (wide characters count 2), as the reference does.
    """

    __slots__ = ("source", "count", "_starts", "_bytes")

    def __init__(self, source: str, offsets: "_Offsets | None") -> None:
        if offsets is not None and offsets.bom:
            source = source[1:]
        self.source = source
        self.count = source.count("\n")
        self._starts: list[int] | None = None  # code-point index of each line's start
        self._bytes: list[int] | None = None  # UTF-8 offset of each line's start

    def _index(self) -> None:
        starts = [0]
        find = self.source.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._starts = starts
        if self.source.isascii():
            self._bytes = starts
        else:
            total = 0
            out = [0]
            src = self.source
            for k in range(1, len(starts)):
                total += len(src[starts[k - 1]:starts[k]].encode("utf-8"))
                out.append(total)
            self._bytes = out

    def byte(self, line: int, column: int) -> int:
        if line > self.count or line < 1:
            return 0
        if self._starts is None:
            self._index()
        assert self._starts is not None and self._bytes is not None
        start = self._starts[line - 1]
        text = self.source[start:self._starts[line] - 1]
        if text.isascii():
            return self._bytes[line - 1] + column - 1
        return self._bytes[line - 1] + _width_walk(text, column - 1)


def _width_walk(text: str, width: int) -> int:
    """UTF-8 bytes of the grapheme clusters at the start of ``text`` whose display width
    reaches ``width`` (all of ``text`` when it is narrower)."""
    import unicodedata

    w = b = 0
    i, n = 0, len(text)
    while i < n and w < width:
        ch = text[i]
        j = i + 1
        # A cluster: a character and the combining marks, joiners and selectors after it.
        while j < n and (unicodedata.combining(text[j]) or text[j] in "\u200d\ufe0e\ufe0f"
                         or unicodedata.category(text[j]) in ("Mn", "Me")):
            j += 1
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        b += len(text[i:j].encode("utf-8"))
        i = j
    return b
def _block_scalar_end(source: str, em, offsets: _Offsets | None) -> Pos:
    """Just after the last non-blank character of a block scalar (libyaml ends it at the
    start of the next token, after the trailing line breaks)."""
    bom = offsets.bom if offsets is not None else 0
    end = em.index + bom  # index into source
    j = end
    whitespace = _WHITESPACE
    while j > 0 and source[j - 1] in whitespace:
        j -= 1
    if j == end:
        line, column = em.line, em.column
    else:
        gap = source[j:end]
        breaks = 0
        k = 0
        n = len(gap)
        while k < n:
            ch = gap[k]
            if ch == "\r" and k + 1 < n and gap[k + 1] == "\n":
                k += 1
            if ch in _BREAKS:
                breaks += 1
            k += 1
        line = em.line - breaks
        if breaks == 0:
            column = em.column - (end - j)
        else:
            k = j
            while k > bom and source[k - 1] not in _BREAKS:
                k -= 1
            column = j - k
    index = j - bom
    byte = index if offsets is None else offsets.byte(index)
    return Pos(line + 1, column + 1, byte)
