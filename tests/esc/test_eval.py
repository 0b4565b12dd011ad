"""Evaluation rules beyond the golden suite: merging, imports, builtins, secrets, robustness."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esc_pulumi.esc import (
    LoadedEnvironment,
    LoadError,
    Provider,
    ProviderRegistry,
    Value,
    evaluate,
    load_definition,
    schema as S,
    to_plain,
)
from esc_pulumi.esc.envelope import seal
from esc_pulumi.esc.values import format_number, go_json, go_quote

ROOT = Path(__file__).resolve().parents[2]


class DictLoader:
    def __init__(self, envs: dict[str, str], decrypter=None) -> None:
        self.envs = envs
        self.calls: list[str] = []
        self.decrypter = decrypter

    def load(self, name: str) -> LoadedEnvironment:
        self.calls.append(name)
        if name not in self.envs:
            raise LoadError(f"environment {name} not found")
        return LoadedEnvironment(text=textwrap.dedent(self.envs[name]), decrypter=self.decrypter)


def open_env(text: str, envs: dict[str, str] | None = None, mode: str = "open", **kw: Any):
    decl, diags = load_definition(textwrap.dedent(text), "root")
    assert decl is not None, diags
    loader = kw.pop("loader", None) or DictLoader(envs or {})
    value, more = evaluate(decl, mode=mode, loader=loader, **kw)  # type: ignore[arg-type]
    return value, diags + more


def errors(diags) -> list[str]:
    return [d.summary for d in diags]


# -- merging and imports ----------------------------------------------------------------------


def test_later_imports_override_earlier_and_objects_deep_merge() -> None:
    envs = {
        "a": "values: {obj: {x: 1, y: 2, deep: {k: a}}, list: [1, 2], s: a, n: keep}",
        "b": "values: {obj: {y: 3, deep: {j: b}}, list: [3], s: b, n: null}",
    }
    v, diags = open_env("imports: [a, b]\nvalues: {obj: {z: 4}}", envs)
    assert not diags
    assert to_plain(v) == {
        "obj": {"x": 1, "y": 3, "z": 4, "deep": {"k": "a", "j": "b"}},
        "list": [3],
        "s": "b",
        "n": None,
    }


def test_scalar_replaces_object_and_object_replaces_scalar() -> None:
    envs = {"a": "values: {p: {x: 1}, q: text}"}
    v, _ = open_env("imports: [a]\nvalues: {p: flat, q: {y: 2}}", envs)
    assert to_plain(v) == {"p": "flat", "q": {"y": 2}}


def test_diamond_imports_are_loaded_and_evaluated_once() -> None:
    envs = {
        "shared": "values: {opened: {fn::open::counter: {}}}",
        "left": "imports: [shared]\nvalues: {l: 1}",
        "right": "imports: [shared]\nvalues: {r: 2}",
    }
    counter = CountingProvider()
    loader = DictLoader(envs)
    v, diags = open_env("imports: [left, right]", loader=loader, providers=ProviderRegistry({"counter": counter}))
    assert not diags
    assert sorted(loader.calls) == ["left", "right", "shared"]
    assert counter.calls == 1
    assert to_plain(v) == {"l": 1, "r": 2, "opened": {"n": 1}}


def test_merge_false_import_is_reachable_but_not_merged() -> None:
    envs = {"c": "values: {foo: bar}"}
    v, diags = open_env("imports: [{c: {merge: false}}]\nvalues: {x: '${imports.c.foo}'}", envs)
    assert not diags
    assert to_plain(v) == {"x": "bar"}


def test_unknown_import_is_a_diagnostic_on_the_import_and_rest_evaluates() -> None:
    v, diags = open_env("imports: [nope]\nvalues: {a: 1}")
    assert errors(diags) == ["environment nope not found"]
    assert diags[0].range is not None and diags[0].range.begin.line == 1 and diags[0].path == "imports[0]"
    assert to_plain(v) == {"a": 1}


def test_import_cycle_through_two_environments() -> None:
    envs = {"a": "imports: [b]\nvalues: {a: 1}", "b": "imports: [a]\nvalues: {b: 2}"}
    v, diags = open_env("imports: [a]", envs)
    assert errors(diags) == ["cyclic import of a"]
    assert diags[0].range.environment == "b"
    assert to_plain(v) == {"a": 1, "b": 2}


def test_errors_in_an_imported_definition_carry_its_name() -> None:
    envs = {"bad": "values:\n  x: ${nope}\n"}
    _, diags = open_env("imports: [bad]", envs)
    assert [(d.summary, d.range.environment, d.range.begin.line) for d in diags] == [
        ('unknown property "nope"', "bad", 2)
    ]


def test_lazy_resolution_through_objects_and_imports() -> None:
    envs = {"a": "values: {obj: {from_import: 7}}"}
    v, diags = open_env(
        """
        imports: [a]
        values:
          obj:
            p: ${obj.q}
            q: ${obj.from_import}
          whole: ${obj}
        """,
        envs,
    )
    assert not diags
    assert to_plain(v)["obj"] == {"p": 7, "q": 7, "from_import": 7}
    assert to_plain(v)["whole"] == {"p": 7, "q": 7, "from_import": 7}


def test_reference_to_object_is_merged_over_the_imported_object() -> None:
    envs = {"a": "values: {target: {base: 1}}"}
    v, _ = open_env("imports: [a]\nvalues: {src: {own: 2}, target: '${src}'}", envs)
    assert to_plain(v)["target"] == {"base": 1, "own": 2}


def test_context_values() -> None:
    v, _ = open_env(
        "values: {who: '${context.pulumi.user.login}', me: '${context.currentEnvironment.name}'}",
        context={"pulumi": {"user": {"login": "alice"}}},
    )
    assert to_plain(v) == {"who": "alice", "me": "root"}


# -- secrets and unknowns ---------------------------------------------------------------------


def test_secrets_propagate_to_derived_values_not_to_containers() -> None:
    v, diags = open_env(
        """
        values:
          pw: {fn::secret: hunter2}
          obj: {pw: '${pw}', plain: x}
          url: 'postgres://u:${pw}@host'
          json: {fn::toJSON: '${obj}'}
          copy: ${obj}
        """
    )
    assert not diags
    repr_ = v.repr
    assert repr_["pw"].secret and repr_["url"].secret and repr_["json"].secret
    assert not repr_["obj"].secret and repr_["obj"].repr["pw"].secret
    assert not repr_["copy"].secret and repr_["copy"].repr["pw"].secret
    assert to_plain(v, redact=True)["obj"] == {"pw": "[secret]", "plain": "x"}
    assert to_plain(v)["url"] == "postgres://u:hunter2@host"
    assert "hunter2" not in repr(v) and "hunter2" not in str(v.repr)


def test_from_json_of_a_secret_makes_every_nested_value_secret() -> None:
    v, _ = open_env("""values: {j: {fn::fromJSON: {fn::secret: '{"a": [1, {"b": 2}]}'}}}""")
    j = v.repr["j"]
    assert to_plain(j) == {"a": [1, {"b": 2}]}
    assert all(x.secret for x in j.repr["a"].repr)


def test_ciphertext_decrypts_in_open_mode_and_stays_unknown_in_check() -> None:
    rot = lambda b: bytes((x + 128) % 256 for x in b)  # noqa: E731
    text = f"values: {{pw: {{fn::secret: {{ciphertext: {seal(rot(b'p4ss'))}}}}}}}"
    opened, diags = open_env(text, decrypter=rot)
    assert not diags and to_plain(opened) == {"pw": "p4ss"} and opened.repr["pw"].secret
    checked, diags = open_env(text, mode="check", decrypter=rot)
    assert not diags and checked.repr["pw"].unknown and checked.repr["pw"].secret


def test_decrypter_failure_is_a_diagnostic_without_plaintext() -> None:
    def bad(_: bytes) -> bytes:
        raise ValueError("wrong key")

    v, diags = open_env(f"values: {{pw: {{fn::secret: {{ciphertext: {seal(b'xyz')}}}}}}}", decrypter=bad)
    assert errors(diags) == ["decrypting: wrong key"]
    assert v.repr["pw"].unknown


# -- builtins ---------------------------------------------------------------------------------


def test_to_json_is_go_compatible() -> None:
    v, _ = open_env("""values: {j: {fn::toJSON: {b: "<a&b>", a: [1, 2.5, true, null]}}}""")
    assert to_plain(v)["j"] == '{"a":[1,2.5,true,null],"b":"\\u003ca\\u0026b\\u003e"}'


def test_to_string_forms() -> None:
    v, _ = open_env(
        """
        values:
          n: {fn::toString: null}
          b: {fn::toString: true}
          f: {fn::toString: 1.50}
          a: {fn::toString: [x, 1, "q\\""]}
          o: {fn::toString: {k: v, a: 1}}
        """
    )
    assert to_plain(v) == {"n": "", "b": "true", "f": "1.5", "a": '"x","1","q\\""', "o": '"a"="1","k"="v"'}


def test_base64_round_trip_and_error_position() -> None:
    v, diags = open_env("values: {e: {fn::toBase64: héllo}, d: {fn::fromBase64: aMOpbGxv}, bad: {fn::fromBase64: 'ab!c'}}")
    assert to_plain(v)["e"] == "aMOpbGxv" and to_plain(v)["d"] == "héllo"
    assert errors(diags) == ["decoding base64 string: illegal base64 data at input byte 2"]


def test_from_json_error_is_a_diagnostic() -> None:
    v, diags = open_env("values: {x: {fn::fromJSON: '{nope'}}")
    assert len(diags) == 1 and diags[0].summary.startswith("decoding JSON string: ")
    assert v.repr["x"].unknown


def test_join_split_and_type_errors() -> None:
    v, diags = open_env("values: {j: {fn::join: ['-', [a, b]]}, s: {fn::split: ['', abc]}, bad: {fn::join: [1, [a]]}}")
    assert to_plain(v)["j"] == "a-b" and to_plain(v)["s"] == ["a", "b", "c"]
    assert errors(diags) == ["expected string, got number"]


def test_validate_builtin() -> None:
    v, diags = open_env("values: {ok: {fn::validate: {schema: {type: string}, value: x}}, bad: {fn::validate: {schema: {type: string}, value: 1}}}")
    assert to_plain(v)["ok"] == "x"
    assert errors(diags) == ["expected string, got number"]


def test_numbers_print_go_style() -> None:
    assert [format_number(x) for x in (16, 1.0, 2.5, 1000.0, 1e6, 1e-5, 0.0001)] == [
        "16", "1", "2.5", "1000", "1e+06", "1e-05", "0.0001"
    ]
    v, _ = open_env("values: {h: 0x10, o: 017, big: 1000000.0, s: 'n=${h},${big}'}")
    assert to_plain(v)["s"] == "n=16,1e+06"


def test_go_quote_and_json_escaping() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    assert go_json({"b": "<>&", "a": 1}) == '{"a":1,"b":"\\u003c\\u003e\\u0026"}'


# -- providers ------------------------------------------------------------------------------


class CountingProvider(Provider):
    def __init__(self) -> None:
        self.calls = 0

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        self.calls += 1
        return {"n": self.calls}


class TokenProvider(Provider):
    input_schema = S.record({"user": S.string()}, required=["user"])
    output_schema = S.record({"token": S.string()})
    secret = True

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        return {"token": f"tok-{inputs.repr['user'].repr}-{context['pulumi']['user']['login']}"}


def test_provider_inputs_checked_output_secret_and_context_passed() -> None:
    reg = ProviderRegistry({"token": TokenProvider()}, entry_points=False)
    v, diags = open_env(
        "values: {t: {fn::open::token: {user: bob}}, bad: {fn::open::token: {user: 1}}, tok: '${t.token}'}",
        providers=reg,
        context={"pulumi": {"user": {"login": "alice"}}},
    )
    assert errors(diags) == ["expected string, got number"]
    assert to_plain(v)["t"] == {"token": "tok-bob-alice"}
    assert v.repr["t"].repr["token"].secret and v.repr["tok"].secret
    assert v.repr["bad"].unknown
    checked, diags = open_env("values: {t: {fn::open::token: {user: bob}}, tok: '${t.token}'}", mode="check", providers=reg)
    assert not diags and checked.repr["tok"].unknown


def test_unknown_provider_and_failing_provider() -> None:
    class Boom(Provider):
        def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
            raise RuntimeError("backend said no")

    v, diags = open_env(
        "values: {a: {fn::open::nope: {}}, b: {fn::open::boom: {}}}",
        providers=ProviderRegistry({"boom": Boom()}, entry_points=False),
    )
    assert sorted(errors(diags)) == ["backend said no", 'unknown provider "nope"']
    assert v.repr["a"].unknown and v.repr["b"].unknown


def test_providers_from_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "demo_provider-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-provider\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[esc_pulumi.providers]\nhello = demo_provider_mod:Hello\n")
    (tmp_path / "demo_provider_mod.py").write_text(
        "from esc_pulumi.esc import Provider\n"
        "class Hello(Provider):\n"
        "    def open(self, inputs, context):\n"
        "        return {'greeting': 'hello ' + inputs.repr['name'].repr}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    v, diags = open_env("values: {h: {fn::open::hello: {name: world}}}", providers=ProviderRegistry())
    assert not diags
    assert to_plain(v) == {"h": {"greeting": "hello world"}}


# -- robustness -----------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "values:\n  root: " + "{a: " * depth + "leaf" + "}" * depth + "\n"


def test_deeply_nested_document_evaluates_without_recursion_error() -> None:
    text = _nested(1000) + "  ref: ${root" + ".a" * 1000 + "}\n"
    v, diags = open_env(text)
    assert not diags
    assert v.repr["ref"].repr == "leaf"
    plain = to_plain(v)
    node = plain["root"]
    for _ in range(1000):
        node = node["a"]
    assert node == "leaf"
    json.dumps(plain["ref"])


def test_long_reference_chain() -> None:
    n = 10_000
    lines = ["values:", "  v0: start"] + [f"  v{i}: ${{v{i - 1}}}" for i in range(1, n)]
    v, diags = open_env("\n".join(lines))
    assert not diags
    assert v.repr[f"v{n - 1}"].repr == "start"


def test_long_cycle_is_reported_once() -> None:
    n = 5_000
    lines = ["values:"] + [f"  v{i}: ${{v{(i + 1) % n}}}" for i in range(n)]
    v, diags = open_env("\n".join(lines))
    assert [d.summary.startswith("cyclic reference to") for d in diags] == [True]
    assert all(x.unknown for x in v.repr.values())


def test_one_parse_evaluates_many_times_concurrently_without_mutation() -> None:
    text = "values:\n" + "".join(f"  k{i}: {{x: '${{base}}-{i}', s: {{fn::secret: s{i}}}}}\n" for i in range(200)) + "  base: b\n"
    decl, _ = load_definition(text, "root")
    assert decl is not None
    expected = to_plain(evaluate(decl)[0])
    results: list[Any] = []

    def worker() -> None:
        for mode in ("check", "open", "open"):
            v, d = evaluate(decl, mode=mode)  # type: ignore[arg-type]
            results.append((mode, to_plain(v, redact=True) if mode == "check" else to_plain(v), d))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 24
    for mode, plain, d in results:
        assert not d
        if mode == "open":
            assert plain == expected


yamlish = st.lists(
    st.sampled_from(list("ab:-[]{}'\"$&*!| \n#.,0123") + ["${", "fn::", "fn::secret", "fn::open::x", "values", "imports", "  ", "\n  "]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_random_documents_never_raise(text: str) -> None:
    for mode in ("check", "open"):
        decl, diags = load_definition(text, "fuzz")
        if decl is not None:
            v, more = evaluate(decl, mode=mode, loader=DictLoader({"a": "values: {x: 1}"}))  # type: ignore[arg-type]
            to_plain(v, redact=True)


# Printable text: YAML refuses raw control characters, non-characters and lone surrogates, and
# takes U+2028/U+2029 for line breaks (which a JSON-style key may not span).
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Zl", "Zp"), blacklist_characters="$"), max_size=8)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), _text)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(_text, c, max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_plain_data_round_trips_through_the_engine(data: Any) -> None:
    text = json.dumps({"values": {"d": data}}, ensure_ascii=False)
    decl, diags = load_definition(text, "rt")
    assert decl is not None
    v, more = evaluate(decl)
    if not (diags or more):
        assert to_plain(v)["d"] == data


# -- golden runner on an unseen case --------------------------------------------------------


def test_golden_runner_runs_an_unseen_case_folder(tmp_path: Path) -> None:
    case = tmp_path / "my-case"
    (case / "proj").mkdir(parents=True)
    (case / "env.yaml").write_text("imports: [proj/base]\nvalues:\n  x: ${y}-${nope}\n  y: {fn::secret: s}\n")
    (case / "proj" / "base.yaml").write_text("values: {b: 1}\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "golden" / "run_case.py"), str(case)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    got = json.loads(out.stdout)
    assert got["evalJSONRevealed"] == {"b": 1, "x": "[unknown]", "y": "s"}
    assert got["evalJsonRedacted"] == {"b": 1, "x": "[secret]", "y": "[secret]"}
    assert [(d["Summary"], d["Subject"]["Filename"], d["Path"]) for d in got["evalDiags"]] == [
        ('unknown property "nope"', "my-case", "values.x")
    ]


def test_cycle_is_reported_on_the_first_property_in_sorted_order() -> None:
    # Document order differs from sorted order: the reference evaluates "a" first, so the
    # cycle closes (and is reported) on a's expression.
    _, diags = open_env("values:\n  b: ${a}\n  a: ${b}\n")
    assert [(d.summary, d.path) for d in diags] == [("cyclic reference to a", "values.a")]


def test_detailed_view_has_flags_and_traces_with_environment() -> None:
    from esc_pulumi.esc.views import detailed

    envs = {"base": "values:\n  obj: {x: 1}\n"}
    v, diags = open_env("imports: [base]\nvalues:\n  obj: {y: {fn::secret: s}}\n  u: ${nope}\n", envs)
    d = detailed(v, "root")
    obj = d["value"]["obj"]
    assert obj["trace"]["def"]["environment"] == "root"
    assert obj["trace"]["def"]["begin"] == {"line": 3, "column": 8, "byte": 31}
    assert obj["trace"]["base"]["trace"]["def"]["environment"] == "base"
    assert obj["value"]["y"] == {"value": "s", "secret": True, "trace": obj["value"]["y"]["trace"]}
    assert obj["value"]["x"]["value"] == 1 and obj["value"]["x"]["trace"]["def"]["environment"] == "base"
    assert d["value"]["u"]["unknown"] is True and "value" not in d["value"]["u"]


def test_numbers_from_json_keep_their_text() -> None:
    v, diags = open_env("""values: {j: {fn::fromJSON: '{"a": 1.50, "b": 1e3}'}, s: '${j.a}/${j.b}', t: {fn::toString: '${j}'}}""")
    assert not diags
    assert to_plain(v)["s"] == "1.50/1e3"
    assert to_plain(v)["t"] == '"a"="1.50","b"="1e3"'
    assert to_plain(v)["j"] == {"a": 1.5, "b": 1000.0}


def test_import_chain_of_ten_thousand_environments_evaluates_without_recursion():
    # Issue 10 §6: ~340 chained imports raised RecursionError out of evaluate().
    n = 10_000

    class Chain:
        def load(self, name: str) -> LoadedEnvironment:
            i = int(name[1:])
            if i == n:
                return LoadedEnvironment(text="values:\n  last: end\n")
            return LoadedEnvironment(text=f"imports: [e{i + 1}]\nvalues:\n  v{i}: {i}\n")

    decl, diags = load_definition(f"imports: [e1]\nvalues:\n  first: '${{v{n - 1}}}-${{last}}'\n", "root")
    assert diags == []
    value, diags = evaluate(decl, mode="open", loader=Chain())
    assert diags == []
    plain = to_plain(value)
    assert plain["first"] == f"{n - 1}-end"
    assert plain["v1"] == 1 and plain[f"v{n - 1}"] == n - 1
    assert len(plain) == n + 1  # v1 .. v9999, last, first


def test_a_failing_import_deep_in_a_chain_is_a_diagnostic_and_the_chain_unwinds():
    class Chain:
        def load(self, name: str) -> LoadedEnvironment:
            i = int(name[1:])
            if i == 2000:
                raise LoadError(f'unknown environment "{name}"')
            return LoadedEnvironment(text=f"imports: [e{i + 1}]\nvalues:\n  v{i}: {i}\n")

    decl, _ = load_definition("imports: [e1]\nvalues:\n  a: 1\n", "root")
    value, diags = evaluate(decl, mode="open", loader=Chain())
    assert [d.summary for d in diags] == ['unknown environment "e2000"']
    assert to_plain(value)["v1999"] == 1999 and to_plain(value)["a"] == 1
    # ... and a second evaluation of the same parse is not confused by the first
    assert evaluate(decl, mode="open", loader=Chain())[1] == diags


def _decimal_digits(n: int) -> str:
    """The oracle: Python's own conversion, its digit guard lifted for the moment."""
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(n)
    finally:
        sys.set_int_max_str_digits(saved)


def test_integers_past_pythons_digit_guard_print_in_full():
    # Issue 10 §6: `0x` + 4000 `f` made fn::toJSON / fn::toString raise ValueError.
    n = int("f" * 4000, 16)
    digits = _decimal_digits(n)
    assert len(digits) == 4817
    decl, diags = load_definition(
        "values:\n"
        f"  big: 0x{'f' * 4000}\n"
        "  json: {fn::toJSON: {n: '${big}'}}\n"
        "  text: {fn::toString: '${big}'}\n"
        "  interpolated: 'n=${big}'\n",
        "big",
    )
    assert diags == []
    value, diags = evaluate(decl, mode="open")
    assert diags == []
    plain = to_plain(value)
    assert plain["json"] == '{"n":' + digits + "}"
    assert plain["text"] == digits
    assert plain["interpolated"] == "n=" + digits
    assert plain["big"] == n


def test_to_plain_keeps_the_value_s_key_order():
    from esc_pulumi import esc

    decl, _ = esc.load_definition("values:\n  stage: dev\n  url: x\n  password: {fn::secret: p}\n  a: {z: 1, b: 2}\n", "p/e")
    value, _ = esc.evaluate(decl, mode="open")
    plain = esc.to_plain(value, redact=True)
    # The engine's objects are sorted by key, as ESC's JSON is; to_plain keeps that order.
    assert list(plain) == list(value.repr) == ["a", "password", "stage", "url"]
    assert list(plain["a"]) == ["b", "z"]


# -- duplicate and reserved keys: evaluation diagnostics (spec section 10) ----------------------


def test_duplicate_and_reserved_keys_are_reported_by_each_evaluation_not_at_load():
    text = "imports:\n  - a\n  - b\nvalues:\n  x: 1\n  x: 2\n  context: nope\n"
    decl, load_diags = load_definition(text, "root")
    assert decl is not None and load_diags == []
    envs = {"a": "values:\n  y: 1\n  y: 2\n", "b": "imports:\n  - a\nvalues:\n  z: 3\n"}
    for mode in ("check", "open"):
        value, diags = evaluate(decl, mode=mode, loader=DictLoader(envs))  # type: ignore[arg-type]
        got = sorted((d.summary, d.range.environment, d.range.begin.line, d.path) for d in diags)
        # a is evaluated once per evaluation although two environments import it
        assert got == [
            ('"context" is a reserved key', "root", 7, "values.context"),
            ('duplicate key "x"', "root", 6, "values.x"),
            ('duplicate key "y"', "a", 3, "values.y"),
        ]
        assert to_plain(value) == {"x": 1, "y": 1, "z": 3}  # the first occurrence wins


def test_duplicate_document_keys_stay_load_warnings():
    decl, diags = load_definition("values: {a: 1}\nvalues: {b: 2}\n", "root")
    assert [(d.summary, int(d.severity)) for d in diags] == [('duplicate key "values"', 2)]


def test_providers_get_the_execution_context_with_the_environment_names():
    seen: list[tuple[str, dict]] = []

    class Recorder(Provider):
        def open(self, inputs, context):
            seen.append((inputs.repr, dict(context)))
            return {}

    registry = ProviderRegistry({"rec": Recorder()}, entry_points=False)
    envs = {"proj/base": "values:\n  b:\n    fn::open::rec: base\n"}
    _, diags = open_env(
        "imports:\n  - proj/base\nvalues:\n  a:\n    fn::open::rec: root\n",
        envs,
        providers=registry,
        context={"pulumi": {"user": {"login": "ana"}}},
    )
    assert diags == []
    got = {inputs: ctx for inputs, ctx in seen}
    assert got["root"] == {
        "pulumi": {"user": {"login": "ana"}},
        "currentEnvironment": {"name": "root"},
        "rootEnvironment": {"name": "root"},
    }
    assert got["base"]["currentEnvironment"] == {"name": "proj/base"}
    assert got["base"]["rootEnvironment"] == {"name": "root"}


def test_detailed_schema_never_quotes_a_provider_secret():
    class Leaky(Provider):
        secret = True

        def open(self, inputs, context):
            return {"token": "tok-5up3r-s3cr3t", "n": 7}

    decl, _ = load_definition("values:\n  out:\n    fn::open::leaky: {}\n  lit:\n    fn::secret: plain-in-text\n", "root")
    from esc_pulumi.esc import evaluate_environment

    ev = evaluate_environment(decl, providers=ProviderRegistry({"leaky": Leaky()}, entry_points=False))
    model = ev.detailed()
    text = json.dumps({k: model[k] for k in ("exprs", "schema")})
    assert "tok-5up3r-s3cr3t" not in text and '"const": 7' not in text
    assert model["schema"]["properties"]["out"]["properties"]["token"] == {"type": "string"}
    # a plaintext secret is the definition's own text: the reference shows it as a const
    assert model["schema"]["properties"]["lit"] == {"type": "string", "const": "plain-in-text"}


def test_reference_diagnostic_ranges():
    """Spec section 10: the root accessor's own range, ``${}`` on its '}', an integer root
    subscript is an integer index on an object, and inside a quoted scalar the whole scalar."""
    text = 'values:\n  a: ${nope}\n  b: ${[2]}\n  c: "${nope}"\n  d: ${}\n'
    decl, load_diags = load_definition(text, "root")
    assert decl is not None

    def where(d):
        return (d.range.begin.line, d.range.begin.column, d.range.end.line, d.range.end.column)

    assert [(d.summary, where(d)) for d in load_diags] == [
        ("the first accessor must be a property name or key subscript, not a numeric subscript", (3, 8, 3, 10))
    ]
    _, diags = evaluate(decl, mode="open")
    got = sorted((where(d), d.summary) for d in diags)
    assert got == [
        ((2, 8, 2, 12), 'unknown property "nope"'),
        ((3, 8, 3, 11), "cannot access an object property using an integer index"),
        ((4, 6, 4, 13), 'unknown property "nope"'),
        ((5, 8, 5, 9), 'unknown property ""'),
    ]
