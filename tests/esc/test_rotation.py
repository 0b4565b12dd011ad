"""Rotate mode (spec section 4): which calls rotate, what rotators see, rotateOnly inputs,
failures, patches. The golden rotate* cases run in tests/golden; these are the rules around them."""
from __future__ import annotations

import textwrap
from typing import Any, Mapping

import pytest

from esc_pulumi.esc import (
    EvalLimits,
    LimitDiagnostic,
    LoadedEnvironment,
    LoadError,
    ProviderError,
    ProviderRegistry,
    Rotator,
    Value,
    evaluate,
    load_definition,
    rotate,
    schema as S,
    to_plain,
)
from esc_pulumi.esc.rotation import format_rotate_path, parse_rotate_path, patch_json, rotate_sites


class Swap(Rotator):
    state_schema = S.record({"a": S.string(), "b": S.string()}, required=["a", "b"])

    def __init__(self) -> None:
        self.rotated: list[Any] = []

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state if state.repr is not None else {}

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        self.rotated.append(to_plain(state))
        return {"a": state.repr["b"], "b": state.repr["a"]}


class Managed(Rotator):
    """Needs the rotateOnly input ``admin`` to rotate; ``host`` is an ordinary input."""

    input_schema = S.Schema.from_json(
        {
            "type": "object",
            "properties": {"admin": {"type": "string"}, "host": {"type": "string"}},
            "required": ["admin", "host"],
            "rotateOnly": ["admin"],
        }
    )

    def __init__(self) -> None:
        self.opened_with: list[Any] = []
        self.rotated_with: list[Any] = []

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        self.opened_with.append(to_plain(inputs))
        return {"host": inputs.repr["host"], "gen": (state.repr or {}).get("gen", Value(0))}

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        self.rotated_with.append(to_plain(inputs))
        gen = (state.repr or {}).get("gen")
        return {"gen": (gen.repr if gen is not None else 0) + 1}


class Boom(Rotator):
    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        raise ProviderError("the admin API refused the rotation")


class SecretToken(Rotator):
    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return {"token": Value("new-secret-token-Z1Q", secret=True), "serial": 2}


class Loader:
    def __init__(self, envs: dict[str, str]) -> None:
        self.envs = envs
        self.calls: list[str] = []

    def load(self, name: str) -> LoadedEnvironment:
        self.calls.append(name)
        if name not in self.envs:
            raise LoadError(f"environment {name} not found")
        return LoadedEnvironment(text=textwrap.dedent(self.envs[name]))


def registry(**rotators: Rotator) -> ProviderRegistry:
    return ProviderRegistry(rotators=rotators, entry_points=False)


def decl_of(text: str, name: str = "root"):
    decl, diags = load_definition(textwrap.dedent(text), name)
    assert decl is not None and not diags, diags
    return decl


SWAPS = """
values:
  a:
    fn::rotate::swap: {inputs: {}, state: {a: a1, b: b1}}
  group:
    inner:
      fn::rotate:
        provider: swap
        inputs: {}
        state: {a: a2, b: b2}
  list:
    - fn::rotate::swap: {inputs: {}, state: {a: a3, b: b3}}
  "odd key":
    fn::rotate::swap: {inputs: {}, state: {a: a4, b: b4}}
  ref: ${a.a}-${group.inner.b}
"""


def test_rotates_every_call_by_default_and_reevaluates_with_the_new_states() -> None:
    swap = Swap()
    result = rotate(decl_of(SWAPS), providers=registry(swap=swap))
    assert result.diagnostics == [] and not result.failed
    assert [p.doc_path for p in result.patches] == [
        'values.a["fn::rotate::swap"].state',
        'values.group.inner["fn::rotate"].state',
        'values.list[0]["fn::rotate::swap"].state',
        'values["odd key"]["fn::rotate::swap"].state',
    ]
    assert [p.path for p in result.patches] == [("a",), ("group", "inner"), ("list", 0), ("odd key",)]
    assert result.patches[1].keys == ("values", "group", "inner", "fn::rotate", "state")
    assert [to_plain(p.replacement) for p in result.patches] == [
        {"a": "b1", "b": "a1"}, {"a": "b2", "b": "a2"}, {"a": "b3", "b": "a3"}, {"a": "b4", "b": "a4"},
    ]
    plain = to_plain(result.value)
    assert plain["a"] == {"a": "b1", "b": "a1"} and plain["list"] == [{"a": "b3", "b": "a3"}]
    assert plain["ref"] == "b1-a2"  # references see the rotated values
    # open mode runs no rotation
    swap.rotated.clear()
    opened, _ = evaluate(decl_of(SWAPS), mode="open", providers=registry(swap=swap))
    assert swap.rotated == [] and to_plain(opened)["ref"] == "a1-b2"


@pytest.mark.parametrize(
    "paths, rotated",
    [
        (["group.inner"], [("group", "inner")]),
        (['["odd key"]', "list[0]"], [("list", 0), ("odd key",)]),
        ([("group", "inner"), ("a",)], [("a",), ("group", "inner")]),
        (["group"], []),  # a path selects the call at exactly that path, not those below it
        (["group.inner.a"], []),
        (["nowhere"], []),
        ([], [("a",), ("group", "inner"), ("list", 0), ("odd key",)]),  # empty: all, as None
    ],
)
def test_rotate_paths_select_exact_calls(paths: list, rotated: list) -> None:
    swap = Swap()
    result = rotate(decl_of(SWAPS), providers=registry(swap=swap), paths=paths)
    assert [p.path for p in result.patches] == rotated
    assert len(swap.rotated) == len(rotated)  # unselected rotators are not called
    plain = to_plain(result.value)
    if ("group", "inner") not in rotated:
        assert plain["group"]["inner"] == {"a": "a2", "b": "b2"}  # opened with its old state


def test_rotate_paths_are_checked_before_anything_runs() -> None:
    swap = Swap()
    with pytest.raises(ValueError, match="invalid rotate path"):
        rotate(decl_of(SWAPS), providers=registry(swap=swap), paths=["a", "b["])
    with pytest.raises(ValueError):
        rotate(decl_of(SWAPS), providers=registry(swap=swap), paths=[("a", True)])
    with pytest.raises(ValueError, match="mode='rotate'"):
        evaluate(decl_of(SWAPS), mode="open", providers=registry(swap=swap), rotate_paths=["a"])
    assert swap.rotated == []


def test_parse_and_format_rotate_paths() -> None:
    assert parse_rotate_path('examples.deeply.nested[0]["quoted \\"property\\""].path') == (
        "examples", "deeply", "nested", 0, 'quoted "property"', "path",
    )
    assert parse_rotate_path('examples.embedded-in-another-fn["fn::open::test"].some-input') == (
        "examples", "embedded-in-another-fn", "fn::open::test", "some-input",
    )
    for keys in [("a", "b-c", 0, 'q"x'), ("fn::open::x",)]:
        assert parse_rotate_path(format_rotate_path(keys)) == keys
    with pytest.raises(ValueError):
        parse_rotate_path("")


def test_rotate_sites_name_calls_inside_other_calls() -> None:
    decl = decl_of(
        """
        values:
          out:
            fn::open::test:
              inner:
                fn::rotate::swap: {inputs: {}, state: {a: x, b: y}}
          plain: {fn::rotate::swap: {inputs: {}}}
        """
    )
    assert list(rotate_sites(decl)) == [("out", "fn::open::test", "inner"), ("plain",)]


MANAGED = """
imports:
  - shared/imported
values:
  db:
    fn::rotate::managed:
      inputs:
        admin: ${environments.mgmt.creds.admin}
        host: db.internal
      state: {gen: 1}
"""
ENVS = {
    "mgmt/creds": "values: {admin: root-login}\n",
    "shared/imported": """
        values:
          cache:
            fn::rotate::managed:
              inputs:
                admin: ${environments.mgmt.other.admin}
                host: cache.internal
              state: {gen: 7}
        """,
    "mgmt/other": "values: {admin: other-login}\n",
}


def test_rotate_only_inputs_are_evaluated_only_when_rotating_or_checking_the_root() -> None:
    decl = decl_of(MANAGED)
    m = Managed()
    # open: the managing credentials are never reached, nor given to open_state
    loader = Loader(ENVS)
    value, diags = evaluate(decl, mode="open", loader=loader, providers=registry(managed=m))
    assert diags == []
    assert "mgmt/creds" not in loader.calls and "mgmt/other" not in loader.calls
    assert m.opened_with == [{"host": "cache.internal"}, {"host": "db.internal"}]
    assert to_plain(value) == {"cache": {"host": "cache.internal", "gen": 7}, "db": {"host": "db.internal", "gen": 1}}
    # check: the root's are reached (whoever manages it must be able to), an import's are not
    loader = Loader(ENVS)
    _, diags = evaluate(decl, mode="check", loader=loader, providers=registry(managed=Managed()))
    assert diags == [] and "mgmt/creds" in loader.calls and "mgmt/other" not in loader.calls
    # rotate: the root's call gets them; the import is evaluated as in open mode
    m = Managed()
    loader = Loader(ENVS)
    result = rotate(decl, loader=loader, providers=registry(managed=m))
    assert result.diagnostics == []
    assert "mgmt/other" not in loader.calls
    assert m.rotated_with == [{"admin": "root-login", "host": "db.internal"}]
    assert {"admin": "root-login", "host": "db.internal"} not in m.opened_with  # open never sees them
    assert [to_plain(p.replacement) for p in result.patches] == [{"gen": 2}]
    assert to_plain(result.value)["db"] == {"host": "db.internal", "gen": 2}
    assert to_plain(result.value)["cache"]["gen"] == 7  # imports are never rotated from here


def test_an_unreachable_rotate_only_input_fails_the_rotation_not_the_open() -> None:
    decl = decl_of(MANAGED)
    envs = {k: v for k, v in ENVS.items() if k != "mgmt/creds"}
    value, diags = evaluate(decl, mode="open", loader=Loader(envs), providers=registry(managed=Managed()))
    assert diags == [] and to_plain(value)["db"]["gen"] == 1
    m = Managed()
    result = rotate(decl, loader=Loader(envs), providers=registry(managed=m))
    assert [d.summary for d in result.diagnostics] == ["environment mgmt/creds not found"]
    assert result.diagnostics[0].path == 'values.db["fn::rotate::managed"].inputs.admin'
    assert result.failed and result.patches == [] and m.rotated_with == []
    assert to_plain(result.value)["db"] == "[unknown]"
    # with the call not selected, its managing credentials are not needed
    result = rotate(decl, loader=Loader(envs), providers=registry(managed=Managed()), paths=["elsewhere"])
    assert result.diagnostics == [] and to_plain(result.value)["db"]["gen"] == 1


class Shaped(Managed):
    """What it opens (host and gen, always) is not its state (gen alone)."""

    state_schema = S.record({"gen": S.number()}, required=["gen"])
    output_schema = S.record({"host": S.string(), "gen": S.number()}, required=["host", "gen"])


def test_an_unknown_rotated_value_has_the_schema_of_what_it_stands_for() -> None:
    # Not consulted (check mode, failed arguments), the value stands for the state it would
    # open with; unknown for want of inputs (an import's skipped rotateOnly ones), for what the
    # rotator would open.
    decl = decl_of(MANAGED)
    state, output = Shaped.state_schema.to_json(), Shaped.output_schema.to_json()
    value, diags = evaluate(decl, mode="check", loader=Loader(ENVS), providers=registry(managed=Shaped()))
    assert diags == []
    db, cache = value.repr["db"], value.repr["cache"]
    assert db.unknown and db.schema.to_json() == state
    assert cache.unknown and cache.schema.to_json() == output
    envs = {k: v for k, v in ENVS.items() if k != "mgmt/creds"}
    m = Shaped()
    result = rotate(decl, loader=Loader(envs), providers=registry(managed=m))
    assert result.failed and m.rotated_with == []
    db = result.value.repr["db"]
    assert db.unknown and db.schema.to_json() == state
    # Opened, the import is known whatever its skipped inputs.
    value, diags = evaluate(decl, mode="open", loader=Loader(ENVS), providers=registry(managed=Shaped()))
    assert diags == [] and to_plain(value)["cache"] == {"host": "cache.internal", "gen": 7}


def test_rotate_only_inputs_are_still_type_checked_when_rotating() -> None:
    decl = decl_of(
        """
        values:
          db:
            fn::rotate::managed: {inputs: {host: h}, state: {gen: 1}}
        """
    )
    value, diags = evaluate(decl, mode="open", providers=registry(managed=Managed()))
    assert diags == [] and to_plain(value)["db"]["gen"] == 1  # admin is not needed to open
    result = rotate(decl, providers=registry(managed=Managed()))
    assert [d.summary for d in result.diagnostics] == ["missing required properties: admin"]
    assert result.patches == []


def test_a_failing_rotator_gives_a_diagnostic_and_no_patch() -> None:
    decl = decl_of(
        """
        values:
          broken:
            fn::rotate::boom: {inputs: {}, state: {x: 1}}
          fine:
            fn::rotate::swap: {inputs: {}, state: {a: a, b: b}}
          uses: ${broken.x}
        """
    )
    result = rotate(decl, providers=registry(boom=Boom(), swap=Swap()))
    assert [(d.summary, d.path, d.is_error) for d in result.diagnostics] == [
        ("the admin API refused the rotation", "values.broken", True)
    ]
    assert result.diagnostics[0].range is not None and result.diagnostics[0].range.begin.line == 4
    assert result.failed
    assert [p.path for p in result.patches] == [("fine",)]  # the others still rotate, as the reference
    plain = to_plain(result.value)
    assert plain["broken"] == "[unknown]" and plain["uses"] == "[unknown]"
    # opening is unaffected
    value, diags = evaluate(decl, providers=registry(boom=Boom(), swap=Swap()))
    assert diags == [] and to_plain(value)["broken"] == {"x": 1}


def test_state_is_optional_and_checked_when_given() -> None:
    swap = Swap()
    decl = decl_of(
        """
        values:
          none: {fn::rotate::swap: {inputs: {}}}
          "null": {fn::rotate::swap: {inputs: {}, state: null}}
          bad: {fn::rotate::swap: {inputs: {}, state: {a: 1}}}
        """
    )
    value, diags = evaluate(decl, providers=registry(swap=swap))
    assert to_plain(value) == {"bad": "[unknown]", "none": {}, "null": {}}
    assert sorted(d.summary for d in diags) == [
        "exactly one subschema must match",
        "expected null, got object",
        "expected string, got number",
        "missing required properties: b",
    ]
    assert {d.path for d in diags} <= {'values.bad["fn::rotate::swap"].state', 'values.bad["fn::rotate::swap"].state.a'}


def test_unknown_rotator() -> None:
    decl = decl_of("values:\n  x:\n    fn::rotate::nope: {inputs: {}}\n")
    for mode in ("check", "open", "rotate"):
        value, diags = evaluate(decl, mode=mode, providers=registry())  # type: ignore[arg-type]
        assert [d.summary for d in diags] == ['unknown rotator "nope"'] and to_plain(value) == {"x": "[unknown]"}


def test_a_secret_new_state_stays_secret_and_is_never_shown() -> None:
    decl = decl_of("values:\n  t:\n    fn::rotate::tok: {inputs: {}, state: {token: old, serial: 1}}\n  ref: ${t.token}\n")
    result = rotate(decl, providers=registry(tok=SecretToken()))
    assert to_plain(result.value, redact=True) == {"t": {"token": "[secret]", "serial": 2}, "ref": "[secret]"}
    (patch,) = result.patches
    assert patch.replacement.repr["token"].secret and not patch.replacement.repr["serial"].secret
    for shown in (repr(result), repr(patch), str(patch), repr(patch.replacement), str(patch_json(patch))):
        assert "new-secret-token-Z1Q" not in shown
    assert patch_json(patch)["Replacement"]["value"]["token"] == {
        "value": "[secret]", "secret": True, "trace": {"def": {"begin": {"line": 0, "column": 0, "byte": 0},
                                                               "end": {"line": 0, "column": 0, "byte": 0}}},
    }
    assert patch_json(patch, redact=False)["Replacement"]["value"]["token"]["value"] == "new-secret-token-Z1Q"


def test_a_secret_rotator_makes_its_whole_state_secret() -> None:
    class Whole(SecretToken):
        secret = True

    result = rotate(decl_of("values:\n  t: {fn::rotate::w: {inputs: {}}}\n"), providers=registry(w=Whole()))
    (patch,) = result.patches
    assert patch.replacement.secret and all(v.secret for v in patch.replacement.repr.values())
    assert to_plain(result.value, redact=True) == {"t": "[secret]"}


def test_no_patch_when_the_evaluation_goes_over_a_limit() -> None:
    decl = decl_of(
        """
        values:
          a: {fn::rotate::swap: {inputs: {}, state: {a: x, b: y}}}
          big: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
          more: ${big}
        """
    )
    result = rotate(decl, providers=registry(swap=Swap()), limits=EvalLimits(max_nodes=30))
    assert isinstance(result.diagnostics[-1], LimitDiagnostic)
    assert result.patches == [] and result.failed


def test_patches_go_to_the_given_list_from_evaluate() -> None:
    patches: list = []
    value, diags = evaluate(decl_of(SWAPS), mode="rotate", providers=registry(swap=Swap()),
                            rotate_paths=["a"], patches=patches)
    assert diags == [] and [p.path for p in patches] == [("a",)]
    assert to_plain(value)["a"] == {"a": "b1", "b": "a1"}
