"""``esc-pulumi open|check`` with names that would leave the file:// store (review item 1)."""
from __future__ import annotations

from pathlib import Path

from .conftest import run_script, write

OUTSIDE = "values:\n  stolen: outside-plaintext-7d1c\n"


def test_open_dotdot_is_refused_and_names_the_reference(tmp_path: Path, store: Path, backend_env):
    write(tmp_path / "outside.yaml", OUTSIDE)  # beside the store: envs/../outside.yaml
    r = run_script(["open", "../outside", "--show-secrets"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and r.out == ""
    assert "'../outside'" in r.err and "'..'" in r.err and "reserved" in r.err
    assert "outside-plaintext-7d1c" not in r.err + r.out


def test_import_of_dotdot_is_refused(tmp_path: Path, store: Path, backend_env):
    write(tmp_path / "outside.yaml", OUTSIDE)
    write(store / "myproj" / "sneaky.yaml", "imports:\n  - ../outside\nvalues:\n  a: 1\n")
    r = run_script(["open", "myproj/sneaky", "--show-secrets"], cwd=tmp_path, env=backend_env)
    assert r.code != 0
    assert "'../outside'" in r.err and "outside-plaintext-7d1c" not in r.err + r.out


def test_symlink_out_of_the_store_is_refused(tmp_path: Path, store: Path, backend_env):
    write(tmp_path / "outside.yaml", OUTSIDE)
    (store / "myproj" / "leak.yaml").symlink_to(tmp_path / "outside.yaml")
    r = run_script(["open", "myproj/leak", "--show-secrets"], cwd=tmp_path, env=backend_env)
    assert r.code != 0 and "leads outside" in r.err
    assert "outside-plaintext-7d1c" not in r.err + r.out
