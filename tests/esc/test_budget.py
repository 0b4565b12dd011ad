"""The evaluation budget (issue 10 §1): definitions of a few hundred bytes whose values, shared
by references, would expand to gigabytes are refused with a diagnostic, quickly and in bounded
memory, while honest large environments still evaluate."""
from __future__ import annotations

import base64
import gc
import tracemalloc
from typing import Any

import pytest

from esc_pulumi import esc
from esc_pulumi.esc.views import detailed

PEAK_LIMIT = 200 * 2**20  # generous: the bombs below would need gigabytes


def array_doubling(levels: int, to_json: bool = True) -> str:
    lines = ["values:", "  a0: [x, x]"]
    lines += [f"  a{i}: ['${{a{i - 1}}}', '${{a{i - 1}}}']" for i in range(1, levels + 1)]
    if to_json:
        lines.append(f"  out: {{fn::toJSON: '${{a{levels}}}'}}")
    return "\n".join(lines) + "\n"


def string_doubling(levels: int, first: str = "xxxxxxxx") -> str:
    lines = ["values:", f"  a0: {first}"]
    lines += [f"  a{i}: '${{a{i - 1}}}${{a{i - 1}}}'" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested_join(levels: int) -> str:
    lines = ["values:", "  a0: xxxxxxxx"]
    lines += [f"  a{i}: {{fn::join: ['', ['${{a{i - 1}}}', '${{a{i - 1}}}']]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def from_base64_many(refs: int, size: int = 600_000) -> str:
    big = base64.b64encode(b"y" * size).decode()
    lines = ["values:", f"  big: {big}"] + [f"  d{i}: {{fn::fromBase64: '${{big}}'}}" for i in range(refs)]
    return "\n".join(lines) + "\n"


def run(text: str, mode: str = "check", **kw: Any) -> tuple[esc.Value, list[esc.Diagnostic], int]:
    """Evaluate and build every view of the result; returns the peak traced memory too."""
    tracemalloc.start()
    try:
        decl, diags = esc.load_definition(text, "bomb")
        assert decl is not None and not diags, diags
        value, diags = esc.evaluate(decl, mode=mode, **kw)  # type: ignore[arg-type]
        esc.to_plain(value)
        esc.to_plain(value, redact=True)
        detailed(value, "bomb")
        detailed(value, "bomb", redact=True, root=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, diags, peak


def limit_errors(diags: list[esc.Diagnostic]) -> list[esc.LimitDiagnostic]:
    return [d for d in diags if isinstance(d, esc.LimitDiagnostic)]


@pytest.mark.parametrize(
    "text, summary",
    [
        (array_doubling(20), "evaluation exceeds the limit of 2000000 values in one value"),
        (array_doubling(40), "evaluation exceeds the limit of 2000000 values in one value"),
        (string_doubling(25), "evaluation exceeds the limit of 32 MB for one string"),
        (string_doubling(60), "evaluation exceeds the limit of 32 MB for one string"),
        (nested_join(30), "evaluation exceeds the limit of 32 MB"),
        (from_base64_many(300), "evaluation exceeds the limit of 64 MB of strings built"),
        (array_doubling(21, to_json=False), "evaluation exceeds the limit of 2000000 values in one value"),
        (array_doubling(60, to_json=False), "evaluation exceeds the limit of 2000000 values in one value"),
    ],
    ids=["array-toJSON-20", "array-toJSON-40", "string-25", "string-60", "join-30", "fromBase64-300",
         "views-21", "views-60"],
)
@pytest.mark.parametrize("mode", ["check", "open"])
def test_bombs_give_the_limit_diagnostic_in_bounded_memory(text: str, summary: str, mode: str) -> None:
    value, diags, peak = run(text, mode)
    errors = limit_errors(diags)
    assert len(errors) == 1, diags
    d = errors[0]
    assert d.summary.startswith(summary), d.summary
    assert d.is_error and d.range is not None and d.range.environment == "bomb"
    assert d.path.startswith("values.")
    assert esc.to_plain(value) == {}  # nothing of a refused evaluation reaches a view
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MB"


@pytest.mark.parametrize("text", [string_doubling(25), nested_join(30), from_base64_many(300), string_doubling(18)],
                         ids=["string-25", "join-30", "fromBase64-300", "honest-string-18"])
def test_an_evaluation_frees_its_values_without_the_collector(text: str) -> None:
    # A server worker refuses bombs back to back: what each one built must be freed when
    # its evaluation is dropped, not at the cyclic collector's next run (which large strings
    # never trigger: they are not counted as allocations of containers).
    decl, _ = esc.load_definition(text, "bomb")
    assert decl is not None
    enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        value, diags = esc.evaluate(decl, mode="open")
        del value, diags
        left, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if enabled:
            gc.enable()
    assert peak - base > 2**20  # it did build something large
    assert left - base < 2**20, f"{(left - base) / 2**20:.1f} MB still held after the evaluation"


def test_the_diagnostic_is_on_the_expression_that_crossed_the_limit() -> None:
    # a19 holds 2**21 - 1 values: the first value over 2 000 000; the toJSON reads a20.
    _, diags, _ = run(array_doubling(20))
    (d,) = limit_errors(diags)
    assert d.path == "values.a20[1]" or d.path == "values.a20[0]"
    assert d.range is not None and d.range.begin.line == 22
    # the string that would be over 32 MB: a23 (8 * 2**22 characters) is built, a24 is not.
    _, diags, _ = run(string_doubling(30))
    (d,) = limit_errors(diags)
    assert d.path == "values.a23" and d.range is not None and d.range.begin.line == 25


def test_a_secret_never_reaches_the_diagnostic() -> None:
    text = string_doubling(40, first="{fn::secret: hunter2hunter2}")
    _, diags, _ = run(text, "open")
    (d,) = limit_errors(diags)
    assert "hunter2" not in d.summary and "hunter2" not in str(d) and "hunter2" not in repr(d)


def test_honest_large_environment_still_evaluates() -> None:
    n = 10_000
    lines = ["values:"]
    lines += [f"  v{i}: value-{i}" for i in range(n)]
    lines += [f"  s{i}: ${{v{i}}}/${{v{(i * 7 + 1) % n}}}" for i in range(n)]
    lines += [f"  r{i}: ${{s{(i * 13 + 5) % n}}}" for i in range(n)]
    lines += ["  list: [" + ", ".join(f"'${{v{i}}}'" for i in range(2000)) + "]",
              "  json: {fn::toJSON: '${list}'}", "  again: {fn::toJSON: ['${list}', '${list}', '${list}']}",
              "  blob: {fn::toBase64: '${json}'}", "  back: {fn::fromBase64: '${blob}'}"]
    value, diags, peak = run("\n".join(lines) + "\n", "open")
    assert diags == []
    plain = esc.to_plain(value)
    assert plain["r0"] == plain["s5"] == "value-5/value-36"
    assert plain["back"] == plain["json"] and plain["json"].startswith('["value-0","value-1",')
    assert len(plain) == 3 * n + 5


def test_sharing_below_the_limits_is_fine() -> None:
    value, diags, _ = run(array_doubling(15))  # 65 535 values in a15, a toJSON of 256 KB
    assert diags == []
    assert esc.to_plain(value)["out"].count('"x"') == 2**16


def test_limits_are_configurable() -> None:
    small = esc.EvalLimits(max_nodes=100)
    _, diags, _ = run(array_doubling(5), limits=small)  # 127 values in a5
    (d,) = limit_errors(diags)
    assert d.summary == "evaluation exceeds the limit of 100 values in one value"
    _, diags, _ = run(array_doubling(3), limits=small)  # the whole result counts too: 58
    assert diags == []

    _, diags, _ = run(string_doubling(10), limits=esc.EvalLimits(max_bytes=4096))
    (d,) = limit_errors(diags)
    assert d.summary == "evaluation exceeds the limit of 4096 bytes for one string"

    many = "values:\n" + "".join(f"  v{i}: ${{w{i}}}\n  w{i}: x\n" for i in range(5000))
    _, diags, _ = run(many, limits=esc.EvalLimits(max_work=1000))
    (d,) = limit_errors(diags)
    assert d.summary == "evaluation exceeds the limit of 1000 steps of work"

    _, diags, _ = run(many, limits=esc.EvalLimits(timeout=1e-9))
    (d,) = limit_errors(diags)
    assert d.summary == "evaluation exceeds the time limit of 1e-09 s"


@pytest.mark.parametrize("field", ["max_bytes", "max_nodes", "max_built_bytes", "max_work"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        esc.EvalLimits(**{field: 0})


def test_split_and_from_json_are_counted_before_they_build() -> None:
    limits = esc.EvalLimits(max_nodes=1000)
    text = "values:\n  s: " + "a," * 5000 + "\n  parts: {fn::split: [',', '${s}']}\n"
    _, diags, _ = run(text, limits=limits)
    (d,) = limit_errors(diags)
    assert d.path == "values.parts" and "1000 values" in d.summary
    text = "values:\n  j: '[" + "0," * 5000 + "0]'\n  data: {fn::fromJSON: '${j}'}\n"
    _, diags, _ = run(text, limits=limits)
    (d,) = limit_errors(diags)
    assert d.path == "values.data"


def test_imports_count_towards_the_limits(tmp_path) -> None:
    class Loader:
        def load(self, name: str) -> esc.LoadedEnvironment:
            return esc.LoadedEnvironment(text=array_doubling(21, to_json=False))

    decl, _ = esc.load_definition("imports: [base]\nvalues:\n  mine: ok\n", "root")
    value, diags = esc.evaluate(decl, mode="check", loader=Loader())
    (d,) = limit_errors(diags)
    assert d.range is not None and d.range.environment == "base"
    assert esc.to_plain(value) == {}


def test_local_backend_and_load_apply_the_limits(tmp_path) -> None:
    from esc_pulumi.backends.local import LocalBackend
    from esc_pulumi.errors import DefinitionError

    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "bomb.yaml").write_text(array_doubling(25))
    (tmp_path / "default" / "small.yaml").write_text(array_doubling(6))
    backend = LocalBackend(tmp_path)
    with pytest.raises(DefinitionError, match="evaluation exceeds the limit of 2000000 values"):
        backend.open({"imports": ["bomb"]})
    assert backend.open({"imports": ["small"]}).value.repr["out"].repr.count("x") == 128
    with pytest.raises(DefinitionError, match="limit of 100 values"):
        backend.open({"imports": ["small"]}, limits=esc.EvalLimits(max_nodes=100))
    with pytest.raises(DefinitionError, match="limit of 100 values"):
        LocalBackend(tmp_path, limits=esc.EvalLimits(max_nodes=100)).open({"imports": ["small"]})
