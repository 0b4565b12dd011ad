"""Rotators published the public way, for the rotation tests of the backend and the CLI.

``install(dir)`` writes a tiny distribution into ``dir``: a module with rotators and a
``.dist-info`` whose ``entry_points.txt`` puts them in the ``esc_pulumi.providers`` group, as a
third-party package would. With ``dir`` on ``sys.path`` (this process) or ``PYTHONPATH`` (a
subprocess: the CLI), every default ``ProviderRegistry`` finds them.

- ``rt-password``: state ``{gen: number, password: string}``; rotating makes generation
  ``gen + 1`` with the secret password ``rotated-pw-<gen+1>-X7Q`` (distinctive, so that finding
  it in any output means it leaked); the rotateOnly input ``admin`` must be given to rotate.
- ``rt-secret``: a ``secret = True`` rotator: its whole state, numbers included, is secret.
- ``rt-fail``: opens with its state; rotating fails with ``the admin API refused the rotation``.
- ``rt-slow``: rotating creates ``<flag>.started``, waits until the file named by its ``flag``
  input exists (at most 30 s), then succeeds: a test changes the environment meanwhile.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

MODULE = "esc_pulumi_rotatetest_rotators"
PASSWORD, SECRET, FAIL, SLOW = "rt-password", "rt-secret", "rt-fail", "rt-slow"


# A definition with two rotated values (rt-password with a rotateOnly input, rt-secret) and the
# comments a rewrite must keep; the rotation tests of the CLI and of the server share it.
DB = """\
# Database credentials (keep this comment)
values:
  host: db.example.com
  db:
    fn::rotate::rt-password:
      inputs:
        admin: root-admin   # the managing login
        host: ${host}
      state:
        gen: 1   # generation
        password: {fn::secret: first-pw-J2K}
  token:
    fn::rotate::rt-secret: {inputs: {}}
  # a comment between
  url: postgres://${db.password}@${host}
"""


def new_password(gen: int) -> str:
    """The password ``rt-password`` makes for generation ``gen``."""
    return f"rotated-pw-{gen}-X7Q"


_MODULE_TEXT = '''
"""Rotators for the rotation tests (written by tests/rotators.py)."""
from esc_pulumi.esc import ProviderError, Rotator, Value, schema as S


def _state(state):
    return state.repr if isinstance(state.repr, dict) else {}


class Password(Rotator):
    input_schema = S.Schema.from_json({
        "type": "object",
        "properties": {"admin": {"type": "string"}, "host": {"type": "string"}},
        "required": ["admin"],
        "rotateOnly": ["admin"],
    })
    state_schema = S.record({"gen": S.number(), "password": S.string()}, required=["gen", "password"])

    def open_state(self, inputs, state, context):
        s = _state(state)
        out = {"password": s.get("password"), "gen": s.get("gen")}
        if "host" in inputs.repr:
            out["host"] = inputs.repr["host"]
        return out

    def rotate(self, inputs, state, context):
        if not inputs.repr["admin"].repr:
            raise ProviderError("no admin credentials")
        gen = _state(state).get("gen")
        n = (gen.repr if gen is not None else 0) + 1
        return {"gen": n, "password": Value(f"rotated-pw-{n}-X7Q", secret=True)}


class WholeSecret(Rotator):
    secret = True

    def open_state(self, inputs, state, context):
        return state

    def rotate(self, inputs, state, context):
        gen = _state(state).get("gen")
        n = (gen.repr if gen is not None else 0) + 1
        return {"gen": n, "token": f"rotated-token-{n}-K4W", "flags": [True, None]}


class Fail(Rotator):
    def open_state(self, inputs, state, context):
        return state

    def rotate(self, inputs, state, context):
        raise ProviderError("the admin API refused the rotation")


class Slow(Rotator):
    def open_state(self, inputs, state, context):
        return state

    def rotate(self, inputs, state, context):
        import os, time

        flag = inputs.repr["flag"].repr
        open(flag + ".started", "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"n": 2}
'''


def install(root: Path) -> Path:
    """Write the distribution under ``root``; returns the directory to put on the path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{MODULE}.py").write_text(textwrap.dedent(_MODULE_TEXT), encoding="utf-8")
    info = root / f"{MODULE}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: esc-pulumi-rotatetest-rotators\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[esc_pulumi.providers]\n{PASSWORD} = {MODULE}:Password\n{SECRET} = {MODULE}:WholeSecret\n"
        f"{FAIL} = {MODULE}:Fail\n{SLOW} = {MODULE}:Slow\n"
    )
    return root
