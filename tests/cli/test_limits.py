"""The evaluation limits on the command line: --eval-max-mb, --eval-max-values, --eval-timeout
for check/open/run/config, and for serve (plus --eval-workers)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ..server.conftest import start_env
from .conftest import run_script, write

# 2**k strings when expanded: a0 has 2 values, every a<k> doubles it (plus its own array).
DOUBLING = "values:\n  a0: [x, x]\n" + "".join(f"  a{k}: ['${{a{k - 1}}}', '${{a{k - 1}}}']\n" for k in range(1, 9))


@pytest.fixture
def doubling(tmp_path: Path) -> Path:
    write(tmp_path / "envs" / "proj" / "dbl.yaml", DOUBLING)
    return write(tmp_path / "dbl.yaml", DOUBLING)


def test_check_honours_eval_max_values(doubling: Path):
    # The default limits let the 2**9-string value through ...
    assert run_script(["check", str(doubling)], cwd=doubling.parent).code == 0
    # ... a limit of 100 values stops it where a value over 100 values is used: a5 expands to
    # 127 values (a0: 3, then 2n + 1 each), and a6 (line 8) references it.
    r = run_script(["check", "--eval-max-values", "100", str(doubling)], cwd=doubling.parent)
    assert r.code == 1
    assert r.out.strip() == f"{doubling}:8:17: error: evaluation exceeds the limit of 100 values in one value"
    assert "Traceback" not in r.err


def test_open_honours_eval_max_mb(tmp_path: Path):
    text = "values:\n  s0: " + "x" * 1024 + "\n" + "".join(f"  s{k}: '${{s{k - 1}}}${{s{k - 1}}}'\n" for k in range(1, 12))
    write(tmp_path / "envs" / "proj" / "big.yaml", text)
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    ok = run_script(["open", "proj/big", "s9"], cwd=tmp_path, env=env)
    assert ok.code == 0 and len(ok.out.strip()) == 2 + 1024 * 2**9  # a JSON string of 512 KiB
    r = run_script(["open", "--eval-max-mb", "1", "proj/big"], cwd=tmp_path, env=env)
    assert r.code == 1
    # s11 is 2 MiB: the first value over 1 MB
    assert "evaluation exceeds the limit of 1 MB for one string" in r.out + r.err
    assert "xxxxxxxx" not in r.out + r.err


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--eval-max-mb", "0", "--eval-max-mb must be a positive number of MB"),
        ("--eval-max-values", "-3", "--eval-max-values must be a positive number"),
        ("--eval-timeout", "0", "--eval-timeout must be a positive number of seconds"),
    ],
)
def test_bad_limit_values_are_one_line_errors(doubling: Path, flag: str, value: str, message: str):
    r = run_script(["check", f"{flag}={value}", str(doubling)], cwd=doubling.parent)
    assert r.code == 1
    assert r.err.strip() == f"esc-pulumi: {message}"


def test_serve_applies_its_limit_flags(tmp_path: Path):
    env = start_env(tmp_path / "srv", "--eval-max-values", "100", "--eval-workers", "1", "--eval-timeout", "5")
    try:
        small = "values:\n  a0: [x, x]\n  a1: ['${a0}', '${a0}']\n"
        status, _, body = env.request("POST", "/environments/acme/yaml/check", small, role="reader")
        assert status == 200, body
        status, _, body = env.request("POST", "/environments/acme/yaml/check", DOUBLING, role="reader")
        assert status == 422
        assert body["message"] == "evaluation exceeds the limit of 100 values in one value"
        assert body["diagnostics"][0]["path"].startswith("values.a")
    finally:
        env.server.stop()


def test_serve_refuses_negative_workers(tmp_path: Path):
    r = run_script(["serve", "--data", str(tmp_path / "d"), "--eval-workers", "-1"], cwd=tmp_path)
    assert r.code == 1
    assert r.err.strip() == "esc-pulumi: --eval-workers must be 0 or more"
