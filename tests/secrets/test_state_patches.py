"""esc_pulumi.secrets.definitions.apply_state_patches: new rotation states written into a
definition in place; whatever is written reads back as the new state, secrets secret."""
from __future__ import annotations

import textwrap
from typing import Any, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esc_pulumi.errors import DefinitionError
from esc_pulumi.esc import ProviderRegistry, Rotator, Value, evaluate, load_definition, rotate, to_plain
from esc_pulumi.esc.interpolation import has_interpolation
from esc_pulumi.esc.rotation import Patch
from esc_pulumi.esc.values import from_plain, walk
from esc_pulumi.secrets.crypto import AesGcmCipher
from esc_pulumi.secrets.definitions import apply_state_patches, uses_ciphertexts

CIPHER = AesGcmCipher(bytes(range(32)))
KEYS = ("values", "svc", "fn::rotate::r", "state")


class Echo(Rotator):
    """Opens as its state (secret flags kept); rotating returns the state given to the test."""

    def __init__(self, new_state: Any = None) -> None:
        self.new_state = new_state

    def open_state(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return state

    def rotate(self, inputs: Value, state: Value, context: Mapping[str, Any]) -> Any:
        return self.new_state


def registry(new_state: Any = None) -> ProviderRegistry:
    return ProviderRegistry(rotators={"r": Echo(new_state)}, entry_points=False)


def patch(state: Value, keys: tuple = KEYS) -> Patch:
    return Patch(keys, "values.svc[...].state", keys[1:-2], state)


def opened(text: str) -> Value:
    decl, diags = load_definition(text, "t")
    assert decl is not None and not [d for d in diags if d.is_error], diags
    value, diags = evaluate(decl, providers=registry(), decrypter=CIPHER.decrypt)
    assert not [d for d in diags if d.is_error], [d.summary for d in diags]
    return value


def secret_leaves(v: Value, path: tuple = ()) -> set[tuple]:
    """Paths of the secret scalars and empty collections (containers carry no secrecy of
    their own once written: their contents do)."""
    out: set[tuple] = set()
    stack = [(v, path)]
    while stack:
        x, p = stack.pop()
        r = x.repr
        if type(r) is dict and r:
            stack.extend((c, p + (k,)) for k, c in r.items())
        elif type(r) is list and r:
            stack.extend((c, p + (i,)) for i, c in enumerate(r))
        elif x.secret:
            out.add(p)
    return out


def test_block_state_rewritten_value_by_value_keeping_comments() -> None:
    text = textwrap.dedent(
        """\
        # keep-me
        values:
          svc:
            fn::rotate::r:
              inputs: {}   # no inputs
              state:
                gen: 1     # generation
                # the password
                password:
                  fn::secret: old-pw
          after: 2
        """
    )
    new = from_plain({"gen": 2, "password": Value("new-pw", secret=True), "added": "x y"})
    assert apply_state_patches(text, [patch(new)]) == textwrap.dedent(
        """\
        # keep-me
        values:
          svc:
            fn::rotate::r:
              inputs: {}   # no inputs
              state:
                gen: 2     # generation
                # the password
                password:
                  fn::secret: new-pw
                added: x y
          after: 2
        """
    )


def test_a_missing_state_is_added_after_the_last_entry() -> None:
    text = "values:\n  svc:\n    fn::rotate::r:\n      inputs:\n        k: v   # trailing\n  after: 2\n"
    new = from_plain({"current": "a", "list": [1, {"x": None}], "empty": {}})
    assert apply_state_patches(text, [patch(new)]) == (
        "values:\n  svc:\n    fn::rotate::r:\n      inputs:\n        k: v   # trailing\n"
        "      state:\n        current: a\n        list:\n          - 1\n          - x: null\n        empty: {}\n"
        "  after: 2\n"
    )
    # at the end of a file without a final newline
    assert apply_state_patches(text[: text.index("  after")].rstrip("\n"), [patch(from_plain({"a": 1}))]).endswith(
        "        k: v   # trailing\n      state:\n        a: 1"
    )


def test_flow_styles_are_kept() -> None:
    text = "values:\n  svc: {fn::rotate::r: {inputs: {}}}  # flow\n  other: {fn::rotate::r: {inputs: {}, state: {a: [1, 2]}}}\n"
    p2 = patch(from_plain({"a": [3, 4], "b": "c"}), ("values", "other", "fn::rotate::r", "state"))
    assert apply_state_patches(text, [patch(from_plain({"a": {"b": "c"}})), p2]) == (
        "values:\n  svc: {fn::rotate::r: {inputs: {}, state: {a: {b: c}}}}  # flow\n"
        "  other: {fn::rotate::r: {inputs: {}, state: {a: [3, 4], b: c}}}\n"
    )


def test_a_scalar_or_empty_state_becomes_a_block() -> None:
    for old in ("state: null  # none yet", "state:", "state: ~"):
        text = f"values:\n  svc:\n    fn::rotate::r:\n      inputs: {{}}\n      {old}\n"
        got = apply_state_patches(text, [patch(from_plain({"a": "b"}))])
        assert got.startswith("values:\n  svc:\n    fn::rotate::r:\n      inputs: {}\n      state:\n        a: b")
        assert to_plain(opened(got)) == {"svc": {"a": "b"}}


def test_a_dropped_key_replaces_the_mapping_whole() -> None:
    text = "values:\n  svc:\n    fn::rotate::r:\n      inputs: {}\n      state:\n        a: 1 # x\n        b: 2\n  z: 1\n"
    got = apply_state_patches(text, [patch(from_plain({"b": 3}))])
    assert got == "values:\n  svc:\n    fn::rotate::r:\n      inputs: {}\n      state:\n        b: 3\n  z: 1\n"


def test_secrets_are_encrypted_with_the_given_key() -> None:
    text = "values:\n  svc:\n    fn::rotate::r:\n      inputs: {}\n      state: {token: {fn::secret: {ciphertext: AAAA}}}\n"
    new = from_plain({"token": Value("tok-N3W-P4X", secret=True), "n": Value(7, secret=True),
                      "plain": "visible"})
    got = apply_state_patches(text, [patch(new)], CIPHER.encrypt)
    assert "tok-N3W-P4X" not in got and got.count("ciphertext:") == 2 and "visible" in got
    value = opened(got)
    assert to_plain(value) == {"svc": {"token": "tok-N3W-P4X", "n": 7, "plain": "visible"}}
    assert secret_leaves(value) == {("svc", "token"), ("svc", "n")}
    assert uses_ciphertexts(got) and not uses_ciphertexts("values: {a: {fn::secret: x}}\n")


def test_crlf_and_case_insensitive_values_key() -> None:
    text = "Values:\r\n  svc:\r\n    fn::rotate::r:\r\n      inputs: {}\r\n  z: 1\r\n"
    got = apply_state_patches(text, [patch(from_plain({"a": {"b": 1}}))])
    assert got == "Values:\r\n  svc:\r\n    fn::rotate::r:\r\n      inputs: {}\r\n      state:\r\n        a:\r\n          b: 1\r\n  z: 1\r\n"


def test_what_cannot_be_written_fails_without_showing_values() -> None:
    text = "values:\n  svc:\n    fn::rotate::r:\n      inputs: {}\n"
    for bad in ({"fn::secret": "hunter2-V9"}, {"${x}": "hunter2-V9"}):
        with pytest.raises(DefinitionError) as e:
            apply_state_patches(text, [patch(from_plain(bad))])
        assert "hunter2-V9" not in str(e.value) and "cannot be written" in str(e.value)
    with pytest.raises(DefinitionError, match="no such call"):
        apply_state_patches(text, [patch(from_plain({}), ("values", "nope", "fn::rotate::r", "state"))])
    with pytest.raises(DefinitionError, match="unknown"):
        apply_state_patches(text, [patch(Value(None, unknown=True))])


def test_golden_rotations_read_back_as_rotated() -> None:
    """Writing the golden rotate cases' patches back gives definitions that open as rotated."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.golden.run_case import CONTEXT, CaseLoader, registry as golden_registry, rot128

    golden = Path(__file__).resolve().parents[3] / "shared" / "esc-golden"
    for case in ("rotate", "rotate-paths"):
        text = (golden / case / "env.yaml").read_text()
        common = dict(providers=golden_registry(), loader=CaseLoader(golden / case), decrypter=rot128, context=CONTEXT)
        decl, _ = load_definition(text, case)
        result = rotate(decl, **common)
        assert result.patches
        new_decl, _ = load_definition(apply_state_patches(text, result.patches), case)
        value, _ = evaluate(new_decl, **common)
        assert to_plain(value) == to_plain(result.value)


# -- the property: any new state, over any old layout, reads back as itself -------------------

LAYOUTS = [
    # (definition with {S} where the call's argument entries go, indentation of the entries)
    "# keep-me\nvalues:\n  before: 1\n  svc:\n    fn::rotate::r:\n      inputs: {{}}   # c\n{S}  after: ${{before}}\n",
    "values:\n  svc: {{fn::rotate::r: {{inputs: {{}}{F}}}}}  # keep-me\n  after: 1\n",
    "values:\n  list:\n    - x\n  svc:\n    fn::rotate::r:\n      inputs:\n        k: v # keep-me\n{S}",
]
OLD_STATES = [
    "",
    "      state:\n        a: 1   # old a\n        nested:\n          x: y\n",
    "      state: {{a: 1, nested: {{x: y}}}}\n",
    "      state: null\n",
    "      state:\n        - 1\n        - two\n",
    "      state:\n      - 1\n      - two\n",
    "      state:\n        nested:\n          - a: 1\n            b: [1]\n",
]
FLOW_OLD = ["", ", state: {{a: 1, nested: {{x: y}}}}", ", state: [1]", ", state: null"]

_key = st.text(alphabet="ab -_.:/$\"'yesnoul1é{}[]#", max_size=6).filter(
    lambda k: not k.startswith("fn::") and not has_interpolation(k)
)
_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet="ab $}{\\\"'\n:#-yesnoul1é\t", max_size=8)
)
_leaf = st.tuples(_scalar, st.booleans())  # (value, secret)
_state = st.recursive(
    _leaf | st.tuples(st.sampled_from([{}, []]), st.booleans()),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_key, c, max_size=3),
    max_leaves=8,
)


def _value(d: Any) -> Value:
    """A Value from generated data: ``(scalar, secret)`` leaves; secret ones marked."""
    if isinstance(d, tuple):
        x, secret = d
        return Value(x, secret) if not isinstance(x, (dict, list)) else Value(type(x)(), secret)
    if isinstance(d, dict):
        return Value({k: _value(c) for k, c in d.items()})
    return Value([_value(c) for c in d])


@settings(max_examples=150)
@given(
    layout=st.sampled_from(range(len(LAYOUTS))),
    old=st.integers(min_value=0, max_value=len(OLD_STATES) - 1),
    state=_state,
    encrypted=st.booleans(),
)
def test_any_state_over_any_layout_reads_back(layout: int, old: int, state: Any, encrypted: bool) -> None:
    template = LAYOUTS[layout]
    if "{F}" in template:
        text = template.format(F=FLOW_OLD[old % len(FLOW_OLD)].format())
    else:
        text = template.format(S=OLD_STATES[old].format())
    new = from_plain(_value(state))
    got = apply_state_patches(text, [patch(new)], CIPHER.encrypt if encrypted else None)
    assert "keep-me" in got
    value = opened(got)
    svc = value.repr["svc"]
    assert to_plain(svc) == to_plain(new)
    assert secret_leaves(svc) == secret_leaves(new)
    if "after" in template:
        assert to_plain(value)["after"] == 1
    if encrypted:
        for x in walk(new):
            if x.secret and isinstance(x.repr, str) and len(x.repr) >= 4:
                assert x.repr not in got
