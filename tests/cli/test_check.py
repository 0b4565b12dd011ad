"""``esc-pulumi check``: diagnostics as ``file:line:col: error: message``, exit 1 on errors."""
from __future__ import annotations

from esc_pulumi.cli.main import main

from .conftest import run_script, write

BAD_LINES = (
    'envs/myproj/bad.yaml:4:8: error: unknown property "nope"\n'
    "envs/myproj/bad.yaml:5:14: error: receiver must be an array or an object\n"
)


# The store named relative to the cwd: lines name files as the URL does (relative here).
RELATIVE = {"ESC_PULUMI_BACKEND": "file://envs"}


def test_ref_with_errors(tmp_path, store):
    r = run_script(["check", "myproj/bad"], cwd=tmp_path, env=RELATIVE)
    assert (r.code, r.out, r.err) == (1, BAD_LINES, "")


def test_ref_without_errors(tmp_path, backend_env):
    r = run_script(["check", "myproj/app"], cwd=tmp_path, env=backend_env)
    assert (r.code, r.out, r.err) == (0, "", "")
    # fmt projects an object as a variable: valid, but ignored, which check says.
    r = run_script(["check", "myproj/app", "myproj/fmt"], cwd=tmp_path, env=backend_env)
    assert (r.code, r.err) == (0, "")
    assert r.out.splitlines() == [
        "myproj/fmt:25:10: warning: environmentVariables.OBJ is an object: it is ignored "
        "(only strings, numbers and booleans are projected)"
    ]


def test_check_does_not_reveal_secrets(tmp_path, backend_env):
    r = run_script(["check", "myproj/app"], cwd=tmp_path, env=backend_env)
    assert "s3cr3t" not in r.out + r.err


def test_files_with_imports_beside_them(tmp_path):
    defs = tmp_path / "defs"
    write(defs / "base.yaml", "values:\n  region: us-east-1\n")
    write(
        defs / "app.yaml",
        """
        imports:
          - base
        values:
          where: ${region}
        """,
    )
    write(
        defs / "broken.yaml",
        """
        imports:
          - base
          - nothere
        values:
          x: ${region.nope}
          y: ${missing}
        """,
    )
    r = run_script(["check", "defs/app.yaml"], cwd=tmp_path)
    assert (r.code, r.out, r.err) == (0, "", "")
    r = run_script(["check", "defs/app.yaml", "defs/broken.yaml"], cwd=tmp_path)
    assert r.code == 1
    assert r.out == (
        "defs/broken.yaml:3:5: error: environment 'nothere' not found: no file defs/nothere.yaml\n"
        "defs/broken.yaml:5:14: error: receiver must be an array or an object\n"
        'defs/broken.yaml:6:8: error: unknown property "missing"\n'
    )


def test_file_errors_in_an_import_name_the_imported_file(tmp_path):
    defs = tmp_path / "defs"
    write(defs / "base.yaml", "values:\n  a: ${nope}\n")
    write(defs / "top.yaml", "imports: [base]\nvalues:\n  b: 1\n")
    r = run_script(["check", "defs/top.yaml"], cwd=tmp_path)
    assert r.code == 1
    assert r.out == 'defs/base.yaml:2:8: error: unknown property "nope"\n'


def test_file_in_a_store_layout_imports_project_names(tmp_path, store):
    r = run_script(["check", "envs/myproj/app.yaml"], cwd=tmp_path)
    assert (r.code, r.out) == (0, ""), r.out
    r = run_script(["check", "envs/myproj/bad.yaml"], cwd=tmp_path)
    assert (r.code, r.out) == (1, BAD_LINES)


def test_yaml_syntax_error(tmp_path):
    write(tmp_path / "broken.yaml", "values:\n  a: [1, 2\n")
    r = run_script(["check", "broken.yaml"], cwd=tmp_path)
    assert r.code == 1
    assert r.out.startswith("broken.yaml") and ": error: " in r.out
    assert "Traceback" not in r.err


def test_missing_file(tmp_path):
    r = run_script(["check", "nope.yaml"], cwd=tmp_path)
    assert r.code == 1 and r.err == "esc-pulumi: nope.yaml: no such file\n"


def test_stack_composition(project, tmp_path, store):
    r = run_script(["check", "--stack", "dev"], cwd=project)
    assert (r.code, r.out) == (0, ""), r.err
    write(project / "Pulumi.broken.yaml", "config:\n  esc:backend: file://../envs\n  esc:environments: [myproj/bad]\n")
    r = run_script(["check", "-s", "broken"], cwd=project)
    assert r.code == 1
    assert r.out == BAD_LINES.replace("envs/", "../envs/")


def test_in_process(tmp_path, monkeypatch, capsys, store):
    monkeypatch.chdir(tmp_path)
    for k, v in RELATIVE.items():
        monkeypatch.setenv(k, v)
    assert main(["check", "myproj/bad"]) == 1
    assert capsys.readouterr().out == BAD_LINES
    assert main(["check", "myproj/base"]) == 0


def test_check_warns_about_what_projection_ignores(tmp_path):
    from .conftest import run_script, write

    write(
        tmp_path / "envs" / "p" / "e.yaml",
        "values:\n  environmentVariables: notobj\n  files: [1]\n",
    )
    write(tmp_path / "envs" / "p" / "f.yaml", "values:\n  environmentVariables:\n    OK: 1\n    NESTED: {a: 1}\n")
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    r = run_script(["check", "p/e"], cwd=tmp_path, env=env)
    assert r.code == 0, r.err  # warnings only
    assert "p/e:2:25: warning: environmentVariables must be an object" in r.out
    assert "p/e:3:10: warning: files must be an object" in r.out
    r = run_script(["check", "p/f"], cwd=tmp_path, env=env)
    assert r.code == 0 and "environmentVariables.NESTED is an object: it is ignored" in r.out
    assert "OK" not in r.out.replace("NESTED", "")


def test_check_file_never_reads_outside_its_folder(tmp_path):
    from .conftest import run_script, write

    write(tmp_path / "outside.yaml", "values:\n  stolen: {fn::secret: top-secret-value}\n")
    f = write(tmp_path / "store" / "p" / "e.yaml", "imports: [../outside]\nvalues:\n  a: 1\n")
    r = run_script(["check", str(f)], cwd=tmp_path)
    assert r.code == 1 and "'..'" in (r.out + r.err) and "top-secret-value" not in r.out + r.err
    (tmp_path / "store" / "p" / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    f2 = write(tmp_path / "store" / "p" / "g.yaml", "imports: [link]\nvalues:\n  a: 1\n")
    r = run_script(["check", str(f2)], cwd=tmp_path)
    assert r.code == 1 and "leads outside" in (r.out + r.err)


def test_context_user_offline_hint_and_check_file_honours_the_setting(tmp_path):
    from .conftest import run_script, write

    f = write(tmp_path / "envs" / "p" / "u.yaml", "values:\n  who: ${context.pulumi.user.login}\n")
    env = {"ESC_PULUMI_BACKEND": f"file://{tmp_path / 'envs'}"}
    r = run_script(["open", "p/u"], cwd=tmp_path, env=env)
    assert r.code == 1 and "ESC_PULUMI_USER" in r.err
    r = run_script(["check", str(f)], cwd=tmp_path)
    assert r.code == 1
    r = run_script(["check", str(f)], cwd=tmp_path, env={"ESC_PULUMI_USER": "alice"})
    assert (r.code, r.out) == (0, ""), r.out + r.err
    r = run_script(["open", "p/u", "who"], cwd=tmp_path, env={**env, "ESC_PULUMI_USER": "alice"})
    assert (r.code, r.out.strip()) == (0, '"alice"'), r.err
