"""The detailed model redacted (:func:`esc_pulumi.esc.model.redact_model`): no secret's text in
``properties``, ``exprs``, ``schema`` or ``executionContext``.

The property test reuses the generator of :mod:`.test_secret_redaction` (definitions whose string
literals are unique, distinctive tokens) and evaluates each definition twice: alone, and imported
by a root that overrides some of its properties (so that expressions and values carry bases).
Its oracles:

1. by construction: a ``fn::secret`` token, a token written inside a secret provider's inputs or
   inside the JSON text of a secret given to ``fn::fromJSON`` appears nowhere in the redacted
   model, in open and in check mode (where no provider runs);
2. by the revealed model: every token inside a secret value of its properties (bases included)
   is absent from the redacted model, unless a non-secret value shows it too (public text that
   a secret provider echoed was never a secret).
"""
from __future__ import annotations

import json
import textwrap
from typing import Any

from hypothesis import HealthCheck, given, settings

from esc_pulumi.esc import ANONYMOUS, LoadedEnvironment, evaluate_environment, load_definition
from esc_pulumi.esc.model import redact_model, secret_texts
from esc_pulumi.esc.model_form import from_api, to_api

from .test_secret_redaction import TOKEN, definitions, registry

ROOT = """\
imports:
  - base
values:
  p1: over-p1-Pl900q
  extra:
    fn::secret: root-Sec901qHIDDENTOKEN
"""


class Loader:
    def __init__(self, text: str) -> None:
        self.text = text

    def load(self, name: str) -> LoadedEnvironment:
        return LoadedEnvironment(text=self.text.encode(), decrypter=None)


def models(text: str, mode: str = "open", imported: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(revealed, redacted) models of ``text`` alone, or imported by :data:`ROOT`."""
    if imported:
        decl, diags = load_definition(ROOT, "root")
        loader: Any = Loader(text)
    else:
        decl, diags = load_definition(textwrap.dedent(text), "dev")
        loader = None
    assert decl is not None, diags
    ev = evaluate_environment(decl, mode=mode, providers=registry(), loader=loader)  # type: ignore[arg-type]
    assert not [d for d in ev.diagnostics if d.is_error], (text, ev.diagnostics)
    return ev.detailed(), ev.detailed(redact=True)


def value_leaves(values: Any) -> list[tuple[str, bool]]:
    """(text, secret) of every known string of a map of detailed Values and their bases;
    ``secret`` counts a secret ancestor too."""
    out: list[tuple[str, bool]] = []
    stack = [(v, False) for v in (values or {}).values()]
    while stack:
        node, inherited = stack.pop()
        secret = inherited or node.get("secret") is True
        v = node.get("value")
        if isinstance(v, dict):
            stack.extend((c, secret) for c in v.values())
        elif isinstance(v, list):
            stack.extend((c, secret) for c in v)
        elif isinstance(v, str) and not node.get("unknown"):
            out.append((v, secret))
        base = node.get("trace", {}).get("base")
        if base is not None:
            stack.append((base, False))
    return out


def assert_hidden(redacted: dict[str, Any], plaintexts: list[str], context: str) -> None:
    text = json.dumps(redacted, ensure_ascii=False)
    for p in plaintexts:
        assert p not in text, f"{p!r} shows in the redacted model of:\n{context}"


def revealed_secrets(revealed: dict[str, Any]) -> list[str]:
    """Oracle 2: tokens inside secret values of the revealed properties, minus public ones."""
    leaves = value_leaves(revealed.get("properties"))
    public = [t for t, secret in leaves if not secret]
    found = set()
    for t, secret in leaves:
        if secret:
            tokens = TOKEN.findall(t)
            found.update(tokens)
            if tokens:
                found.add(t)
    return sorted(f for f in found if not any(f in p for p in public))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(definitions())
def test_no_redacted_model_shows_a_secret(case: tuple[str, frozenset[str]]) -> None:
    text, secret_tokens = case
    for imported in (False, True):
        revealed, redacted = models(text, imported=imported)
        extra = ["root-Sec901qHIDDENTOKEN"] if imported else []
        assert_hidden(redacted, sorted(secret_tokens) + extra, text)
        assert_hidden(redacted, revealed_secrets(revealed), text)
        # The same rule on the model as the API sends it.
        assert_hidden(redact_model(to_api(revealed)), sorted(secret_tokens) + extra, text)
        assert from_api(to_api(redacted)) == redacted

        # Check mode runs no provider: whatever one's inputs are stays hidden all the same.
        revealed, redacted = models(text, mode="check", imported=imported)
        assert_hidden(redacted, sorted(secret_tokens) + extra + revealed_secrets(revealed), text)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_the_revealed_model_holds_the_secrets(case: tuple[str, frozenset[str]]) -> None:
    """Not vacuous: every top-level ``fn::secret`` token is in the revealed model's properties,
    expressions and schema, and only ``[secret]`` stands in the redacted one's properties."""
    text, _ = case
    revealed, redacted = models(text)
    doc = json.loads(text)["values"]
    for key, v in doc.items():
        if isinstance(v, dict) and set(v) == {"fn::secret"}:
            token = v["fn::secret"]
            assert revealed["properties"][key]["value"] == token
            assert revealed["exprs"][key]["builtin"]["arg"]["literal"] == token
            assert revealed["schema"]["properties"][key] == {"type": "string", "const": token}
            assert redacted["properties"][key]["value"] == "[secret]"
            assert redacted["exprs"][key]["builtin"]["arg"]["literal"] == "[secret]"
            assert redacted["schema"]["properties"][key] == {"type": "string"}


# -- the rule on small cases (expected values written by hand) -------------------------------


def _model(text: str, redact: bool = True) -> dict[str, Any]:
    decl, diags = load_definition(textwrap.dedent(text), "dev")
    assert decl is not None and not diags
    ev = evaluate_environment(decl, providers=registry())  # type: ignore[arg-type]
    assert not ev.diagnostics
    return ev.detailed(redact=redact)


def test_fn_secret_literal_value_and_schema() -> None:
    m = _model("values:\n  pw:\n    fn::secret: hunter2\n  ref: ${pw}\n  plain: visible\n")
    assert m["properties"]["pw"] == {"value": "[secret]", "secret": True, "trace": m["properties"]["pw"]["trace"]}
    assert m["exprs"]["pw"]["builtin"]["arg"]["literal"] == "[secret]"
    assert m["exprs"]["pw"]["schema"] == {"type": "string"}
    assert m["schema"]["properties"] == {"pw": {"type": "string"}, "ref": {"type": "string"},
                                         "plain": {"type": "string", "const": "visible"}}
    assert m["exprs"]["plain"]["literal"] == "visible"
    assert "hunter2" not in json.dumps(m)


def test_secret_provider_inputs_are_hidden_and_public_ones_shown() -> None:
    text = """\
    values:
      out:
        fn::open::secret-echo: {user: admin-name, port: 5432}
      pub:
        fn::open::echo: {region: us-west-9}
    """
    m = _model(text)
    inputs = m["exprs"]["out"]["builtin"]["arg"]
    assert inputs["object"]["user"]["literal"] == "[secret]"
    assert inputs["object"]["port"]["literal"] == "[secret]"  # a number is hidden as well
    assert "const" not in json.dumps(inputs)
    assert m["exprs"]["pub"]["builtin"]["arg"]["object"]["region"]["literal"] == "us-west-9"
    assert "admin-name" not in json.dumps(m) and "5432" not in json.dumps(m["exprs"]["out"])


def test_interpolation_of_a_secret_hides_its_text() -> None:
    m = _model("values:\n  pw:\n    fn::secret: s3cr3t\n  url: 'https://user-x:${pw}@host'\n")
    parts = m["exprs"]["url"]["interpolate"]
    assert [p.get("text") for p in parts] == ["[secret]", "[secret]"]
    assert m["properties"]["url"]["value"] == "[secret]"


def test_an_overridden_secret_stays_hidden_in_bases() -> None:
    decl, _ = load_definition("imports: [base]\nvalues:\n  pw: replaced\n", "root")
    assert decl is not None
    ev = evaluate_environment(decl, loader=Loader("values:\n  pw:\n    fn::secret: old-s3cret\n"))
    revealed, redacted = ev.detailed(), ev.detailed(redact=True)
    assert revealed["properties"]["pw"]["trace"]["base"]["value"] == "old-s3cret"
    assert redacted["properties"]["pw"]["trace"]["base"]["value"] == "[secret]"
    # A plaintext secret is defined by its literal: the base is that literal.
    assert redacted["exprs"]["pw"]["base"]["literal"] == "[secret]"
    assert redacted["exprs"]["pw"]["base"]["schema"] == {"type": "string"}
    assert "old-s3cret" not in json.dumps(redacted)
    assert redacted["exprs"]["pw"]["literal"] == "replaced"


def test_check_mode_hides_every_provider_input() -> None:
    decl, _ = load_definition("values:\n  pub:\n    fn::open::echo: {region: us-west-9}\n", "dev")
    assert decl is not None
    m = evaluate_environment(decl, mode="check", providers=registry()).detailed(redact=True)  # type: ignore[arg-type]
    assert m["exprs"]["pub"]["builtin"]["arg"]["object"]["region"]["literal"] == "[secret]"


def test_secret_texts_of_a_model() -> None:
    m = _model("values:\n  a:\n    fn::secret: one-x\n  b: {c: {fn::secret: two-y}}\n  d: public\n", redact=False)
    assert secret_texts(m) == {"one-x", "two-y"}


def test_redaction_leaves_the_model_it_reads_alone() -> None:
    m = _model("values:\n  a:\n    fn::secret: keep-me\n", redact=False)
    before = json.dumps(m)
    redact_model(m)
    assert json.dumps(m) == before


def test_an_anonymous_composition_of_one_import_shows_that_environment() -> None:
    base = "values:\n  a: x\n  pw:\n    fn::secret: comp-s3cret\n"
    decl, _ = load_definition('{"imports": ["p/e"]}', ANONYMOUS)
    assert decl is not None
    ev = evaluate_environment(decl, loader=Loader(base))
    alone_decl, _ = load_definition(base, "p/e")
    assert alone_decl is not None
    alone = evaluate_environment(alone_decl)
    assert ev.detailed(environment="p/e") == alone.detailed()
    assert ev.detailed(environment="p/e", redact=True) == alone.detailed(redact=True)
    assert "exprs" not in ev.detailed()  # the composition itself defines nothing


def imported_evaluation(text: str) -> Any:
    """The open evaluation of :data:`ROOT` importing ``text``."""
    decl, _ = load_definition(ROOT, "root")
    return evaluate_environment(decl, mode="open", providers=registry(), loader=Loader(text))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(definitions())
def test_some_parts_of_a_model_are_those_parts_of_the_whole(case: tuple[str, frozenset[str]]) -> None:
    # detailed(parts=...) builds only what is asked for, and that is what the whole model has
    # (redacted as the whole is: redaction pairs expressions with the properties).
    ev = imported_evaluation(case[0])
    for redact in (False, True):
        whole = ev.detailed(redact=redact)
        for parts in (("exprs", "schema", "executionContext"), ("properties",), ("schema",), ()):
            assert ev.detailed(redact=redact, parts=parts) == {k: v for k, v in whole.items() if k in parts}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(definitions())
def test_json_size_is_the_length_of_the_json(case: tuple[str, frozenset[str]]) -> None:
    # json_size bounds what the server writes without writing it: for the models of the
    # engine (shared parts counted each time they are written) it is the compact JSON's length,
    # within a few percent (the spelling of numbers, booleans, null and escapes is guessed:
    # small numbers, the positions, are counted a digit longer).
    from esc_pulumi.esc.model_form import json_size

    ev = imported_evaluation(case[0])
    api = to_api(ev.detailed())
    shared = {"a": api, "b": [api, api["schema"]], "c": {}, "d": []}
    for data in (api, shared, api["schema"]):
        written = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        assert 0.97 * len(written) <= json_size(data) <= 1.15 * len(written) + 10
