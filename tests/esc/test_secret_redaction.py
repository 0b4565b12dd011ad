"""Secrets never show in a redacted view (issue 9 §1).

The rule (spec sections 5, 6 and 10): ``fn::secret``, a secret provider output and
``fn::fromJSON`` of a secret make every value inside them secret, deeply; references copy that
secrecy and anything derived from a secret is secret. So no redacted view (``to_plain(redact=
True)``, the redacted detailed model, the ``string`` form, ``repr``, diagnostics) may contain
the plaintext of a secret.

The property test generates definitions whose string literals are unique, distinctive tokens,
so that "this plaintext shows up" is a plain substring search. It uses two oracles:

1. by construction: a token written as ``fn::secret``, written anywhere inside a secret
   provider's inputs, or inside the JSON text of a secret given to ``fn::fromJSON``, is secret
   wherever it ends up; it must appear in no redacted view and in no non-secret leaf of the
   revealed tree;
2. by the revealed view: the text of every leaf at or under a secret node must not appear in a
   redacted view, unless that same text is also public (a non-secret leaf contains it: a
   plaintext echoed by a secret provider from a public value was never a secret).
"""
from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esc_pulumi.esc import Provider, ProviderRegistry, Value, evaluate, load_definition, to_plain
from esc_pulumi.esc.values import go_json, to_string
from esc_pulumi.esc.views import detailed


# -- providers -------------------------------------------------------------------------------


class Echo(Provider):
    """Returns its inputs as value trees (secret flags kept), like the golden ``test``."""

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        return inputs


class SecretEcho(Echo):
    """The golden runner's ``secret-wrapper``: the echoed inputs, the whole output secret."""

    secret = True


class SecretPlain(Provider):
    """A secret provider returning plain JSON data (not value trees), as most real ones do."""

    secret = True

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        return json.loads(json.dumps(to_plain(inputs)))


class SecretInside(Provider):
    """A non-secret provider whose output holds a secret *container* built as a value tree
    with plain children: the container's secrecy must still reach its children."""

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        return {"public": "visible-part", "private": Value(inputs.repr, secret=True)}


def registry() -> ProviderRegistry:
    return ProviderRegistry(
        {"echo": Echo(), "secret-echo": SecretEcho(), "secret-plain": SecretPlain(), "secret-inside": SecretInside()},
        entry_points=False,
    )


SECRET_PROVIDERS = frozenset({"secret-echo", "secret-plain"})


def open_text(text: str, mode: str = "open") -> tuple[Value, list]:
    decl, diags = load_definition(textwrap.dedent(text), "dev")
    assert decl is not None, diags
    value, more = evaluate(decl, mode=mode, providers=registry())  # type: ignore[arg-type]
    return value, list(diags) + list(more)


def redacted_views(value: Value, diags: list) -> dict[str, str]:
    """Every redacted rendering the engine offers, as text."""
    return {
        "json": go_json(to_plain(value, redact=True)),
        "detailed": json.dumps(detailed(value, "dev", redact=True, root=True)),
        "string": to_string(value, merged=True, redact=True)[0],
        "repr": repr(value),
        "diagnostics": "\n".join(d.summary for d in diags),
    }


def assert_hidden(views: Mapping[str, str], plaintexts: list[str]) -> None:
    for name, text in views.items():
        for p in plaintexts:
            assert p not in text, f"{p!r} shows in the redacted {name} view: {text}"


# -- regression tests of the exact bug (expected values written by hand) ---------------------

WRAPPED = """
values:
  out:
    fn::open:
      provider: secret-echo
      inputs:
        user: admin-user-name
        password: pw-plain-9f3k
        nested:
          deep:
            list: [first-item-x, {inner: inner-value-y}]
  field: ${out.password}
  whole: ${out}
  deepField: ${out.nested.deep.list[1].inner}
  deepArray: ${out.nested.deep.list}
  viaWhole: ${whole.user}
  interpolated: "user=${out.user}"
  json:
    fn::toJSON: ${out.nested}
  joined:
    fn::join: [",", ["${out.user}", plain-part]]
"""

WRAPPED_PLAINTEXTS = ["admin-user-name", "pw-plain-9f3k", "first-item-x", "inner-value-y"]


def test_field_reference_to_secret_provider_output_is_redacted() -> None:
    value, diags = open_text(WRAPPED)
    assert diags == []
    red = to_plain(value, redact=True)
    assert red["field"] == "[secret]"
    assert red["viaWhole"] == "[secret]"
    assert value.repr["field"].secret is True


def test_whole_object_reference_and_descendants_are_secret() -> None:
    value, _ = open_text(WRAPPED)
    red = to_plain(value, redact=True)
    assert red["out"] == "[secret]"
    assert red["whole"] == "[secret]"
    assert red["deepField"] == "[secret]"
    assert red["deepArray"] == "[secret]"
    # Deeply: every node of the output is secret, not just its top.
    whole = value.repr["whole"]
    assert whole.repr["nested"].secret is True
    assert whole.repr["nested"].repr["deep"].repr["list"].repr[0].secret is True
    assert whole.repr["nested"].repr["deep"].repr["list"].repr[1].repr["inner"].secret is True


def test_values_derived_from_secret_provider_output_are_secret() -> None:
    value, _ = open_text(WRAPPED)
    red = to_plain(value, redact=True)
    assert red["interpolated"] == "[secret]"
    assert red["json"] == "[secret]"
    assert red["joined"] == "[secret]"


def test_revealed_view_still_shows_the_plaintext() -> None:
    value, _ = open_text(WRAPPED)
    plain = to_plain(value)
    assert plain["field"] == "pw-plain-9f3k"
    assert plain["deepField"] == "inner-value-y"
    assert plain["interpolated"] == "user=admin-user-name"
    assert plain["json"] == '{"deep":{"list":["first-item-x",{"inner":"inner-value-y"}]}}'
    assert plain["joined"] == "admin-user-name,plain-part"
    assert plain["whole"] == {
        "user": "admin-user-name",
        "password": "pw-plain-9f3k",
        "nested": {"deep": {"list": ["first-item-x", {"inner": "inner-value-y"}]}},
    }


def test_no_redacted_view_of_the_bug_case_shows_plaintext() -> None:
    value, diags = open_text(WRAPPED)
    assert_hidden(redacted_views(value, diags), WRAPPED_PLAINTEXTS)


def test_detailed_redacted_marks_descendants_secret() -> None:
    value, _ = open_text(WRAPPED)
    d = detailed(value, "dev", redact=True, root=True)
    assert d["value"]["deepField"]["value"] == "[secret]"
    assert d["value"]["deepField"]["secret"] is True
    assert d["value"]["field"] == {"value": "[secret]", "secret": True, "trace": d["value"]["field"]["trace"]}


def test_secret_provider_returning_plain_data() -> None:
    value, diags = open_text(
        """
        values:
          out:
            fn::open::secret-plain:
              a: {b: [plain-data-token-1]}
          ref: ${out.a.b[0]}
          ref2: ${out.a}
        """
    )
    assert diags == []
    red = to_plain(value, redact=True)
    assert red == {"out": "[secret]", "ref": "[secret]", "ref2": "[secret]"}
    assert to_plain(value)["ref"] == "plain-data-token-1"


def test_secret_container_inside_a_provider_output() -> None:
    value, diags = open_text(
        """
        values:
          out:
            fn::open::secret-inside:
              key: hidden-child-token
          ref: ${out.private.key}
          pub: ${out.public}
        """
    )
    assert diags == []
    red = to_plain(value, redact=True)
    assert red == {"out": {"public": "visible-part", "private": "[secret]"}, "ref": "[secret]", "pub": "visible-part"}


def test_secret_inputs_echoed_by_a_plain_provider_stay_secret() -> None:
    value, diags = open_text(
        """
        values:
          pw:
            fn::secret: echoed-secret-token
          out:
            fn::open::echo:
              user: someone
              pass: ${pw}
          ref: ${out.pass}
        """
    )
    assert diags == []
    red = to_plain(value, redact=True)
    assert red == {"pw": "[secret]", "out": {"user": "someone", "pass": "[secret]"}, "ref": "[secret]"}


def test_from_json_of_a_secret_is_secret_deeply() -> None:
    value, diags = open_text(
        """
        values:
          doc:
            fn::fromJSON:
              fn::secret: '{"a": {"b": ["json-leaf-token"]}, "n": 1}'
          ref: ${doc.a.b[0]}
          part: ${doc.a}
          text: "x${doc.a.b[0]}"
        """
    )
    assert diags == []
    red = to_plain(value, redact=True)
    assert red == {"doc": "[secret]", "ref": "[secret]", "part": "[secret]", "text": "[secret]"}
    assert value.repr["doc"].repr["a"].repr["b"].repr[0].secret is True


def test_from_json_of_to_json_of_a_secret_provider_output() -> None:
    value, diags = open_text(
        """
        values:
          out:
            fn::open::secret-echo: {k: {v: roundtrip-token}}
          back:
            fn::fromJSON:
              fn::toJSON: ${out}
          ref: ${back.k.v}
        """
    )
    assert diags == []
    assert to_plain(value, redact=True) == {"out": "[secret]", "back": "[secret]", "ref": "[secret]"}
    assert to_plain(value)["ref"] == "roundtrip-token"


def test_concat_with_a_secret_array_is_secret_deeply() -> None:
    value, diags = open_text(
        """
        values:
          out:
            fn::open::secret-echo: [concat-secret-token]
          all:
            fn::concat: [["public-elem"], "${out}"]
          first: ${all[1]}
        """
    )
    assert diags == []
    assert to_plain(value, redact=True) == {"out": "[secret]", "all": "[secret]", "first": "[secret]"}


def test_rotator_state_output_is_secret_deeply() -> None:
    from esc_pulumi.esc import Rotator

    class SecretRotator(Rotator):
        secret = True

        def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
            return state

    decl, diags = load_definition(
        textwrap.dedent(
            """
            values:
              r:
                fn::rotate::sr:
                  inputs: {}
                  state: {current: {token: rotated-token-1}}
              ref: ${r.current.token}
            """
        ),
        "dev",
    )
    assert decl is not None
    value, more = evaluate(decl, providers=ProviderRegistry(rotators={"sr": SecretRotator()}, entry_points=False))
    assert list(diags) + list(more) == []
    assert to_plain(value, redact=True) == {"r": "[secret]", "ref": "[secret]"}
    assert to_plain(value)["ref"] == "rotated-token-1"


def test_check_mode_hides_plaintext_secrets_and_runs_no_provider() -> None:
    value, _ = open_text(WRAPPED, mode="check")
    red = to_plain(value, redact=True)
    assert red["out"] == "[unknown]"
    assert red["field"] == "[unknown]"
    assert_hidden(redacted_views(value, []), WRAPPED_PLAINTEXTS)


# -- the property test -----------------------------------------------------------------------
#
# Generated expressions are a small model (below) that knows each expression's shape, so that
# references point at parts that exist and builtins get arguments of the right type.

KEYS = ["a", "b", "c", "dd", "e1"]


@dataclass
class Gen:
    """Per-example state: unique token counter, the tokens known secret, the shapes of the
    top-level properties generated so far."""

    n: int = 0
    secret_tokens: set[str] = field(default_factory=set)
    props: list[Any] = field(default_factory=list)  # shapes of p0, p1, ...

    def token(self, kind: str, secret_context: bool) -> str:
        self.n += 1
        # Distinctive and unique: a prefix per kind, a number, a terminator, so that no token is
        # a substring of another one or of the views' own text.
        t = {"plain": f"Pl{self.n}q", "text": f"Tx{self.n}q", "json": f"Js{self.n}qJSONLEAF"}[kind]
        if secret_context:
            self.secret_tokens.add(t)
        return t

    def secret(self) -> str:
        self.n += 1
        t = f"Sec{self.n}qHIDDENTOKEN"
        self.secret_tokens.add(t)
        return t


TOKEN = re.compile(r"(?:Pl|Tx|Js|Sec)[0-9]+q(?:JSONLEAF|HIDDENTOKEN)?")

# A shape: "str" (string), "scalar" (other scalar), ("obj", {k: shape}), ("arr", [shape]).


def path_text(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@st.composite
def reference(draw: st.DrawFn, g: Gen, want_string: bool = False) -> tuple[str, Any] | None:
    """A ``${pI.path}`` to a part of an earlier property, and that part's shape."""
    candidates = list(range(len(g.props)))
    if not candidates:
        return None
    i = draw(st.sampled_from(candidates))
    shape = g.props[i]
    path: list[str | int] = []
    # Usually into the value (a part of it), sometimes the whole of it.
    while isinstance(shape, tuple) and shape[1] and draw(st.integers(0, 4)) > 0:
        if shape[0] == "obj":
            k = draw(st.sampled_from(sorted(shape[1])))
            path.append(k)
            shape = shape[1][k]
        else:
            j = draw(st.integers(0, len(shape[1]) - 1))
            path.append(j)
            shape = shape[1][j]
    if want_string and shape != "str":
        return None
    return f"${{p{i}{path_text(path)}}}", shape


@st.composite
def expression(draw: st.DrawFn, g: Gen, depth: int, secret_context: bool) -> tuple[Any, Any]:
    """A definition fragment (plain data for the YAML) and its shape. ``secret_context``: it
    sits lexically inside a secret provider's inputs, so its literal strings are secret."""
    kinds = ["plain", "int", "bool", "null", "secret", "secret", "ref", "ref", "ref", "interp", "interp"]
    if depth > 0:
        # Mostly structure, so that references have parts to reach into.
        kinds += ["obj"] * 4 + ["arr"] * 2 + ["open"] * 4
        kinds += ["tojson", "tostring", "join", "fromjson", "fromjson-secret"]
    kind = draw(st.sampled_from(kinds))
    if kind == "plain":
        return g.token("plain", secret_context), "str"
    if kind == "int":
        return draw(st.integers(-5, 500)), "scalar"
    if kind == "bool":
        return draw(st.booleans()), "scalar"
    if kind == "null":
        return None, "scalar"
    if kind == "secret":
        return {"fn::secret": g.secret()}, "str"
    if kind == "ref":
        r = draw(reference(g))
        if r is None:
            return g.token("plain", secret_context), "str"
        return r
    if kind == "interp":
        parts = [g.token("text", secret_context)]
        for _ in range(draw(st.integers(1, 2))):
            r = draw(reference(g))
            parts.append(r[0] if r is not None else "")
            parts.append(g.token("text", secret_context))
        return "-".join(parts), "str"
    if kind == "obj":
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
        data, shape = {}, {}
        for k in keys:
            data[k], shape[k] = draw(expression(g, depth - 1, secret_context))
        return data, ("obj", shape)
    if kind == "arr":
        items = [draw(expression(g, depth - 1, secret_context)) for _ in range(draw(st.integers(1, 3)))]
        return [d for d, _ in items], ("arr", [s for _, s in items])
    if kind == "open":
        provider = draw(st.sampled_from(["echo", "secret-echo", "secret-plain"]))
        inner = secret_context or provider in SECRET_PROVIDERS
        inputs, shape = draw(expression(g, depth - 1, inner))
        if draw(st.booleans()):
            return {f"fn::open::{provider}": inputs}, shape
        return {"fn::open": {"provider": provider, "inputs": inputs}}, shape
    if kind == "tojson":
        inner, _ = draw(expression(g, depth - 1, secret_context))
        return {"fn::toJSON": inner}, "str"
    if kind == "tostring":
        inner, _ = draw(expression(g, depth - 1, secret_context))
        return {"fn::toString": inner}, "str"
    if kind == "join":
        items = []
        for _ in range(draw(st.integers(1, 3))):
            r = draw(reference(g, want_string=True)) if draw(st.booleans()) else None
            if r is not None:
                items.append(r[0])
            elif draw(st.booleans()):
                items.append({"fn::secret": g.secret()})
            else:
                items.append(g.token("plain", secret_context))
        return {"fn::join": [",", items]}, "str"
    if kind == "fromjson":
        # A JSON round trip: fromJSON(toJSON(x)) has x's shape, and is secret when x holds one.
        inner, shape = draw(expression(g, depth - 1, secret_context))
        return {"fn::fromJSON": {"fn::toJSON": inner}}, shape  # a JSON round trip keeps the structure
    # fromjson-secret: a secret JSON document; every leaf in it is secret.
    data, shape = draw(json_data(g, depth - 1))
    return {"fn::fromJSON": {"fn::secret": json.dumps(data)}}, shape


@st.composite
def json_data(draw: st.DrawFn, g: Gen, depth: int) -> tuple[Any, Any]:
    kind = draw(st.sampled_from(["str", "num"] + (["obj", "arr"] if depth > 0 else [])))
    if kind == "str":
        return g.token("json", True), "str"
    if kind == "num":
        return draw(st.integers(0, 99)), "scalar"
    if kind == "obj":
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
        data, shape = {}, {}
        for k in keys:
            data[k], shape[k] = draw(json_data(g, depth - 1))
        return data, ("obj", shape)
    items = [draw(json_data(g, depth - 1)) for _ in range(draw(st.integers(1, 3)))]
    return [d for d, _ in items], ("arr", [s for _, s in items])


@st.composite
def nested_object(draw: st.DrawFn, g: Gen) -> tuple[Any, Any]:
    """Inputs of a secret provider: an object nesting objects and arrays of plain literals."""
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    data, shape = {}, {}
    for k in keys:
        data[k], shape[k] = draw(expression(g, 2, True))
    return data, ("obj", shape)


@st.composite
def definitions(draw: st.DrawFn) -> tuple[str, frozenset[str]]:
    """A definition text (JSON, which is YAML) and the tokens that are secret by construction."""
    g = Gen()
    values: dict[str, Any] = {}
    # The first property is the subject of the bug: a secret provider's nested output.
    provider = draw(st.sampled_from(sorted(SECRET_PROVIDERS)))
    inputs, shape = draw(nested_object(g))
    values["p0"] = {f"fn::open::{provider}": inputs}
    g.props.append(shape)
    for i in range(1, draw(st.integers(2, 7))):
        data, shape = draw(expression(g, 3, False))
        values[f"p{i}"] = data
        g.props.append(shape)
    return json.dumps({"values": values}, indent=1), frozenset(g.secret_tokens)


def leaves(v: Value) -> list[tuple[str, bool]]:
    """(text, secret) of every known string leaf; secret counts a secret ancestor too."""
    out: list[tuple[str, bool]] = []
    stack = [(v, False)]
    while stack:
        x, inherited = stack.pop()
        sec = inherited or x.secret
        if x.unknown:
            continue
        r = x.repr
        if isinstance(r, dict):
            stack.extend((c, sec) for c in r.values())
        elif isinstance(r, list):
            stack.extend((c, sec) for c in r)
        elif isinstance(r, str):
            out.append((r, sec))
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(definitions())
def test_no_redacted_view_shows_a_secret(case: tuple[str, frozenset[str]]) -> None:
    text, secret_tokens = case
    value, diags = open_text(text)
    # The generator writes only well-typed definitions with valid references.
    assert [d.summary for d in diags if d.is_error] == [], text
    revealed = leaves(value)
    public = [t for t, sec in revealed if not sec]
    views = redacted_views(value, diags)

    # Oracle 1: secret by construction, wherever the token went.
    for t in secret_tokens:
        for p in public:
            assert t not in p, f"{t!r} is in the non-secret value {p!r}:\n{text}"
    assert_hidden(views, sorted(secret_tokens))

    # Oracle 2: what the revealed tree says is secret (and is not also public) stays hidden.
    # Searched for: each generated token inside a secret leaf (short texts like "true" would
    # match the views' own words), and the whole leaf when it is built from tokens.
    candidates = set()
    for t, sec in revealed:
        if sec:
            found = TOKEN.findall(t)
            candidates.update(found)
            if found:
                candidates.add(t)
    hidden = sorted(c for c in candidates if not any(c in p for p in public))
    assert_hidden(views, hidden)

    # Check mode: no provider runs, but plaintext secrets are computed; still all hidden.
    checked, cdiags = open_text(text, mode="check")
    assert_hidden(redacted_views(checked, cdiags), sorted(secret_tokens) + hidden)


@settings(max_examples=50)
@given(definitions())
def test_revealed_view_is_not_vacuous(case: tuple[str, frozenset[str]]) -> None:
    """The property above would pass trivially if the secrets never appeared at all: every
    top-level ``fn::secret`` token is there in the revealed JSON."""
    text, _ = case
    value, _ = open_text(text)
    revealed = go_json(to_plain(value))
    doc = json.loads(text)["values"]
    for v in doc.values():
        if isinstance(v, dict) and set(v) == {"fn::secret"}:
            assert v["fn::secret"] in revealed


def test_syntax_trees_never_print_their_text():
    """A definition's scalars include plaintext secrets: the reprs of its nodes and
    expressions (logs, tracebacks, assertion messages) show places, never text."""
    from esc_pulumi.esc import load_definition
    from esc_pulumi.esc.syntax import parse_yaml

    text = "imports: [base]\nvalues:\n  pw:\n    fn::secret: hunter2-plain\n  s: ['${pw}-x', {k: hunter2-plain}]\n"
    decl, diags = load_definition(text, "env")
    assert diags == [] and decl is not None
    node, _ = parse_yaml(text, "env")
    for shown in (repr(decl), repr(node), repr(decl.values.values), str(decl.values.values[0].args)):
        assert "hunter2" not in shown
    assert "env:4:17-4:30" in repr(decl.values.values[0].args)  # where the scalar is
