"""Run one golden case folder of the ESC conformance format and print what the engine produced.

Usage: python tests/golden/run_case.py CASE_DIR

The set-up replicates the reference runner (see ../shared/esc-golden/README.md): the root is
named after the folder (or overrides.rootEnvironment), imports load ``<case>/<name>.yaml``,
every environment decrypts with "rot128", and the providers test, secret-wrapper, error,
schema and the rotators swap and echo are registered. ``check``, ``eval`` and ``rotate`` are
the full detailed environments (``exprs``, ``properties``, ``schema``, ``executionContext``:
:meth:`esc_pulumi.esc.Evaluation.detailed`). With ``overrides.rotate`` the case is also rotated
(``rotatePaths`` selecting the calls): rotateDiags, rotate, rotateJson and rotatePatches.
Compare with the expected data: ``python -m tests.golden.compare [CASE...]``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from esc_pulumi.esc import (
    Diagnostic,
    LoadedEnvironment,
    LoadError,
    Provider,
    ProviderError,
    ProviderRegistry,
    Rotator,
    Value,
    evaluate_environment,
    load_definition,
    rotate,
    schema as S,
)
from esc_pulumi.esc.rotation import patch_json
from esc_pulumi.esc.values import to_plain

CONTEXT = {"pulumi": {"user": {"id": "USER_123"}}}


def rot128(data: bytes) -> bytes:
    return bytes((b + 128) % 256 for b in data)


class CaseLoader:
    def __init__(self, case_dir: Path) -> None:
        self.dir = case_dir
        self.case = case_dir.name

    def load(self, name: str) -> LoadedEnvironment:
        path = self.dir / f"{name}.yaml"
        try:
            text = path.read_bytes()
        except OSError:
            raise LoadError(f"open testdata/eval/{self.case}/{name}.yaml: no such file or directory") from None
        return LoadedEnvironment(text=text, decrypter=rot128)


class TestProvider(Provider):
    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        return inputs


class SecretWrapper(TestProvider):
    secret = True


class ErrorProvider(Provider):
    input_schema = S.record({"why": S.string()}, required=["why"])

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        raise ProviderError(inputs.repr["why"].repr)


def _schema_provider_schema() -> S.Schema:
    s = S.Schema.from_json
    return s(
        {
            "$defs": {
                "defRecord": {
                    "properties": {"baz": {"type": "string", "const": "qux"}},
                    "type": "object",
                    "required": ["baz"],
                }
            },
            "properties": {
                "null": {"type": "null"},
                "boolean": {"type": "boolean"},
                "false": {"type": "boolean", "const": False},
                "true": {"type": "boolean", "const": True},
                "number": {"type": "number"},
                "pi": {"type": "number", "const": 3.14},
                "string": {"type": "string"},
                "hello": {"type": "string", "const": "hello"},
                "array": {"items": True, "type": "array"},
                "tuple": {
                    "prefixItems": [{"type": "string", "const": "hello"}, {"type": "string", "const": "world"}],
                    "items": False,
                    "type": "array",
                },
                "map": {"additionalProperties": True, "type": "object"},
                "record": {"properties": {"foo": {"type": "string"}}, "type": "object", "required": ["foo"]},
                "anyOf": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "oneOf": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "ref": {"$ref": "#/$defs/defRecord"},
                "const-array": {"type": "array", "const": ["hello", 42]},
                "const-object": {"type": "object", "const": {"hello": "world"}},
                "enum": {"type": "string", "enum": ["foo", "bar"]},
                "never": False,
                "always": True,
                "double": {"prefixItems": [{"type": "string"}, {"type": "number"}], "items": False, "type": "array"},
                "triple": {
                    "prefixItems": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
                    "items": False,
                    "type": "array",
                },
                "dependentReq": {
                    "properties": {"bar": {"type": "number"}, "foo": {"type": "string"}},
                    "type": "object",
                    "dependentRequired": {"foo": ["bar"]},
                },
                "multiple": {"type": "number", "multipleOf": 2},
                "minimum": {"type": "number", "minimum": 1},
                "exclusiveMinimum": {"type": "number", "exclusiveMinimum": 1},
                "maximum": {"type": "number", "maximum": 1},
                "exclusiveMaximum": {"type": "number", "exclusiveMaximum": 1},
                "minLength": {"type": "string", "minLength": 1},
                "maxLength": {"type": "string", "maxLength": 1},
                "pattern": {"type": "string", "pattern": "^foo[0-9]+$"},
                "minItems": {"type": "array", "minItems": 3},
                "maxItems": {"type": "array", "maxItems": 2},
                "minProperties": {"type": "object", "minProperties": 1},
                "maxProperties": {"type": "object", "maxProperties": 1},
            },
            "type": "object",
        }
    )


class SchemaProvider(TestProvider):
    input_schema = output_schema = _schema_provider_schema()


class Swap(Rotator):
    """The reference's swap: the state {a, b} opens as itself; rotating swaps a and b."""

    state_schema = S.record({"a": S.string(), "b": S.string()}, required=["a", "b"])
    output_schema = state_schema

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state if state.repr is not None else {}

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        s = state.repr if isinstance(state.repr, dict) else {}
        return {"a": s.get("b"), "b": s.get("a")}


class Echo(Rotator):
    """The reference's echo: the next state is {current: inputs.next, previous: state.current}."""

    input_schema = S.Schema.from_json(
        {"properties": {"next": {"type": "string"}}, "type": "object", "required": ["next"], "rotateOnly": ["next"]}
    )
    state_schema = S.record({"current": S.string(), "previous": S.string()}, required=["current"])
    # What it opens is a state it made: rotate always sets both.
    output_schema = S.record({"current": S.string(), "previous": S.string()}, required=["current", "previous"])

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state if state.repr is not None else {}

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        s = state.repr if isinstance(state.repr, dict) else {}
        return {"current": inputs.repr["next"], "previous": s.get("current")}


def registry() -> ProviderRegistry:
    return ProviderRegistry(
        {"test": TestProvider(), "secret-wrapper": SecretWrapper(), "error": ErrorProvider(), "schema": SchemaProvider()},
        {"swap": Swap(), "echo": Echo()},
        entry_points=False,
    )


def golden_diagnostic(d: Diagnostic) -> dict[str, Any]:
    subject = None
    if d.range is not None:
        b, e = d.range.begin, d.range.end
        subject = {
            "Filename": d.range.environment,
            "Start": {"Line": b.line, "Column": b.column, "Byte": b.byte},
            "End": {"Line": e.line, "Column": e.column, "Byte": e.byte},
        }
    return {"Severity": int(d.severity), "Summary": d.summary, "Subject": subject, "Path": d.path}


def _sort_key(d: dict[str, Any]) -> tuple:
    s = d["Subject"]
    if s is None:
        return (0, d["Summary"], "", 0, 0)
    return (1, "", s["Filename"], s["Start"]["Line"], s["Start"]["Column"])


def diagnostics(ds: list[Diagnostic]) -> list[dict[str, Any]]:
    return sorted((golden_diagnostic(d) for d in ds), key=_sort_key)


def run_case(case_dir: str | os.PathLike[str]) -> dict[str, Any]:
    case = Path(case_dir)
    overrides: dict[str, Any] = {}
    if (case / "overrides.json").exists():
        overrides = json.loads((case / "overrides.json").read_text())
    name = overrides.get("rootEnvironment") or case.name
    decl, load_diags = load_definition((case / "env.yaml").read_bytes(), name)
    out: dict[str, Any] = {"loadDiags": diagnostics(load_diags)}
    if decl is None:
        return out
    common = dict(loader=CaseLoader(case), providers=registry(), decrypter=rot128, context=CONTEXT)
    checked = evaluate_environment(decl, mode="check", show_secrets=bool(overrides.get("showSecrets")), **common)
    out["checkDiags"] = diagnostics(checked.diagnostics)
    out["check"] = checked.detailed()
    out["checkJson"] = to_plain(checked.value, redact=True)
    opened = evaluate_environment(decl, mode="open", **common)
    out["evalDiags"] = diagnostics(opened.diagnostics)
    out["eval"] = opened.detailed()
    out["evalJsonRedacted"] = to_plain(opened.value, redact=True)
    out["evalJSONRevealed"] = to_plain(opened.value, redact=False)
    if overrides.get("rotate"):
        result = rotate(decl, paths=overrides.get("rotatePaths"), **common)
        out["rotateDiags"] = diagnostics(result.diagnostics)
        rotated = result.value
        out["rotate"] = result.detailed()
        # Redacted, as checkJson is: the reference has one rotate view, not a revealed twin.
        out["rotateJson"] = to_plain(rotated, redact=True)
        out["rotatePatches"] = [patch_json(p) for p in result.patches]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: run_case.py CASE_DIR", file=sys.stderr)
        return 2
    json.dump(run_case(argv[1]), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
