"""Output formats of an opened environment, byte for byte as the ``esc`` CLI prints them
(section 9 of the language spec).

- ``json``: plain values, Go's ``json.Encoder`` with a 2-space indent (keys sorted, ``<>&``
  escaped as ``\\u003c``...), trailing newline.
- ``yaml``: the same data through yaml.v3 rules (2-space indent, sequences indented under
  their key, keys in yaml.v3's natural order, strings quoted only when yaml.v3 would).
- ``string``: the ``fn::toString`` conversion, merged keys included, then a newline.
- ``detailed``: the API's Value model (``{value, secret, unknown, trace}`` in Go field order);
  for a whole environment, the API's Environment (:func:`render_model`).
- ``dotenv`` / ``shell``: ``KEY="<Go-quoted>"`` lines for ``environmentVariables`` then
  ``files`` (each sorted; files written to 0600 temp files, the variable holding the path);
  ``shell`` prefixes ``export ``.

Secrets show as ``[secret]`` unless ``show_secrets``; a redacted dotenv/shell does not write the
files (their paths show as ``[unknown]``, as ``esc env get`` does).

Example::

    from esc_pulumi.esc.values import from_plain
    render(from_plain({"a": "<b>"}), "json", show_secrets=False, environment="dev")
    # '{\\n  "a": "\\\\u003cb\\\\u003e"\\n}\\n'
"""
from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from typing import Any, Iterable

from ..errors import EscError
from ..esc.views import detailed
from ..esc.values import (
    SECRET_TEXT,
    UNKNOWN_TEXT,
    GoStruct,
    Value,
    format_number,
    go_json,
    go_quote,
    int_text,
    to_plain,
    to_string,
)
from ..runtime.projection import ENVIRONMENT_VARIABLES, FILES, project_section

__all__ = ["FORMATS", "render", "render_model", "go_json_indent", "yaml_text", "string_text", "dotenv_lines"]

FORMATS = ("json", "yaml", "dotenv", "shell", "string", "detailed")


def render(
    value: Value,
    fmt: str,
    *,
    show_secrets: bool,
    environment: str,
    root: bool = True,
    temp_dir: str | None = None,
    written: list[str] | None = None,
) -> str:
    """``value`` printed in ``fmt``, exactly as ``esc open``/``esc env get`` print it.

    ``root`` says ``value`` is the whole environment (``detailed`` then gives it the empty trace
    the esc CLI gives its root). dotenv/shell always project the whole environment, so give them
    the root value. Temp files written for ``files`` go to ``temp_dir`` (default: the system's)
    and their paths are appended to ``written``.
    """
    if fmt not in FORMATS:
        raise EscError(f"unknown output format {go_quote(fmt)}")
    if fmt in ("json", "detailed"):
        _refuse_non_finite(value, show_secrets)
    if fmt == "json":
        return go_json_indent(to_plain(value, redact=not show_secrets)) + "\n"
    if fmt == "yaml":
        return yaml_text(to_plain(value, redact=not show_secrets))
    if fmt == "string":
        return string_text(value, redact=not show_secrets) + "\n"
    if fmt == "detailed":
        return go_json_indent(_go_structs(detailed(value, environment, redact=not show_secrets, root=root))) + "\n"
    lines = dotenv_lines(value, show_secrets=show_secrets, temp_dir=temp_dir, written=written)
    prefix = "export " if fmt == "shell" else ""
    return "".join(f"{prefix}{line}\n" for line in lines)


def render_model(value: Value, model: dict[str, Any], *, show_secrets: bool) -> str:
    """The detailed Environment (``exprs``, ``properties``, ``schema``, ``executionContext``:
    :meth:`~esc_pulumi.backends.base.OpenedEnvironment.model`, already redacted unless
    ``show_secrets``) as Go's encoder writes the reference's structs, 2-space indent.
    ``value`` is the opened root, checked for numbers JSON cannot write."""
    from ..esc.model_form import to_go

    _refuse_non_finite(value, show_secrets)
    return go_json_indent(to_go(model)) + "\n"


# -- json (Go's encoding/json) ----------------------------------------------------------------


def _refuse_non_finite(value: Value, show_secrets: bool) -> None:
    """JSON has no NaN or infinity: Go's encoder (and so ``esc open``) fails on them rather
    than print invalid JSON. Fail the same way, saying where the number was defined."""
    import math

    from ..esc.values import walk

    for v in walk(value):
        r = v.repr
        if isinstance(r, float) and not math.isfinite(r):
            if v.secret and not show_secrets:
                continue  # printed as "[secret]": valid JSON
            shown = "NaN" if math.isnan(r) else ("+Inf" if r > 0 else "-Inf")
            rng = getattr(getattr(v, "defn", None), "range", None)
            where = f" (defined at {rng.environment}:{rng.begin.line}:{rng.begin.column})" if rng else ""
            raise EscError(
                f"cannot print the environment as JSON: {shown}{where} has no JSON form; quote it "
                "in the definition to keep it as a string, or use --format yaml"
            )


def go_json_indent(data: Any) -> str:
    """``data`` as the esc CLI prints JSON: Go's encoder with a two-space indent."""
    return go_json(data, indent="  ")


# -- detailed (the API's Value model) ---------------------------------------------------------

def _go_structs(node: dict[str, Any]) -> GoStruct:
    """The detailed Value model as Go's encoder sees it: the Value, Trace, Range and Pos structs
    keep their field order (and ``environment`` is ``omitempty``); value maps stay maps."""
    top: list[Any] = [None]
    stack: list[tuple[dict[str, Any], Any, Any]] = [(node, top, 0)]
    while stack:
        n, parent, key = stack.pop()
        fields: list[tuple[str, Any]] = []
        parent[key] = GoStruct(fields)
        for name, item in n.items():
            if name == "value" and isinstance(item, dict):
                d: dict[str, Any] = {}
                fields.append((name, d))
                stack.extend((c, d, k) for k, c in item.items())
            elif name == "value" and isinstance(item, list):
                lst: list[Any] = [None] * len(item)
                fields.append((name, lst))
                stack.extend((c, lst, i) for i, c in enumerate(item))
            elif name == "trace":
                trace: list[tuple[str, Any]] = [("def", _range_struct(item["def"]))]
                fields.append((name, GoStruct(trace)))
                if "base" in item:
                    holder: list[Any] = [None]
                    trace.append(("base", holder))
                    stack.append((item["base"], holder, 0))
            else:
                fields.append((name, item))
    _unwrap_bases(top[0])
    return top[0]


def _range_struct(r: dict[str, Any]) -> GoStruct:
    fields: list[tuple[str, Any]] = []
    if r["environment"]:  # `json:"environment,omitempty"`
        fields.append(("environment", r["environment"]))
    for name in ("begin", "end"):
        p = r[name]
        fields.append((name, GoStruct([("line", p["line"]), ("column", p["column"]), ("byte", p["byte"])])))
    return GoStruct(fields)


def _unwrap_bases(node: GoStruct) -> None:
    """Replace the one-element holders used for ``trace.base`` by their content."""
    stack: list[Any] = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, GoStruct):
            for i, (k, v) in enumerate(x.fields):
                if k == "base" and isinstance(v, list):
                    x.fields[i] = (k, v[0])
                    stack.append(v[0])
                else:
                    stack.append(v)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


# -- string (Value.ToString) ------------------------------------------------------------------


def string_text(v: Value, *, redact: bool) -> str:
    """esc's ``Value.ToString(redact)``: like ``fn::toString`` but with merged keys too, and
    secrets (checked first) as ``[secret]`` when redacting."""
    return to_string(v, merged=True, redact=redact)[0]


# -- dotenv / shell (PrepareEnvironment) ------------------------------------------------------


def dotenv_lines(
    value: Value,
    *,
    show_secrets: bool,
    temp_dir: str | None = None,
    written: list[str] | None = None,
) -> list[str]:
    """``KEY="value"`` for each variable, then ``KEY="path"`` for each file (each sorted by
    name). Revealing writes every file (mode 0600, prefix ``esc-``) and keeps it, as the esc CLI
    does, so that the printed paths stay valid; redacting writes none and prints ``[unknown]``."""
    variables = project_section(value, ENVIRONMENT_VARIABLES, allow_unknown_secrets=not show_secrets)
    files = project_section(value, FILES, allow_unknown_secrets=not show_secrets)
    lines = []
    for name in sorted(variables):
        pv = variables[name]
        text = SECRET_TEXT if pv.secret and not show_secrets else pv.text
        lines.append(f"{name}={_env_quote(text)}")
    for name in sorted(files):
        if show_secrets:
            path = write_temp_file(files[name].text, temp_dir=temp_dir)
            if written is not None:
                written.append(path)
        else:
            path = UNKNOWN_TEXT
        lines.append(f"{name}={_env_quote(path)}")
    return lines


def _env_quote(s: str) -> str:
    # strconv.Quote already leaves '$' alone; it is the shell that must not expand it, and the
    # esc CLI prints it as is.
    return go_quote(s)


def write_temp_file(content: str, *, temp_dir: str | None = None) -> str:
    """Write ``content`` to a new ``esc-*`` file readable only by the user; its path."""
    fd, path = tempfile.mkstemp(prefix="esc-", dir=temp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8"))
    except BaseException:
        try:
            os.unlink(path)
        finally:
            raise
    return path


# -- yaml (gopkg.in/yaml.v3 Encoder, SetIndent(2)) ---------------------------------------------


def yaml_text(data: Any) -> str:
    """Plain data as yaml.v3's encoder writes it with a 2-space indent."""
    import yaml  # lazily: only this format needs it

    node = _yaml_node(data, yaml)
    try:
        text = yaml.serialize(
            node,
            Dumper=_dumper_class(yaml),
            indent=2,
            width=2**31 - 1,
            allow_unicode=True,
            explicit_start=False,
        )
    except RecursionError:
        raise EscError("the value is nested too deeply to print as YAML: use --format json") from None
    # PyYAML closes a document ending with an open plain/kept scalar with '...'; yaml.v3 does not.
    if text.endswith("\n...\n"):
        text = text[: -len("...\n")]
    return text


_STR = "tag:yaml.org,2002:str"
_DUMPER: Any = None


def _dumper_class(yaml: Any) -> Any:
    """A PyYAML dumper that emits exactly the styles chosen here (no implicit resolvers, so no
    tags ever), indents sequences under mapping keys as yaml.v3 does, and writes printable
    astral characters in double quotes as they are (libyaml's rule)."""
    global _DUMPER
    if _DUMPER is not None:
        return _DUMPER
    from yaml.emitter import Emitter
    from yaml.resolver import BaseResolver
    from yaml.serializer import Serializer

    class _Emitter(Emitter):
        def expect_block_sequence(self) -> None:
            self.increase_indent(flow=False, indentless=False)
            self.state = self.expect_first_block_sequence_item

        def check_empty_document(self) -> bool:
            return False

        def write_double_quoted(self, text: str, split: bool = True) -> None:
            self.write_indicator('"', True)
            start = end = 0
            while end <= len(text):
                ch = None if end >= len(text) else text[end]
                if ch is None or ch in '"\\\x85\u2028\u2029\ufeff' or not _yaml_printable(ch):
                    if start < end:
                        data = text[start:end]
                        self.column += len(data)
                        self.stream.write(data)
                        start = end
                    if ch is not None:
                        if ch in self.ESCAPE_REPLACEMENTS:
                            data = "\\" + self.ESCAPE_REPLACEMENTS[ch]
                        elif ch <= "\xff":
                            data = "\\x%02X" % ord(ch)
                        elif ch <= "\uffff":
                            data = "\\u%04X" % ord(ch)
                        else:
                            data = "\\U%08X" % ord(ch)
                        self.column += len(data)
                        self.stream.write(data)
                        start = end + 1
                end += 1
            self.write_indicator('"', False)

    class _Resolver(BaseResolver):
        yaml_implicit_resolvers: dict = {}
        yaml_path_resolvers: dict = {}

    class _Dumper(_Emitter, Serializer, _Resolver):
        def __init__(self, stream: Any, **kw: Any) -> None:
            _Emitter.__init__(
                self,
                stream,
                canonical=kw.get("canonical"),
                indent=kw.get("indent"),
                width=kw.get("width"),
                allow_unicode=kw.get("allow_unicode"),
                line_break=kw.get("line_break"),
            )
            Serializer.__init__(
                self,
                encoding=kw.get("encoding"),
                explicit_start=kw.get("explicit_start"),
                explicit_end=kw.get("explicit_end"),
                version=kw.get("version"),
                tags=kw.get("tags"),
            )
            _Resolver.__init__(self)

    _DUMPER = _Dumper
    return _Dumper


def _yaml_printable(ch: str) -> bool:
    o = ord(ch)
    return (
        0x20 <= o <= 0x7E
        or o == 0x85
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
        or 0x10000 <= o <= 0x10FFFF
    )


def _yaml_node(data: Any, yaml: Any) -> Any:
    """The node tree of ``data`` with yaml.v3's scalar styles (iteratively built)."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    def scalar(x: Any) -> Any:
        if x is None:
            return ScalarNode(_STR, "null", style=None)
        if x is True or x is False:
            return ScalarNode(_STR, "true" if x else "false", style=None)
        if isinstance(x, int):
            text = _yaml_int(x)
            if text is None:  # past float64 (yaml.v3: Float64() fails too): its text, quoted
                return ScalarNode(_STR, int_text(x), style='"')
            return ScalarNode(_STR, text, style=None)
        if isinstance(x, float):
            return ScalarNode(_STR, _yaml_float(x), style=None)
        s = str(x)
        return ScalarNode(_STR, s, style=_yaml_string_style(s))

    top: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(data, top, 0)]
    while stack:
        x, parent, key = stack.pop()
        if isinstance(x, dict):
            pairs: list[Any] = []
            node = MappingNode("tag:yaml.org,2002:map", pairs, flow_style=not x or None)
            parent[key] = node
            keys = _v3_sorted(list(x))
            pairs.extend([None] * len(keys))
            for i, k in enumerate(keys):
                holder: list[Any] = [scalar(k), None]
                pairs[i] = holder
                stack.append((x[k], holder, 1))
        elif isinstance(x, (list, tuple)):
            items: list[Any] = [None] * len(x)
            parent[key] = SequenceNode("tag:yaml.org,2002:seq", items, flow_style=not x or None)
            for i, c in enumerate(x):
                stack.append((c, items, i))
        else:
            parent[key] = scalar(x)
    # Mapping pairs were built as lists (to be filled in); PyYAML wants tuples.
    fix: list[Any] = [top[0]]
    while fix:
        n = fix.pop()
        if isinstance(n, MappingNode):
            n.value[:] = [tuple(p) for p in n.value]
            fix.extend(v for _, v in n.value)
        elif isinstance(n, SequenceNode):
            fix.extend(n.value)
    return top[0]


def _yaml_int(n: int) -> str | None:
    """json.Number → Int64(), else Float64() (yaml.v3's jsonNumber case); None when neither
    holds it, where yaml.v3 writes the number's text as a string."""
    if -(1 << 63) <= n < (1 << 63):
        return str(n)
    try:
        return _yaml_float(float(n))
    except OverflowError:
        return None


def _yaml_float(f: float) -> str:
    if f != f:
        return ".nan"
    if f in (float("inf"), float("-inf")):
        return ".inf" if f > 0 else "-.inf"
    return format_number(f)


# yaml.v3's resolve(): which plain texts would read back as something other than a string.
_V3_CONSTANTS = frozenset(
    "true True TRUE false False FALSE ~ null Null NULL .nan .NaN .NAN .inf .Inf .INF "
    "+.inf +.Inf +.INF -.inf -.Inf -.INF <<".split()
)
_OLD_BOOLS = frozenset("y Y yes Yes YES on On ON n N no No NO off Off OFF".split())
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)\Z")
_GO_FLOAT_DOT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]| )[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,9})?(?:Z|[-+][0-9]{2}:[0-9]{2})?)?\Z"
)


def _v3_resolves_to_string(s: str) -> bool:
    """Whether yaml.v3 reads the plain scalar ``s`` back as a string."""
    if s == "" or s in _V3_CONSTANTS:
        return False
    c = s[0]
    if c == ".":
        return not _GO_FLOAT_DOT.match(s)
    if c in "+-0123456789":
        if _TIMESTAMP.match(s):
            return False
        plain = s.replace("_", "")
        if _GO_INT.match(plain) or _YAML_FLOAT.match(plain):
            return False
        if re.match(r"-?0[bB][01]+\Z|-?0[oO][0-7]+\Z", plain):
            return False
    return True


def _yaml_string_style(s: str) -> str | None:
    """The style yaml.v3's encoder asks for: literal for multi-line text, double quotes for
    text that would read back as another type, else plain (the emitter may still fall back to
    single or double quotes when plain cannot hold the text)."""
    if "\n" in s:
        # yaml.v3 (3.0.4) keeps whitespace-only or 1-character multi-line text double-quoted.
        if len(s) < 2 or all(ch.isspace() for ch in s):
            return '"'
        return "|"
    if not _v3_resolves_to_string(s) or _BASE60.match(s) or s in _OLD_BOOLS:
        return '"'
    return None


def _v3_sorted(keys: Iterable[str]) -> list[str]:
    """Keys in yaml.v3's order (its ``keyList.Less``: digit runs compared as numbers, letters
    after other characters unless following a digit)."""
    import functools

    return sorted(keys, key=functools.cmp_to_key(lambda a, b: -1 if _v3_less(a, b) else (1 if _v3_less(b, a) else 0)))


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def _v3_less(a: str, b: str) -> bool:
    ar, br = a, b
    digits = False
    n = min(len(ar), len(br))
    for i in range(n):
        if ar[i] == br[i]:
            digits = _is_digit(ar[i])
            continue
        al, bl = _is_letter(ar[i]), _is_letter(br[i])
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return al if digits else bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and _is_digit(ar[j]):
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and _is_digit(ar[ai]):
            an = an * 10 + (ord(ar[ai]) - ord("0"))
            ai += 1
        bi = i
        while bi < len(br) and _is_digit(br[bi]):
            bn = bn * 10 + (ord(br[bi]) - ord("0"))
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)
