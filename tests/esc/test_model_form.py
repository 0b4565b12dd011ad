"""The spellings of the detailed model (:mod:`esc_pulumi.esc.model_form`), checked on every
model of the golden data: Go's encoder order, and the API's form and back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_pulumi.esc.model_form import from_api, to_api, to_go
from esc_pulumi.esc.values import go_json

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"
MODELS = [
    pytest.param(case.name, key, id=f"{case.name}-{key}")
    for case in sorted(GOLDEN.iterdir()) if (case / "expected.json").is_file()
    for key in ("check", "eval", "rotate") if key in json.loads((case / "expected.json").read_text())
]


def _load(case: str, key: str) -> dict:
    return json.loads((GOLDEN / case / "expected.json").read_text())[key]


def _go_text(data: dict) -> str:
    """The expected data as written (Go's own output): key order kept, Go's escapes."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def test_the_golden_models_are_here() -> None:
    assert len(MODELS) >= 60


@pytest.mark.parametrize("case,key", MODELS)
def test_go_order_is_the_references(case: str, key: str) -> None:
    model = _load(case, key)
    # Shuffle every dict's order: to_go must restore Go's field order by itself.
    shuffled = json.loads(json.dumps(model, sort_keys=True))
    assert go_json(to_go(shuffled)) == _go_text(model)


@pytest.mark.parametrize("case,key", MODELS)
def test_api_form_and_back(case: str, key: str) -> None:
    model = _load(case, key)
    api = to_api(model)
    text = json.dumps(api)
    assert from_api(json.loads(text)) == model
    # Every range has its environment, every accessor a key, every access is a list.
    stack = [api]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if "begin" in x and "end" in x and isinstance(x["begin"], dict) and "line" in x["begin"]:
                assert "environment" in x
            if "range" in x and ("index" in x or "key" in x):
                assert isinstance(x["key"], str)
            if "access" in x:
                assert isinstance(x["access"], list)
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def test_value_part_alone() -> None:
    value = {"trace": {"def": {"environment": "", "begin": {"byte": 0, "column": 0, "line": 0},
                               "end": {"byte": 0, "column": 0, "line": 0}}}, "value": "x"}
    assert go_json(to_go(value, "Value")) == (
        '{"value":"x","trace":{"def":{"begin":{"line":0,"column":0,"byte":0},"end":{"line":0,"column":0,"byte":0}}}}')
