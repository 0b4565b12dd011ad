"""Tests for esc_pulumi.esc.schema: the JSON-Schema subset, validation and value schemas."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esc_pulumi.esc import schema as S
from esc_pulumi.esc.schema import ALWAYS, NEVER, Schema, SchemaError, of_value, validate

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"


def golden(case: str) -> dict[str, Any]:
    path = GOLDEN / case / "expected.json"
    if not path.exists():
        pytest.skip(f"golden case {case} not available at {path}")
    return json.loads(path.read_text())


@dataclass(eq=False)
class V:
    """A minimal ValueLike."""

    repr: Any = None
    unknown: bool = False
    schema: Schema | None = None


def K(x: Any) -> V:
    """A known value tree from plain JSON."""
    if isinstance(x, list):
        return V([K(e) for e in x])
    if isinstance(x, dict):
        return V({k: K(e) for k, e in x.items()})
    return V(x)


def U(schema: Schema | dict | bool | None = None) -> V:
    """An unknown value carrying a schema."""
    if isinstance(schema, (dict, bool)):
        schema = Schema.from_json(schema)
    return V(None, True, schema)


def msgs(value: V, schema: Schema | dict | bool) -> list[str]:
    if not isinstance(schema, Schema):
        schema = Schema.from_json(schema)
    return sorted(e.message for e in validate(value, schema))


# -- known values: one case per keyword ------------------------------------------------------

KNOWN_CASES = [
    # type
    ({"type": "string"}, "x", []),
    ({"type": "string"}, 42, ["expected string, got number"]),
    ({"type": "number"}, True, ["expected number, got boolean"]),
    ({"type": "number"}, 1.5, []),
    ({"type": "boolean"}, None, ["expected boolean, got null"]),
    ({"type": "null"}, {}, ["expected null, got object"]),
    ({"type": "array"}, "a", ["expected array, got string"]),
    ({"type": "object"}, [1], ["expected object, got array"]),
    ({"type": "integer"}, 2.0, []),
    ({"type": "integer"}, 2.5, ["expected integer, got number"]),
    # const / enum
    ({"type": "array", "const": ["hello", 42]}, "esc", ['expected ["hello",42]', "expected array, got string"]),
    ({"type": "array", "const": ["hello", 42]}, ["hello", 42.0], []),
    ({"type": "object", "const": {"hello": "world"}}, "esc",
     ['expected {"hello":"world"}', "expected object, got string"]),
    ({"type": "object", "const": {"b": 1, "a": "<&>"}}, {"a": "x", "b": 1},
     ['expected {"a":"\\u003c\\u0026\\u003e","b":1}']),
    ({"const": 1}, True, ["expected 1"]),
    ({"const": True}, 1, ["expected true"]),
    ({"const": 3.14}, 3.14, []),
    ({"type": "string", "enum": ["foo", "bar"]}, "esc", ['expected one of ["foo","bar"]']),
    ({"type": "string", "enum": ["foo", "bar"]}, "bar", []),
    # numbers
    ({"type": "number", "multipleOf": 2}, 3.14, ["expected a multiple of 2"]),
    ({"type": "number", "multipleOf": 2}, 4, []),
    ({"type": "number", "multipleOf": 0.1}, 0.3, []),
    ({"type": "number", "multipleOf": 0.5}, 0.7, ["expected a multiple of 0.5"]),
    ({"type": "number", "minimum": 1}, 0, ["expected a number greater than or equal to 1"]),
    ({"type": "number", "minimum": 1}, 1, []),
    ({"type": "number", "exclusiveMinimum": 1}, 1, ["expected a number greater than 1"]),
    ({"type": "number", "exclusiveMinimum": 1}, 1.0001, []),
    ({"type": "number", "maximum": 1}, 2, ["expected a number less than or equal to1"]),
    ({"type": "number", "maximum": 1}, 1.0, []),
    ({"type": "number", "exclusiveMaximum": 1}, 1, ["expected a number less than 1"]),
    ({"type": "number", "exclusiveMaximum": 1.5}, 2, ["expected a number less than 1.5"]),
    ({"minimum": 1}, "not a number", []),
    # strings
    ({"type": "string", "minLength": 1}, "", ["expected a string of at least length 1"]),
    ({"type": "string", "maxLength": 1}, "esc", ["expected a string of at most length 1"]),
    ({"type": "string", "maxLength": 1}, "é", []),
    ({"type": "string", "pattern": "^foo[0-9]+$"}, "esc", ['string must match the pattern "^foo[0-9]+$"']),
    ({"type": "string", "pattern": "^foo[0-9]+$"}, "foo42", []),
    ({"type": "string", "pattern": "[0-9]"}, "a1b", []),
    ({"type": "string", "pattern": 'a"b\\d'}, "x", ['string must match the pattern "a\\"b\\\\d"']),
    # arrays
    ({"type": "array", "minItems": 3}, ["hello", 42], ["expected an array with at least 3 items"]),
    ({"type": "array", "maxItems": 2}, ["hello", 42, True], ["expected an array with at most 2 items"]),
    ({"type": "array", "items": {"type": "string"}}, ["a", 1, "b", None],
     ["expected string, got null", "expected string, got number"]),
    ({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
     ["a", "b"], ["expected number, got string"]),
    # A tuple given too many elements passes, as in the reference (golden schema-error `double`).
    ({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
     ["hello", 42, True], []),
    # ... and too few too (prefixItems do not require presence).
    ({"prefixItems": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "items": False,
      "type": "array"}, ["hello", 42], []),
    ({"prefixItems": [{"type": "string"}], "items": {"type": "number"}, "type": "array"},
     ["a", 1, "x"], ["expected number, got string"]),
    # objects
    ({"properties": {"foo": {"type": "string"}}, "type": "object", "required": ["foo"]}, {},
     ["missing required properties: foo"]),
    ({"type": "object", "required": ["a", "b", "c"]}, {"b": 1}, ["missing required properties: a, c"]),
    ({"properties": {"foo": {"type": "string"}}, "type": "object"}, {"foo": 1, "bar": 2},
     ["expected string, got number"]),
    ({"additionalProperties": {"type": "number"}, "type": "object"}, {"a": 1, "b": "x"},
     ["expected number, got string"]),
    ({"properties": {"bar": {"type": "number"}, "foo": {"type": "string"}}, "type": "object",
      "dependentRequired": {"foo": ["bar"]}}, {"foo": "bar"}, ["missing required properties: bar"]),
    ({"type": "object", "dependentRequired": {"foo": ["bar"]}}, {"baz": 1}, []),
    ({"type": "object", "minProperties": 1}, {}, ["expected an object with at least 1 properties"]),
    ({"type": "object", "maxProperties": 1}, {"foo": "bar", "bar": 42},
     ["expected an object with at most 1 properties"]),
    # A never schema (and additionalProperties: false) reports nothing, like `items: false`.
    (False, 1, []),
    ({"properties": {"a": True}, "additionalProperties": False, "type": "object"}, {"a": 1, "b": 2}, []),
    (True, {"anything": [1]}, []),
    # combinators
    ({"anyOf": [{"type": "string"}, {"type": "number"}]}, False,
     ["at least one subschema must match", "expected number, got boolean", "expected string, got boolean"]),
    ({"anyOf": [{"type": "string"}, {"type": "number"}]}, 1, []),
    ({"oneOf": [{"type": "string"}, {"type": "number"}]}, False,
     ["exactly one subschema must match", "expected number, got boolean", "expected string, got boolean"]),
    ({"oneOf": [{"type": "string"}, {"type": "number"}]}, 42, []),
    ({"oneOf": [{"type": "number"}, {"type": "number", "minimum": 0}]}, 1,
     ["exactly one subschema must match"]),
    ({"allOf": [{"type": "number"}, {"minimum": 3}]}, 1, ["expected a number greater than or equal to 3"]),
    # $ref
    ({"$defs": {"r": {"properties": {"baz": {"type": "string", "const": "qux"}}, "type": "object",
                      "required": ["baz"]}},
      "properties": {"ref": {"$ref": "#/$defs/r"}}, "type": "object"},
     {"ref": {"baz": "quux"}}, ['expected "qux"']),
    ({"$defs": {"r": {"type": "string"}}, "$ref": "#/$defs/r"}, 1, ["expected string, got number"]),
    ({"definitions": {"r": {"type": "string"}}, "items": {"$ref": "#/definitions/r"}, "type": "array"},
     [1], ["expected string, got number"]),
    ({"properties": {"next": {"$ref": "#"}, "v": {"type": "number"}}, "type": "object"},
     {"v": 1, "next": {"v": "x", "next": {"v": 2}}}, ["expected number, got string"]),
]


@pytest.mark.parametrize("schema,value,expected", KNOWN_CASES)
def test_known_values(schema: Any, value: Any, expected: list[str]) -> None:
    assert msgs(K(value), schema) == sorted(expected)


def test_errors_are_reported_at_the_innermost_value() -> None:
    s = Schema.from_json({"properties": {"a": {"items": {"type": "string"}, "type": "array"}}, "type": "object"})
    v = K({"a": ["x", 1]})
    errs = validate(v, s)
    assert errs == [SchemaError(v.repr["a"].repr[1], "expected string, got number")]
    assert errs[0].value is v.repr["a"].repr[1]


def test_compound_failures_are_reported_at_the_value() -> None:
    s = Schema.from_json({"oneOf": [{"type": "object", "required": ["current"]}, {"type": "null"}]})
    v = K({"previous": "x"})
    errs = validate(v, s)
    assert all(e.value is v for e in errs)
    assert sorted(e.message for e in errs) == [
        "exactly one subschema must match", "expected null, got object", "missing required properties: current",
    ]


def test_numbers_compare_by_value_and_bools_are_not_numbers() -> None:
    assert msgs(K(1.0), {"const": 1}) == []
    assert msgs(K(True), {"const": 1}) == ["expected 1"]
    assert msgs(K(1), {"enum": [True, 1.0]}) == []
    assert msgs(K([True]), {"const": [1]}) == ["expected [1]"]
    assert msgs(K(10**30), {"type": "number", "maximum": 1e300}) == []


def test_message_numbers_print_like_go() -> None:
    assert msgs(K(0.5), {"minimum": 1.5}) == ["expected a number greater than or equal to 1.5"]
    assert msgs(K(0), {"minimum": 1e-7}) == ["expected a number greater than or equal to 1e-7"]
    assert msgs(K(0), {"minimum": 0.00001}) == ["expected a number greater than or equal to 0.00001"]
    assert msgs(K(0), {"minimum": 1e21}) == ["expected a number greater than or equal to 1e+21"]
    assert msgs(K(0), {"const": 2.0}) == ["expected 2"]


# -- unknown values: schema compatibility ---------------------------------------------------

UNKNOWN_CASES = [
    # anything unknown about the value: nothing can be told
    (None, {"type": "string", "minLength": 3}, []),
    (True, {"properties": {"foo": {"type": "string"}}, "type": "object", "required": ["foo"]}, []),
    (True, {"type": "object", "minProperties": 1}, []),
    # types
    ({"type": "null"}, {"type": "boolean"}, ["expected boolean, got null"]),
    ({"items": True, "type": "array"}, {"type": "string"}, ["expected string, got array"]),
    ({"type": "string", "const": "x"}, {"type": "number"}, ["expected number, got string"]),
    ({"const": 1}, {"type": "string"}, ["expected string, got number"]),
    ({"type": "number"}, {"type": "integer"}, []),
    # value constraints are not compared
    ({"type": "string"}, {"type": "array", "const": ["hello", 42]}, ["expected array, got string"]),
    ({"type": "string"}, {"type": "string", "enum": ["foo", "bar"]}, []),
    ({"type": "number", "const": 3.14}, {"type": "number", "multipleOf": 2}, []),
    ({"type": "number", "exclusiveMaximum": 1}, {"type": "number", "minimum": 1}, []),
    ({"type": "string"}, {"type": "string", "pattern": "^x$", "maxLength": 1}, []),
    ({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
     {"type": "array", "minItems": 3}, []),
    # combinators: oneOf cannot be decided, so it fails like anyOf
    ({"type": "boolean", "const": False}, {"anyOf": [{"type": "string"}, {"type": "number"}]},
     ["at least one subschema must match", "expected number, got boolean", "expected string, got boolean"]),
    ({"type": "boolean", "const": False}, {"oneOf": [{"type": "string"}, {"type": "number"}]},
     ["at least one subschema must match", "expected number, got boolean", "expected string, got boolean"]),
    ({"type": "number"}, {"oneOf": [{"type": "string"}, {"type": "number"}]}, []),
    ({"anyOf": [{"type": "string"}, {"type": "number"}]}, {"type": "number"}, []),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "number"},
     ["expected number, got null", "expected number, got string"]),
    # required properties must be guaranteed by the value's schema
    ({"properties": {"foo": {"type": "string"}}, "type": "object", "required": ["foo"]},
     {"properties": {"bar": {"type": "number"}, "foo": {"type": "string"}}, "type": "object",
      "dependentRequired": {"foo": ["bar"]}},
     ["bar: missing required property"]),
    ({"type": "object", "required": ["a"]}, {"type": "object", "required": ["a", "b"]},
     ["b: missing required property"]),
    ({"type": "object", "required": ["a", "b"]}, {"type": "object", "required": ["a", "b"]}, []),
    ({"type": "object"}, {"type": "object", "dependentRequired": {"foo": ["bar"]}}, []),
    # nested problems are prefixed with their path inside the unknown value
    ({"properties": {"foo": {"type": "number"}}, "type": "object"},
     {"properties": {"foo": {"type": "string"}}, "type": "object"}, ["foo: expected string, got number"]),
    ({"properties": {"a-b": {"properties": {"c": {"type": "number"}}, "type": "object"}}, "type": "object"},
     {"properties": {"a-b": {"properties": {"c": {"type": "string"}, "d": True}, "type": "object",
                             "required": ["d"]}}, "type": "object"},
     ['["a-b"].c: expected string, got number', '["a-b"].d: missing required property']),
    ({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
     {"prefixItems": [{"type": "string"}, {"type": "string"}], "items": False, "type": "array"},
     ["[1]: expected string, got number"]),
    # tuples of other lengths: nothing (golden schema-error `double`/`triple`)
    ({"prefixItems": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "items": False,
      "type": "array"},
     {"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"}, []),
    ({"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
     {"prefixItems": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "items": False,
      "type": "array"}, []),
    # $ref on either side
    ({"$defs": {"r": {"type": "number"}}, "$ref": "#/$defs/r"}, {"type": "string"},
     ["expected string, got number"]),
    ({"type": "number"}, {"$defs": {"r": {"type": "string"}}, "$ref": "#/$defs/r"},
     ["expected string, got number"]),
    # recursive schemas terminate
    ({"properties": {"next": {"$ref": "#"}}, "type": "object"},
     {"properties": {"next": {"$ref": "#"}}, "type": "object"}, []),
]


@pytest.mark.parametrize("vschema,schema,expected", UNKNOWN_CASES)
def test_unknown_values(vschema: Any, schema: Any, expected: list[str]) -> None:
    v = U(vschema)
    errs = validate(v, Schema.from_json(schema))
    assert all(e.value is v for e in errs)
    assert sorted(e.message for e in errs) == sorted(expected)


def test_known_container_with_unknown_elements() -> None:
    s = Schema.from_json({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "type": "object",
                          "required": ["a", "b", "c"]})
    a = U({"type": "number"})
    v = V({"a": a, "b": U()})
    errs = validate(v, s)
    assert sorted((e.message, e.value is a) for e in errs) == [
        ("expected string, got number", True), ("missing required properties: c", False),
    ]
    # a nested unknown is taken to match a const
    assert msgs(V([U(), K(1)]), {"const": ["x", 1]}) == []
    assert msgs(V([U(), K(2)]), {"const": ["x", 1]}) == ['expected ["x",1]']


# -- the golden cases ------------------------------------------------------------------------


def _path_key(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    import re

    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _paths(v: V, path: str, out: dict[int, str]) -> dict[int, str]:
    out[id(v)] = path
    if not v.unknown and isinstance(v.repr, list):
        for i, e in enumerate(v.repr):
            _paths(e, _path_key(path, i), out)
    elif not v.unknown and isinstance(v.repr, dict):
        for k, e in v.repr.items():
            _paths(e, _path_key(path, k), out)
    return out


def _diag_set(diags: list[dict], prefix: str = "") -> Counter:
    return Counter((d["Summary"], d["Path"]) for d in diags if d["Path"].startswith(prefix))


def _error_set(errs: list[SchemaError], paths: dict[int, str]) -> Counter:
    return Counter((e.message, paths[id(e.value)]) for e in errs)


def _sink_inputs(exp: dict, mode: str) -> tuple[V, Schema]:
    """The `sink` provider inputs of the schema/schema-error cases, built as the evaluator does:
    in check mode each `${source.x}` is unknown with the schema of the provider output's `x`;
    in eval mode it is the known value the source provider echoed."""
    sink = exp["check"]["exprs"]["sink"]
    input_schema = Schema.from_json(sink["builtin"]["argSchema"])
    output_schema = Schema.from_json(exp["check"]["exprs"]["source"]["schema"])
    source = exp["evalJSONRevealed"]["source"]

    def ref(symbol: list[dict]) -> V:
        keys = [s["key"] for s in symbol]
        assert keys[0] == "source"
        if mode == "check":
            sch = output_schema
            for k in keys[1:]:
                sch = sch.property(k)
            return U(sch)
        val = source
        for k in keys[1:]:
            val = val[k]
        return K(val)

    arg = sink["builtin"]["arg"]
    if "symbol" in arg:
        return ref(arg["symbol"]), input_schema
    inputs: dict[str, V] = {}
    for key, x in arg["object"].items():
        if "symbol" in x:
            inputs[key] = ref(x["symbol"])
        else:
            assert "literal" in x
            inputs[key] = K(x["literal"])
    return V(inputs), input_schema


@pytest.mark.parametrize("mode", ["check", "eval"])
def test_golden_schema_error(mode: str) -> None:
    exp = golden("schema-error")
    inputs, input_schema = _sink_inputs(exp, mode)
    path = 'values.sink["fn::open::schema"]'
    errs = validate(inputs, input_schema)
    got = _error_set(errs, _paths(inputs, path, {}))
    want = _diag_set(exp[f"{mode}Diags"], path)
    assert got == want
    assert len(exp[f"{mode}Diags"]) == sum(want.values())  # every diagnostic of the case is covered


@pytest.mark.parametrize("mode", ["check", "eval"])
def test_golden_schema_passes(mode: str) -> None:
    exp = golden("schema")
    inputs, input_schema = _sink_inputs(exp, mode)
    assert inputs.unknown == (mode == "check")
    assert validate(inputs, input_schema) == []
    assert not exp.get(f"{mode}Diags")


def test_golden_schema_accesses_in_check_mode() -> None:
    exp = golden("schema")
    out = Schema.from_json(exp["check"]["exprs"]["source"]["schema"])
    accesses = exp["check"]["exprs"]["accesses"]["list"]
    got = []
    for x in accesses:
        sch = out
        for acc in x["symbol"][1:]:
            sch = sch.item(acc["index"]) if "index" in acc else sch.property(acc["key"])
        got.append(sch.to_json())
    assert got == [x["schema"] for x in accesses]


def test_golden_rotate_state() -> None:
    exp = golden("rotate-state")
    x = exp["check"]["exprs"]["invalid-state"]
    state_schema = Schema.from_json(x["builtin"]["argSchema"]).property("state")
    state = K({"previous": "missing current!"})
    errs = validate(state, state_schema)
    assert all(e.value is state for e in errs)
    want = _diag_set(exp["checkDiags"])
    assert Counter((e.message, 'values["invalid-state"]["fn::rotate::echo"].state') for e in errs) == want
    # the valid states pass
    for name, st_ in [("optional-state", None), ("partial-state", {"current": "update1"}),
                      ("full-state", {"current": "update2", "previous": "update1"})]:
        assert validate(K(st_), state_schema) == [], name


def _builtin_arg_case(case: str, prefix: str, builtin: str, args: dict[str, Any]) -> None:
    exp = golden(case)
    for mode in ("check", "eval"):
        got: Counter = Counter()
        for key, (arg, schema_json) in args.items():
            path = f"{prefix}{key}[{json.dumps(builtin)}]" if builtin else f"{prefix}{key}"
            errs = validate(arg, Schema.from_json(schema_json))
            got += _error_set(errs, _paths(arg, path, {}))
        assert got == _diag_set(exp[f"{mode}Diags"]) - _diag_set(
            [d for d in exp[f"{mode}Diags"] if "must be" in d["Summary"] or "unknown property" in d["Summary"]]
        )


def test_golden_builtin_concat_errors() -> None:
    exp = golden("builtin-concat-errors")
    concat = exp["check"]["exprs"]["invalidNested"]["builtin"]["argSchema"]
    assert Schema.from_json(concat).to_json() == S.array(S.array()).to_json()
    _builtin_arg_case("builtin-concat-errors", "values.", "fn::concat", {
        "invalidInput": (K("not an array"), concat),
        "invalidNested": (K([1, 2, 3]), concat),
        "mixedInvalid": (K([[1, 2], "invalid", [3, 4]]), concat),
    })


def test_golden_builtin_errs() -> None:
    exp = golden("builtin-errs")
    b = exp["check"]["exprs"]["builtins"]["list"]
    join = b[1]["builtin"]["argSchema"]
    to_b64 = b[4]["builtin"]["argSchema"]
    _builtin_arg_case("builtin-errs", "values.builtins", "", {
        '[0]["fn::open::test"]': (U(), True),
        '[1]["fn::join"]': (V([K(","), U()]), join),
        '[2]["fn::join"]': (V([K(","), V([K(42)])]), join),
        '[3]["fn::toBase64"]': (U(), to_b64),
        '[4]["fn::toBase64"]': (K(42), to_b64),
        '[5]["fn::toJSON"]': (U(), True),
    })


def _walk_golden(kind: str):
    if not GOLDEN.exists():
        pytest.skip("golden cases not available")

    def walk(o: Any):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("schema", "argSchema"):
                    yield k, v, o
                else:
                    yield from walk(v)
        elif isinstance(o, list):
            for v in o:
                yield from walk(v)

    for f in sorted(GOLDEN.glob("*/expected.json")):
        yield from ((f.parent.name,) + t for t in walk(json.loads(f.read_text())))


def test_golden_schemas_round_trip() -> None:
    n = 0
    for case, _, sch, _ in _walk_golden("schema"):
        back = Schema.from_json(sch).to_json()
        assert back == sch, case
        assert json.dumps(back) == json.dumps(sch), case  # same key order
        n += 1
    assert n > 1000


def test_golden_schemas_are_compatible_with_themselves() -> None:
    for case, _, sch, _ in _walk_golden("schema"):
        s = Schema.from_json(sch)
        assert validate(U(s), s) == [], case
        assert validate(U(Schema.from_json(sch)), s) == [], case


def test_golden_literal_schemas_are_of_value() -> None:
    n = 0
    for case, key, sch, expr in _walk_golden("schema"):
        # (in builtin-final an overridden final value keeps the base's schema)
        if key == "schema" and "literal" in expr and case != "builtin-final":
            assert of_value(K(expr["literal"])).to_json() == sch, case
            n += 1
    assert n > 100


def test_golden_of_value_of_objects() -> None:
    exp = golden("schema")
    arg = exp["eval"]["exprs"]["source"]["builtin"]["arg"]
    got = of_value(K(exp["evalJSONRevealed"]["source"])).to_json()
    assert got == arg["schema"]
    assert json.dumps(got) == json.dumps(arg["schema"])


# -- schema structure ------------------------------------------------------------------------


def test_constructors() -> None:
    assert S.string().to_json() == {"type": "string"}
    assert S.number().to_json() == {"type": "number"}
    assert S.boolean().to_json() == {"type": "boolean"}
    assert S.null().to_json() == {"type": "null"}
    assert S.array().to_json() == {"items": True, "type": "array"}
    assert S.array(S.string()).to_json() == {"items": {"type": "string"}, "type": "array"}
    assert S.tuple_(S.string(), S.number()).to_json() == {
        "prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"}
    assert json.dumps(S.record({"b": S.string(), "a": S.number()}).to_json()) == json.dumps(
        {"properties": {"b": {"type": "string"}, "a": {"type": "number"}}, "type": "object", "required": ["a", "b"]})
    assert S.record({"a": ALWAYS}, required=[], additional=NEVER).to_json() == {
        "properties": {"a": True}, "additionalProperties": False, "type": "object"}
    assert S.map_of(ALWAYS).to_json() == {"additionalProperties": True, "type": "object"}
    assert S.any_of(S.string(), S.number()).to_json() == {
        "anyOf": [{"type": "string"}, {"type": "number"}], "type": ""}
    assert S.one_of(S.string()).to_json() == {"oneOf": [{"type": "string"}], "type": ""}
    assert ALWAYS.to_json() is True and NEVER.to_json() is False
    assert Schema.from_json(True) is ALWAYS and Schema.from_json(False) is NEVER


def test_immutable() -> None:
    s = S.string()
    with pytest.raises(AttributeError):
        s.type = "number"  # type: ignore[misc]
    j = Schema.from_json({"type": "array", "const": [1]})
    out = j.to_json()
    out["const"].append(2)
    assert j.to_json() == {"type": "array", "const": [1]}


def test_from_json_rejects_malformed() -> None:
    for bad in ["string", 1, None, {"type": 1}, {"properties": []}, {"items": "x"}, {"minLength": -1},
                {"required": "a"}, {"multipleOf": "2"}]:
        with pytest.raises(ValueError):
            Schema.from_json(bad)  # type: ignore[arg-type]


def test_annotations_and_unknown_keywords_are_kept() -> None:
    j = {"properties": {"a": {"type": "string", "secret": True}}, "type": "object", "required": ["a"],
         "rotateOnly": ["a"], "title": "T", "description": "D", "default": {"a": "x"}, "x-custom": [1]}
    s = Schema.from_json(j)
    assert s.to_json() == j
    assert list(s.to_json()) == ["properties", "type", "required", "rotateOnly", "title", "description",
                                 "default", "x-custom"]
    assert s.get("rotateOnly") == ["a"] and s.get("x-custom") == [1] and s.get("nope", 3) == 3
    assert s.property("a").get("secret") is True


def test_types() -> None:
    assert ALWAYS.types() == frozenset({"null", "boolean", "number", "string", "array", "object"})
    assert NEVER.types() == frozenset()
    assert S.string().types() == {"string"}
    assert S.any_of(S.string(), S.number()).types() == {"string", "number"}
    assert Schema.from_json({"const": [1]}).types() == {"array"}
    assert Schema.from_json({"enum": [1, "a"]}).types() == {"number", "string"}
    assert Schema.from_json({"type": "integer"}).types() == {"number"}
    assert Schema.from_json({"description": "x"}).types() == ALWAYS.types()
    ref = Schema.from_json({"$defs": {"r": {"type": "object"}}, "properties": {"x": {"$ref": "#/$defs/r"}}})
    assert ref.property("x").types() == {"object"}


def test_property_and_item() -> None:
    rec = S.record({"foo": S.string()})
    assert rec.property("foo") is S.string()
    assert rec.property("bar") is ALWAYS
    assert S.map_of(S.number()).property("x") is S.number()
    assert S.record({}, required=[], additional=NEVER).property("x") is NEVER
    assert S.string().property("x") is NEVER
    assert ALWAYS.property("x") is ALWAYS and NEVER.property("x") is NEVER
    u = S.any_of(S.record({"a": S.string()}), S.record({"a": S.number()}), S.string())
    assert u.property("a").to_json() == {"anyOf": [{"type": "string"}, {"type": "number"}], "type": ""}
    assert S.any_of(S.record({"a": S.string()}), S.map_of(ALWAYS)).property("a") is ALWAYS
    assert S.any_of(S.string(), S.number()).property("a") is NEVER

    tup = S.tuple_(S.string(), S.number())
    assert tup.item(0) is S.string() and tup.item(1) is S.number() and tup.item(2) is NEVER
    assert S.array(S.boolean()).item(7) is S.boolean()
    assert S.array().item(0) is ALWAYS
    assert S.string().item(0) is NEVER
    assert tup.item(-1) is NEVER
    rec_ref = Schema.from_json({"$defs": {"d": {"properties": {"baz": {"type": "string", "const": "qux"}},
                                                "type": "object", "required": ["baz"]}},
                                "properties": {"ref": {"$ref": "#/$defs/d", "type": ""}}, "type": "object"})
    assert rec_ref.property("ref").property("baz").to_json() == {"type": "string", "const": "qux"}
    # a property schema taken out of its document still resolves against it
    assert rec_ref.property("ref").ref_target() is not None


def test_of_value() -> None:
    assert of_value(K(None)).to_json() == {"type": "null"}
    assert of_value(K(True)).to_json() == {"type": "boolean", "const": True}
    assert of_value(K(1.5)).to_json() == {"type": "number", "const": 1.5}
    assert of_value(K("foo")).to_json() == {"type": "string", "const": "foo"}
    assert of_value(K([])).to_json() == {"items": False, "type": "array"}
    assert of_value(K({})).to_json() == {"type": "object"}
    assert json.dumps(of_value(K({"b": [1], "a": {}})).to_json()) == json.dumps({
        "properties": {"a": {"type": "object"},
                       "b": {"prefixItems": [{"type": "number", "const": 1}], "items": False, "type": "array"}},
        "type": "object", "required": ["a", "b"]})
    s = S.record({"x": S.string()})
    assert of_value(U(s)) is s and of_value(U()) is ALWAYS
    assert of_value(V({"u": U(s)})).to_json() == {"properties": {"u": s.to_json()}, "type": "object",
                                                  "required": ["u"]}


# -- depth and performance ---------------------------------------------------------------------


def _deep(depth: int, leaf: Any) -> V:
    v = K(leaf)
    for i in range(depth):
        v = V({"a": v}) if i % 2 else V([v])
    return v


def _deep_schema(depth: int, leaf: Schema) -> Schema:
    s = leaf
    for i in range(depth):
        s = S.record({"a": s}) if i % 2 else S.tuple_(s)
    return s


def test_deep_documents_do_not_recurse() -> None:
    depth = 5000
    v = _deep(depth, 1)
    sch = _deep_schema(depth, S.string())
    errs = validate(v, sch)
    assert [e.message for e in errs] == ["expected string, got number"]
    vs = of_value(v)
    j = vs.to_json()
    back = Schema.from_json(j)
    assert validate(v, back) == []
    assert validate(v, vs) == []
    assert validate(U(vs), sch)[0].message.endswith("expected string, got number")
    assert msgs(v, S.array(S.array())) == ["expected array, got object"]



# -- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_a_value_matches_its_own_schema(x: Any) -> None:
    v = K(x)
    s = of_value(v)
    assert validate(v, s) == []
    assert validate(U(s), s) == []
    j = s.to_json()
    assert Schema.from_json(j).to_json() == j
    assert Schema.from_json(j).types() == s.types()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, json_values)
def test_const_schema_matches_exactly_equal_values(x: Any, y: Any) -> None:
    s = Schema.from_json({"const": x})
    errs = validate(K(y), s)
    same = json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)
    assert (errs == []) == same or _numbers_equal(x, y)


def _numbers_equal(x: Any, y: Any) -> bool:
    # 1 and 1.0 are equal values with different JSON text.
    def norm(z: Any) -> Any:
        if isinstance(z, bool) or z is None or isinstance(z, str):
            return (type(z).__name__, z)
        if isinstance(z, (int, float)):
            return ("n", float(z))
        if isinstance(z, list):
            return ("l", tuple(norm(e) for e in z))
        return ("d", tuple(sorted((k, norm(e)) for k, e in z.items())))

    return norm(x) == norm(y)
