"""String templates: ``${...}`` property accesses inside ESC strings, and property paths.

A pure string-level parser (no YAML, no evaluation). Offsets are 0-based code-point offsets into
the text that was parsed, ``end`` exclusive; the caller maps them onto the document.

Grammar (see ``esc-language.md`` section 3)::

    access   := '${' root { accessor } '}'
    root     := name | '[' subscript ']'
    accessor := '.' name | '[' subscript ']'
    name     := 1+ chars other than '.', '[', '}', whitespace
    subscript:= '"' { '\\"' | char other than '"' } '"'  |  integer

``$$`` is a literal ``$`` anywhere; a lone ``$`` not followed by ``{`` is literal text.

Parsing never raises: problems are returned as :class:`TemplateError` values and parsing
recovers (see the notes on each error below). Decisions where the grammar is silent:

* ``${}`` is one empty root ``PropertyName("")`` and no error (evaluation reports
  ``unknown property ""``). ``${.a}`` is the same as ``${a}``.
* Whitespace and any other character that cannot continue an access (e.g. ``b`` in
  ``${a[0]b}``, ``]`` after a subscript) end the access with
  ``missing closing brace '}' in interpolation``; the rest of the text is literal text again.
  ``${ a }`` is therefore an access with an empty root name ending at offset 2 plus that error.
* No nesting: in ``${a.${b}}`` the second accessor is the name ``${b`` and the final ``}`` is
  literal text.
* Quoted keys may contain anything (``}``, ``]``, ``${``); ``\\"`` is the only escape, any other
  backslash is literal. A key without a closing quote swallows the rest of the text (in a
  template: the missing quote, bracket and brace are each reported, as the reference does).
* An unquoted subscript runs to the next ``]`` (in templates it also stops at ``}``). Its text
  must be a Go ``strconv.ParseInt(s, 10, 64)`` integer: optional sign, ASCII digits, leading zeros
  allowed (``[-1]`` -> -1, ``[007]`` -> 7, ``[+2]`` -> 2). Anything else (``[ 1 ]``, ``[1.5]``,
  ``[]``, out of int64 range) is an error and the text is kept as a string key.
* A numeric root (``${[0]}``) is an error; in a template the index stays an integer (evaluation
  then reports an integer index on an object, as the reference does), in a path it is kept as
  the string key ``"0"``.
* Error ranges are the reference's (spec section 10): a missing ``}`` is zero-width where parsing
  stopped, a bad numeric subscript covers the text between its brackets, a numeric root runs
  from ``[`` to the end of its digits.
"""
from __future__ import annotations

import re

from ._fast import Record, fast_constructor

__all__ = [
    "Accessor",
    "PropertyAccess",
    "PropertyName",
    "PropertySubscript",
    "TemplateError",
    "TemplatePart",
    "format_path",
    "has_interpolation",
    "parse_path",
    "parse_template",
    "unescape",
]


class PropertyName(Record):
    """``.name`` or the root ``name``; the range includes the leading ``.`` if there is one."""

    __slots__ = ("name", "start", "end")
    name: str
    start: int
    end: int

    @property
    def key(self) -> str:
        return self.name


class PropertySubscript(Record):
    """``[3]`` or ``["key"]``; the range covers the brackets."""

    __slots__ = ("index", "start", "end")
    index: int | str
    start: int
    end: int

    @property
    def key(self) -> int | str:
        return self.index


Accessor = PropertyName | PropertySubscript


class PropertyAccess(Record):
    """One ``${...}``; the range covers ``${`` through ``}`` (or to where parsing stopped)."""

    __slots__ = ("accessors", "start", "end")
    accessors: tuple[Accessor, ...]
    start: int
    end: int


class TemplatePart(Record):
    """Literal ``text`` (``$$`` already unescaped) followed by ``access`` (``None`` only at the end)."""

    __slots__ = ("text", "access")
    text: str
    access: PropertyAccess | None


class TemplateError(Record):
    __slots__ = ("summary", "start", "end")
    summary: str
    start: int
    end: int


# Error summaries (exactly as the reference implementation words them).
ERR_MISSING_BRACE = "missing closing brace '}' in interpolation"
ERR_EMPTY_NAME = "property name must not be empty"
ERR_MISSING_BRACKET = "subscript is missing closing bracket ']'"
ERR_MISSING_QUOTE = "key subscript is missing closing quote '\"'"
ERR_EMPTY_KEY = "key subscript must not be empty"
ERR_BAD_INDEX = "numeric subscript must be a positive base-10 integer"
ERR_NUMERIC_ROOT = (
    "the first accessor must be a property name or key subscript, not a numeric subscript"
)
# Only for parse_path (there is no '}' to miss in a path).
ERR_PATH_UNEXPECTED = "unexpected character in property path"

# Whitespace as Go's unicode.IsSpace sees it (Unicode White_Space).
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_SET = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
# A name runs up to the first '.', '[', '}' (templates only) or whitespace. A single character
# class with '*': linear, no backtracking.
_NAME_TEMPLATE = re.compile(f"[^.\\[}}{_WS}]*")
_NAME_PATH = re.compile(f"[^.\\[{_WS}]*")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def has_interpolation(text: str) -> bool:
    """Whether ``text`` contains a ``${`` that is not escaped as ``$${``."""
    i = text.find("${")
    while i != -1:
        # ``i`` is the last '$' of a run of '$'s; pairs in the run are escapes ('$$' -> '$'),
        # so the run opens an interpolation iff its length is odd.
        j = i
        while j and text[j - 1] == "$":
            j -= 1
        if (i - j) % 2 == 0:
            return True
        i = text.find("${", i + 2)
    return False


def unescape(text: str) -> str:
    """``$$`` -> ``$`` (for strings without interpolation)."""
    return text.replace("$$", "$")


def _parse_int(s: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 10, 64)``: optional sign, ASCII digits, int64 range."""
    if _INTEGER.match(s) is None:
        return None
    v = int(s)
    if v < _INT64_MIN or v > _INT64_MAX:
        return None
    return v


def _parse_accessors(
    text: str, pos: int, template: bool, errors: list[TemplateError], access_start: int
) -> tuple[list[Accessor], int, bool]:
    """Parse ``root {accessor}`` starting at ``pos``.

    Returns ``(accessors, stop, closed)``: ``stop`` is the offset just past the access (past the
    ``}`` when ``closed``). In template mode the access ends at ``}`` or at the first character
    that cannot continue it; in path mode at the end of the text.
    """
    n = len(text)
    name_re = _NAME_TEMPLATE if template else _NAME_PATH
    name_match = name_re.match
    accessors: list[Accessor] = []
    append = accessors.append
    brace = -2  # cached position of the next '}' at or after pos (templates), -1: none

    while True:
        if pos >= n:
            if template:
                # Zero-width, where parsing stopped (the reference's range).
                errors.append(TemplateError(ERR_MISSING_BRACE, n, n))
                if not accessors:
                    append(PropertyName("", pos, pos))
            return accessors, n, False
        c = text[pos]
        if c == "}" and template:
            if not accessors:
                append(PropertyName("", pos, pos))
            return accessors, pos + 1, True
        if c == ".":
            end = name_match(text, pos + 1).end()
            if end == pos + 1:
                errors.append(TemplateError(ERR_EMPTY_NAME, pos, end))
            append(PropertyName(text[pos + 1 : end], pos, end))
            pos = end
            continue
        if c == "[":
            start = pos
            if pos + 1 < n and text[pos + 1] == '"':
                # Quoted key: find the closing quote; '\"' is an escaped quote.
                q = text.find('"', pos + 2)
                while q != -1 and text[q - 1] == "\\":
                    q = text.find('"', q + 1)
                if q == -1:
                    # The key runs to the end: its quote, the bracket and (in a template) the
                    # brace are all missing, each reported as the reference does.
                    errors.append(TemplateError(ERR_MISSING_QUOTE, start + 1, n))
                    if template:
                        errors.append(TemplateError(ERR_MISSING_BRACKET, start, n))
                    key = text[pos + 2 :].replace('\\"', '"')
                    append(PropertySubscript(key, start, n))
                    if template:
                        errors.append(TemplateError(ERR_MISSING_BRACE, n, n))
                    return accessors, n, False
                key = text[pos + 2 : q].replace('\\"', '"')
                if q + 1 < n and text[q + 1] == "]":
                    end = q + 2
                    if not key:
                        errors.append(TemplateError(ERR_EMPTY_KEY, start, end))
                else:
                    end = q + 1
                    errors.append(TemplateError(ERR_MISSING_BRACKET, start, end))
                    if not key:
                        errors.append(TemplateError(ERR_EMPTY_KEY, start, end))
                append(PropertySubscript(key, start, end))
                pos = end
                continue
            # Unquoted: an integer up to the next ']' (in templates, not past the next '}').
            if template:
                if brace != -1 and brace < pos:
                    brace = text.find("}", pos)
                limit = n if brace == -1 else brace
            else:
                limit = n
            close = text.find("]", pos + 1, limit)
            if close == -1:
                raw = text[pos + 1 : limit]
                end = limit
                errors.append(TemplateError(ERR_MISSING_BRACKET, start, end))
                value = _parse_int(raw)
                index: int | str = raw if value is None else value
            else:
                raw = text[pos + 1 : close]
                end = close + 1
                value = _parse_int(raw)
                if value is None:
                    # Only the text between the brackets.
                    errors.append(TemplateError(ERR_BAD_INDEX, pos + 1, close))
                    index = raw
                else:
                    index = value
            if not accessors and not isinstance(index, str):
                # From '[' to the end of the digits, ']' excluded.
                errors.append(TemplateError(ERR_NUMERIC_ROOT, start, close if close != -1 else end))
                if not template:
                    index = raw  # a path's root is a key; in a template the evaluator reports it
            append(PropertySubscript(index, start, end))
            pos = end
            continue
        if not accessors and c not in _WS_SET:
            # The root name (no leading '.').
            end = name_match(text, pos).end()
            append(PropertyName(text[pos:end], pos, end))
            pos = end
            continue
        # Whitespace, or a character that cannot start an accessor: the access ends here.
        if not accessors:
            append(PropertyName("", pos, pos))
        if template:
            errors.append(TemplateError(ERR_MISSING_BRACE, pos, pos))
        else:
            errors.append(TemplateError(ERR_PATH_UNEXPECTED, pos, pos + 1))
        return accessors, pos, False


# ``${a.b.c}`` with plain names: by far the most common access. Names here exclude a few
# characters the grammar allows (``$``, ``{``, quotes); such texts take the general parser.
_SIMPLE_SPLIT = re.compile(r"\$\{([^.\[\]{}\s\"$]+(?:\.[^.\[\]{}\s\"$]+)*)\}")


_name = fast_constructor(PropertyName)
_access = fast_constructor(PropertyAccess)


_new_part = fast_constructor(TemplatePart)


def _parse_simple(text: str) -> tuple[TemplatePart, ...] | None:
    """Parts of a template whose every ``$`` starts a plain ``${a.b}`` access, else ``None``."""
    pieces = _SIMPLE_SPLIT.split(text)
    count = len(pieces) // 2
    if count != text.count("$"):
        return None
    parts = []
    pos = 0
    for lit, chain in zip(pieces[0:-1:2], pieces[1::2]):
        start = pos + len(lit)
        offset = start + 2
        pos = start + len(chain) + 3
        if "." not in chain:  # one name: most accesses
            accessors: tuple[PropertyName, ...] = (_name(chain, offset, pos - 1),)
        else:
            names = []
            for name in chain.split("."):
                end = offset + len(name)
                names.append(_name(name, offset if not names else offset - 1, end))
                offset = end + 1
            accessors = tuple(names)
        parts.append(_new_part(lit, _access(accessors, start, pos)))
    if pieces[-1]:
        parts.append(_new_part(pieces[-1], None))
    return tuple(parts)


def parse_template(text: str) -> tuple[tuple[TemplatePart, ...], tuple[TemplateError, ...]]:
    """Split ``text`` into literal text and ``${...}`` accesses.

    ``hello ${a.b}!`` -> ``(TemplatePart("hello ", a.b), TemplatePart("!", None))``; a text that is
    exactly one ``${...}`` gives one part with text ``""``; a text without ``${`` gives one part
    with ``access=None`` (none at all for ``""``).
    """
    if "$" not in text:
        return ((TemplatePart(text, None),) if text else ()), ()
    simple = _parse_simple(text)
    if simple is not None:
        return simple, ()
    return _parse_general(text)


def _parse_general(text: str) -> tuple[tuple[TemplatePart, ...], tuple[TemplateError, ...]]:
    find = text.find
    i = find("$")
    if i == -1:
        return ((TemplatePart(text, None),) if text else ()), ()
    n = len(text)
    parts: list[TemplatePart] = []
    errors: list[TemplateError] = []
    buf: list[str] = []
    pos = 0
    while i != -1:
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "{":
            buf.append(text[pos:i])
            accessors, pos, _ = _parse_accessors(text, i + 2, True, errors, i)
            parts.append(TemplatePart("".join(buf), PropertyAccess(tuple(accessors), i, pos)))
            buf = []
        elif nxt == "$":
            buf.append(text[pos : i + 1])
            pos = i + 2
        else:
            buf.append(text[pos : i + 1])
            pos = i + 1
        i = find("$", pos)
    buf.append(text[pos:])
    tail = "".join(buf)
    if tail:
        parts.append(TemplatePart(tail, None))
    return tuple(parts), tuple(errors)


def parse_path(text: str) -> tuple[tuple[Accessor, ...], tuple[TemplateError, ...]]:
    """Parse a property path given by a user (``a.b[0]["c d"]``): the access grammar without
    ``${ }``. ``}`` is an ordinary name character here. An empty text is the empty path.
    Whitespace outside quotes (and e.g. ``b`` in ``a[0]b``) gives
    ``unexpected character in property path`` and parsing stops there.
    """
    if not text:
        return (), ()
    errors: list[TemplateError] = []
    accessors, _, _ = _parse_accessors(text, 0, False, errors, 0)
    return tuple(accessors), tuple(errors)


def _bare_name_ok(key: str) -> bool:
    # a bare name that reads back the same in a path and inside ${ }
    return bool(key) and _NAME_TEMPLATE.match(key).end() == len(key)


def format_path(accessors) -> str:
    """Format accessors as a path: ``a.b[0]["c d"]``.

    String keys (``PropertyName`` or a string ``PropertySubscript``) are written ``.key`` when they
    are identifiers (``[A-Za-z_][A-Za-z0-9_]*``, as ESC writes diagnostic paths: ``values["a-b"]``),
    else as ``["key"]`` with ``"`` escaped as ``\\"``. So ``parse_path(format_path(x))`` gives back
    ``x`` up to that normalisation (identifier keys come back as ``PropertyName``, others as
    ``PropertySubscript``); for ``x`` that ``parse_path`` itself returned from a ``format_path``
    output it is exactly ``x``, offsets included.

    Not representable: a numeric first accessor (``[0]``; parse_path reports it) and a key that
    ends with a backslash and cannot be written as a bare name (it has '.', '[', '}' or
    whitespace):
    the grammar has no way to write ``\\`` before the closing quote. Such a key is then written
    quoted anyway (lossy). Never raises.
    """
    out: list[str] = []
    for acc in accessors:
        key = acc.name if isinstance(acc, PropertyName) else acc.index
        if isinstance(key, str):
            if _IDENT.match(key):
                out.append("." + key if out else key)
            elif key.endswith("\\") and _bare_name_ok(key):
                out.append("." + key if out else key)
            else:
                out.append('["' + key.replace('"', '\\"') + '"]')
        else:
            out.append(f"[{int(key)}]")
    return "".join(out)
