"""Diagnostics never quote secret-derived text (review item 3).

Before: a near-miss lookup into ``fn::fromJSON`` of a secret said ``did you mean "tok-9f8e…"``
(the keys of a secret object are secret-derived), and ``fn::validate`` with a schema built from a
secret echoed its consts, enums, patterns and property names. The rule now: a suggestion is made
only from keys that are not secret-derived; a message about a secret schema quotes nothing of it;
a message about a secret value quotes nothing of it (its length, a byte offset into it, what a
provider echoes of it).

The property test writes definitions in which distinctive secret tokens feed keys (as object
keys inside secret JSON, also below a merged import), schemas (whole, or one secret piece of a
literal schema) and values (malformed JSON or base64, provider errors), each fragment built to
produce diagnostics, and asserts that no diagnostic contains a token.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esc_pulumi.esc import LoadedEnvironment, LoadError, Provider, ProviderRegistry, Value, evaluate, load_definition, to_plain


class Failing(Provider):
    """The golden runner's ``error`` provider: fails with the text of ``inputs.why``, as
    providers do when they quote what they were given."""

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        raise RuntimeError(f"cannot log in with {json.dumps(to_plain(inputs))}")


class Loader:
    def __init__(self, envs: Mapping[str, str]) -> None:
        self.envs = envs

    def load(self, name: str) -> LoadedEnvironment:
        if name not in self.envs:
            raise LoadError(f"no environment {name}")
        return LoadedEnvironment(text=self.envs[name])


def diagnostics(text: str, envs: Mapping[str, str] | None = None, mode: str = "open") -> list[str]:
    decl, diags = load_definition(textwrap.dedent(text), "dev")
    assert decl is not None, diags
    _, more = evaluate(
        decl,
        mode=mode,  # type: ignore[arg-type]
        loader=Loader(envs or {}),
        providers=ProviderRegistry({"error": Failing()}, entry_points=False),
    )
    return [f"{d.summary} @ {d.path}" for d in [*diags, *more]]


# -- the exact bugs, expected messages written by hand --------------------------------------------


def test_no_suggestion_from_the_keys_of_a_secret_object():
    diags = diagnostics(
        """
        values:
          tokens:
            fn::fromJSON:
              fn::secret: '{"tok-9f8e7d": "x"}'
          pick: ${tokens["tok-9f8e7c"]}
        """
    )
    assert diags == ['unknown property "tok-9f8e7c" @ values.pick']


def test_suggestions_from_plain_keys_are_still_made():
    diags = diagnostics("values:\n  plain: {baz: 1}\n  pick: ${plain.bar}\n")
    assert diags == ['unknown property "bar"; did you mean "baz"? @ values.pick']


def test_no_suggestion_from_a_secret_import_below_local_keys():
    base = "values:\n  obj:\n    fn::fromJSON:\n      fn::secret: '{\"tok-9f8e7d\": 1}'\n"
    diags = diagnostics(
        """
        imports: [base]
        values:
          obj: {local: 1}
          pick: ${obj["tok-9f8e7c"]}
          near: ${obj.locak}
        """,
        {"base": base},
    )
    assert sorted(diags) == [
        'unknown property "locak"; did you mean "local"? @ values.near',  # the definition's own key
        'unknown property "tok-9f8e7c" @ values.pick',
    ]


def test_the_length_of_a_secret_array_is_not_quoted():
    diags = diagnostics(
        """
        values:
          arr:
            fn::fromJSON:
              fn::secret: '[1, 2, 3]'
          pick: ${arr[7]}
          plain: [1, 2]
          pick2: ${plain[7]}
        """
    )
    assert sorted(diags) == [
        "array index 7 out-of-bounds for array of length 2 @ values.pick2",
        "array index 7 out-of-bounds for array of length [secret] @ values.pick",
    ]


def test_a_schema_from_a_secret_is_not_quoted():
    diags = diagnostics(
        """
        values:
          schema:
            fn::fromJSON:
              fn::secret: '{"required": ["tok-req"], "properties": {"k": {"const": "tok-const", "minLength": 98765}}}'
          checked:
            fn::validate:
              schema: ${schema}
              value: {k: other}
        """
    )
    assert sorted(diags) == [
        'expected [secret] @ values.checked["fn::validate"].value.k',
        'expected a string of at least length [secret] @ values.checked["fn::validate"].value.k',
        'missing required properties: [secret] @ values.checked["fn::validate"].value',
    ]


def test_a_secret_piece_of_a_literal_schema_is_not_quoted():
    diags = diagnostics(
        """
        values:
          pw:
            fn::secret: tok-hunter2
          a:
            fn::validate:
              schema: {enum: [x, "${pw}"]}
              value: y
          b:
            fn::validate:
              schema: {type: string, pattern: "${pw}"}
              value: y
        """
    )
    assert sorted(diags) == [
        'expected one of [secret] @ values.a["fn::validate"].value',
        'string must match the pattern [secret] @ values.b["fn::validate"].value',
    ]


def test_literal_schemas_still_quote_themselves():
    diags = diagnostics(
        """
        values:
          pw:
            fn::secret: tok-hunter2
          a:
            fn::validate:
              schema: {const: plain-const}
              value: ${pw}
        """
    )
    assert diags == ['expected "plain-const" @ values.a["fn::validate"].value']


def test_an_invalid_secret_schema_is_not_quoted():
    diags = diagnostics(
        """
        values:
          schema:
            fn::fromJSON:
              fn::secret: '{"properties": {"tok-prop": "not a schema"}}'
          checked:
            fn::validate:
              schema: ${schema}
              value: 1
        """
    )
    assert diags == ['invalid schema: [secret] @ values.checked["fn::validate"].schema']


def test_errors_about_secret_arguments_quote_nothing_of_them():
    diags = diagnostics(
        """
        values:
          b64:
            fn::fromBase64:
              fn::secret: "abc!def"
          plainb64:
            fn::fromBase64: "abc!def"
        """
    )
    assert sorted(diags) == [
        "decoding base64 string: illegal base64 data at input byte 3 @ values.plainb64",
        "decoding base64 string: illegal base64 data at input byte [secret] @ values.b64",
    ]


def test_a_provider_echoing_its_secret_inputs_is_masked():
    diags = diagnostics(
        """
        values:
          pw:
            fn::secret: tok-provider-pw
          out:
            fn::open::error:
              user: someone
              why: "pre-${pw}-post"
        """
    )
    assert len(diags) == 1
    assert "tok-provider-pw" not in diags[0] and "[secret]" in diags[0] and "someone" in diags[0]


# -- the property test -----------------------------------------------------------------------------

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"


@dataclass
class Gen:
    """Per-example state: a counter for unique tokens, the secret ones, imported environments."""

    n: int = 0
    secrets: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)

    def secret(self, draw: st.DrawFn) -> str:
        """A distinctive secret token: no token is a substring of another or of any message."""
        self.n += 1
        t = f"Sq{self.n}x{draw(st.text(ALPHABET, min_size=3, max_size=8))}Z"
        self.secrets.append(t)
        return t


def near_miss(token: str, draw: st.DrawFn) -> str:
    """A key one edit away from ``token`` (the kind of typo a suggestion would answer), inside
    it: the definition's own key never contains the token whole."""
    i = draw(st.integers(1, len(token) - 2))
    op = draw(st.sampled_from(["change", "drop", "add"]))
    if op == "drop" and len(token) > 1:
        return token[:i] + token[i + 1:]
    c = "!" if op == "change" else "#"  # not in any token: the result is never a token itself
    return token[:i] + c + token[i + (op == "change"):]


def secret_json(data: Any) -> dict:
    return {"fn::fromJSON": {"fn::secret": json.dumps(data)}}


@st.composite
def key_fragment(draw: st.DrawFn, g: Gen, i: int) -> dict:
    """A secret object (its keys secret tokens), looked up with a near miss of one of them —
    directly, nested, through a plain wrapper, or below local keys over a merged import."""
    keys = [g.secret(draw) for _ in range(draw(st.integers(1, 4)))]
    inner = {k: draw(st.sampled_from([1, "v", [1, 2], {"n": 1}])) for k in keys}
    shape = draw(st.sampled_from(["flat", "nested", "wrapped", "imported"]))
    target = near_miss(draw(st.sampled_from(keys)), draw)
    if shape == "flat":
        return {f"s{i}": secret_json(inner), f"r{i}": f'${{s{i}["{target}"]}}'}
    if shape == "nested":
        outer = g.secret(draw)
        return {f"s{i}": secret_json({outer: inner}), f"r{i}": f'${{s{i}["{outer}"]["{target}"]}}'}
    if shape == "wrapped":
        return {f"s{i}": secret_json(inner), f"w{i}": {"inner": f"${{s{i}}}"}, f"r{i}": f'${{w{i}.inner["{target}"]}}'}
    name = f"base{i}"
    g.envs[name] = yaml.safe_dump({"values": {f"o{i}": secret_json(inner)}})
    return {"__imports__": [name], f"o{i}": {"local": 1}, f"r{i}": f'${{o{i}["{target}"]}}'}


@st.composite
def secret_schema(draw: st.DrawFn, g: Gen) -> tuple[dict, Any]:
    """A JSON schema full of secret tokens, and a value that violates it."""
    kind = draw(st.sampled_from(["const", "enum", "pattern", "required", "property", "minLength", "type"]))
    if kind == "const":
        return {"const": g.secret(draw)}, "other"
    if kind == "enum":
        return {"enum": [g.secret(draw), g.secret(draw)]}, "other"
    if kind == "pattern":
        return {"type": "string", "pattern": f"^{g.secret(draw)}$"}, "other"
    if kind == "required":
        return {"type": "object", "required": [g.secret(draw)]}, {}
    if kind == "property":
        return {"properties": {g.secret(draw): {"const": g.secret(draw)}}}, None  # value built below
    if kind == "minLength":
        n = 900000 + g.n  # a secret number: distinctive enough to search for
        g.secrets.append(str(n))
        return {"type": "string", "minLength": n}, "short"
    return {"type": draw(st.sampled_from(["number", "boolean", "array"]))}, "a-string"


@st.composite
def schema_fragment(draw: st.DrawFn, g: Gen, i: int) -> dict:
    """``fn::validate`` whose schema is secret: wholly (fromJSON of a secret, or an invalid one),
    or one secret piece interpolated into a literal schema."""
    how = draw(st.sampled_from(["whole", "piece", "invalid"]))
    if how == "invalid":
        bad = g.secret(draw)
        schema = secret_json({"properties": {bad: draw(st.sampled_from(["text", 3, [1]]))}})
        return {f"v{i}": {"fn::validate": {"schema": schema, "value": 1}}}
    if how == "piece":
        pw = g.secret(draw)
        piece, value = draw(
            st.sampled_from(
                [
                    ({"const": f"${{pw{i}}}"}, "other"),
                    ({"enum": ["a", f"${{pw{i}}}"]}, "other"),
                    ({"type": "string", "pattern": f"${{pw{i}}}"}, "other"),
                    ({"type": "object", "required": [f"${{pw{i}}}"]}, {}),
                    ({"properties": {"p": {"const": f"${{pw{i}}}"}}}, {"p": "other"}),
                ]
            )
        )
        return {f"pw{i}": {"fn::secret": pw}, f"v{i}": {"fn::validate": {"schema": piece, "value": value}}}
    schema, value = draw(secret_schema(g))
    if value is None:  # the "property" kind: the value holds that (secret) property, wrong
        (name,) = schema["properties"]
        value_expr: Any = {"fn::fromJSON": {"fn::secret": json.dumps({name: "other"})}}
        g.secrets.append(name)
    else:
        value_expr = value
    return {f"v{i}": {"fn::validate": {"schema": secret_json(schema), "value": value_expr}}}


@st.composite
def value_fragment(draw: st.DrawFn, g: Gen, i: int) -> dict:
    """Errors about secret values: bad JSON or base64, an index past a secret array's end, a
    provider that echoes its secret inputs, a secret value failing a literal schema."""
    t = g.secret(draw)
    kind = draw(st.sampled_from(["json", "base64", "index", "provider", "validate"]))
    if kind == "json":
        return {f"j{i}": {"fn::fromJSON": {"fn::secret": draw(st.sampled_from([f'{{"{t}"', f'["{t}\\q"]', f"{t}"]))}}}
    if kind == "base64":
        return {f"b{i}": {"fn::fromBase64": {"fn::secret": f"{t}!!"}}}
    if kind == "index":
        return {f"a{i}": secret_json([t, t]), f"r{i}": f"${{a{i}[{draw(st.integers(2, 9))}]}}"}
    if kind == "provider":
        return {f"pw{i}": {"fn::secret": t}, f"p{i}": {"fn::open::error": {"why": f"${{pw{i}}}", "n": 1}}}
    return {
        f"pw{i}": {"fn::secret": t},
        f"v{i}": {"fn::validate": {"schema": {"type": "string", "maxLength": 2}, "value": f"${{pw{i}}}"}},
    }


@st.composite
def definition(draw: st.DrawFn) -> tuple[str, Gen, int]:
    g = Gen()
    values: dict[str, Any] = {}
    imports: list[str] = []
    count = draw(st.integers(1, 5))
    for i in range(count):
        kind = draw(st.sampled_from([key_fragment, schema_fragment, value_fragment]))
        frag = dict(draw(kind(g, i)))
        imports += frag.pop("__imports__", [])
        values.update(frag)
    doc: dict[str, Any] = {"values": values}
    if imports:
        doc["imports"] = imports
    return yaml.safe_dump(doc, sort_keys=False), g, count


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(definition())
def test_no_diagnostic_quotes_a_secret(case):
    text, g, count = case
    for mode in ("open", "check"):
        diags = diagnostics(text, g.envs, mode)
        if mode == "open":
            # Every fragment is built to fail: the property is about real diagnostics.
            assert len(diags) >= count, (text, diags)
        for d in diags:
            for secret in g.secrets:
                assert secret not in d, f"{secret!r} shows in {d!r}\n{text}"
