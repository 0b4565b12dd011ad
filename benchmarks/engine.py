"""Engine benchmark: our open-mode evaluation against OmegaConf and against the bare C YAML parse.

The workload (issue 2): N plain values, N interpolations each reading two of them, and N
whole-value references to the interpolations, split over 10 imported environments that one
root environment imports. OmegaConf resolves the same data and references in the same run.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/engine.py [--quick]``).
Targets: at least 10x faster than OmegaConf; within 3x of ``yaml.compose`` with the C loader;
time linear in size (per-value growth within 1.5x of the C parse's own growth). The detailed
model (``Evaluation.detailed``: exprs, traces, schema) is built only on request; its cost is
reported on its own, apart from the plain evaluation measured against the targets.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from typing import Callable

import yaml

from verdict import at_least, at_most

from esc_pulumi.esc import LoadedEnvironment, evaluate, evaluate_environment, load_definition, to_plain

PARTS = 10


def generate(n: int) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """YAML text per environment, and the same data as one OmegaConf-style dict per part."""
    per = n // PARTS
    texts: dict[str, str] = {}
    plain: dict[str, dict[str, str]] = {}
    for p in range(PARTS):
        lines = ["values:"]
        data: dict[str, str] = {}
        for i in range(per):
            lines.append(f"  v{p}_{i}: value-{p}-{i}")
            data[f"v{p}_{i}"] = f"value-{p}-{i}"
        for i in range(per):
            a, b = f"v{p}_{i}", f"v{p}_{(i * 7 + 1) % per}"
            lines.append(f"  s{p}_{i}: ${{{a}}}/${{{b}}}")
            data[f"s{p}_{i}"] = f"${{{a}}}/${{{b}}}"
        for i in range(per):
            lines.append(f"  r{p}_{i}: ${{s{p}_{(i * 13 + 5) % per}}}")
            data[f"r{p}_{i}"] = f"${{s{p}_{(i * 13 + 5) % per}}}"
        texts[f"part{p}"] = "\n".join(lines) + "\n"
        plain[f"part{p}"] = data
    texts["root"] = "imports:\n" + "".join(f"  - part{p}\n" for p in range(PARTS))
    return texts, plain


class _Loader:
    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def load(self, name: str) -> LoadedEnvironment:
        return LoadedEnvironment(text=self.texts[name])


def run_ours(texts: dict[str, str]) -> dict:
    decl, diags = load_definition(texts["root"], "root")
    assert decl is not None and not diags
    value, diags = evaluate(decl, mode="open", loader=_Loader(texts))
    assert not diags, diags[:3]
    return to_plain(value)


def run_detailed(texts: dict[str, str]) -> dict:
    decl, _ = load_definition(texts["root"], "root")
    assert decl is not None
    return evaluate_environment(decl, mode="open", loader=_Loader(texts)).detailed()


def run_c_parse(texts: dict[str, str]) -> None:
    for text in texts.values():
        yaml.compose(text, Loader=yaml.CSafeLoader)


def run_omegaconf(plain: dict[str, dict[str, str]]) -> dict:
    from omegaconf import OmegaConf

    out: dict = {}
    for data in plain.values():
        out.update(OmegaConf.to_container(OmegaConf.create(data), resolve=True))
    return out


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else 3

    n = 10_000
    texts, plain = generate(n)
    ours_result = run_ours(texts)
    omega_result = run_omegaconf(plain)
    assert ours_result == omega_result, "the two engines disagree on the benchmark data"

    # This machine's speed drifts: time ours and the C parse in alternation and compare each
    # pair, so that the ratio does not depend on which moment each was measured in.
    pairs = []
    for _ in range(3 if args.quick else 9):
        pairs.append((best_of(lambda: run_ours(texts), 1), best_of(lambda: run_c_parse(texts), 1)))
    ours = statistics.median(p[0] for p in pairs)
    c_parse = statistics.median(p[1] for p in pairs)
    c_ratio = statistics.median(p[0] / p[1] for p in pairs)
    omega = best_of(lambda: run_omegaconf(plain), 1 if args.quick else 2)
    print(f"workload: {n} plain values, {n} interpolations, {n} references over {PARTS} imported environments")
    print(f"  esc_pulumi (parse + evaluate + JSON):  {ours * 1000:8.1f} ms (median of {len(pairs)})")
    print(f"  OmegaConf to_container(resolve=True):  {omega * 1000:8.1f} ms   -> we are {omega / ours:5.1f}x faster {at_least(omega / ours, 10)}")
    print(f"  yaml.compose (CSafeLoader) alone:      {c_parse * 1000:8.1f} ms   -> we take {c_ratio:5.2f}x of it {at_most(c_ratio, 3)} (median of paired runs)")
    full = best_of(lambda: run_detailed(texts), 1 if args.quick else 3)
    print(f"  the same with the detailed model built:  {full * 1000:8.1f} ms   (only when asked for: open --format detailed, the API)")

    print("time against size (plain values; as many interpolations and references), next to the bare C parse:")
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    per_value = []
    for size in sizes:
        t_texts, _ = generate(size)
        reps = 1 if size >= 100_000 else repeat
        t = best_of(lambda: run_ours(t_texts), reps)
        c = best_of(lambda: run_c_parse(t_texts), reps)
        per_value.append((t / size, c / size))
        print(
            f"  {size:>7} values: {t * 1000:9.1f} ms  {t / size * 1e6:6.2f} us/value"
            f"   (C parse {c / size * 1e6:5.2f} us/value, ratio {t / c:4.2f})"
        )
    first, last = per_value[0], per_value[-1]
    growth = (last[0] / first[0]) / (last[1] / first[1])
    print(
        f"  per-value cost from {sizes[0]} to {sizes[-1]} values: ours x{last[0] / first[0]:4.2f}, "
        f"C parse x{last[1] / first[1]:4.2f}; ours against the C parse's growth x{growth:4.2f} "
        f"{at_most(growth, 1.5)} (1.00: we scale as the parser does)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
