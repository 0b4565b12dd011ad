"""Real programs run through run_program: the language host's process, the real SDK, the fake
engine recording what it is sent."""
from __future__ import annotations

import pytest

from esc_pulumi.testing import UNKNOWN, FakeEngine, ProgramFailed, run_program
from esc_pulumi.testing._wire import SECRET_SIG, SIG_KEY

PASSWORD = "hunter2-s3cret"

PROGRAM = """
import os
import pulumi

cfg = pulumi.Config()
name = cfg.require("name")
password = cfg.require_secret("password")


class Thing(pulumi.CustomResource):
    def __init__(self, name, props, opts=None):
        super().__init__("myproj:index:Thing", name, props, opts)


thing = Thing("thing", {"name": name, "password": password, "nested": {"size": 3, "token": password}})
pulumi.log.info(f"registered a thing called {name}")
pulumi.log.warn("a warning")
pulumi.export("name", name)
pulumi.export("password", password)
pulumi.export("thingId", thing.id)
pulumi.export("dryRun", pulumi.runtime.is_dry_run())
pulumi.export("where", {
    "project": pulumi.get_project(),
    "stack": pulumi.get_stack(),
    "organization": pulumi.get_organization(),
    "rootDirectory": pulumi.get_root_directory(),
    "cwd": os.getcwd(),
    "pulumiConfigSet": "PULUMI_CONFIG" in os.environ,
    "secretKeysEnv": os.environ.get("PULUMI_CONFIG_SECRET_KEYS"),
    "extra": os.environ.get("EXTRA_VAR"),
})
"""

CONFIG = {"myproj:name": "alpha", "myproj:password": PASSWORD}
SECRET_KEYS = ["myproj:password"]


def wrapped(value):
    return {SIG_KEY: SECRET_SIG, "value": value}


@pytest.fixture
def up(project):
    root = project(PROGRAM)
    return root, run_program(root, "dev", config=CONFIG, secret_keys=SECRET_KEYS, env={"EXTRA_VAR": "x"}).check()


def test_resources_arrive_in_wire_form(up):
    _, run = up
    thing = run.resource("thing")
    assert (thing.type, thing.custom, thing.id) == ("myproj:index:Thing", True, "thing-id")
    assert thing.parent == run.stack_resource.urn == "urn:pulumi:dev::myproj::pulumi:pulumi:Stack::myproj-dev"
    assert thing.urn == "urn:pulumi:dev::myproj::myproj:index:Thing::thing"
    assert thing.inputs_wire == {
        "name": "alpha",
        "password": wrapped(PASSWORD),
        "nested": {"size": 3.0, "token": wrapped(PASSWORD)},
    }
    assert thing.inputs == {"name": "alpha", "password": PASSWORD, "nested": {"size": 3, "token": PASSWORD}}
    assert thing.secret_paths == ("nested.token", "password")
    assert [r.name for r in run.resources] == ["thing"]  # the root stack is run.stack_resource


def test_stack_outputs_plain_and_secret(up):
    _, run = up
    assert run.outputs.wire["password"] == wrapped(PASSWORD)
    assert run.outputs["password"] == PASSWORD and run.outputs["name"] == "alpha"
    assert run.outputs["thingId"] == "thing-id" and run.outputs["dryRun"] is False
    assert run.outputs.secret == {"password"}
    assert run.outputs.masked()["password"] == "[secret]"


def test_the_program_runs_as_the_language_host_runs_it(up):
    root, run = up
    assert run.outputs["where"] == {
        "project": "myproj",
        "stack": "dev",
        "organization": "organization",  # what a DIY backend says
        "rootDirectory": str(root),
        "cwd": str(root),
        "pulumiConfigSet": True,
        "secretKeysEnv": '["myproj:password"]',
        "extra": "x",
    }


def test_logs_are_recorded(up):
    _, run = up
    assert run.messages() == ["registered a thing called alpha", "a warning"]
    assert run.messages("warning") == ["a warning"]
    assert [e.severity for e in run.logs if e.message == "a warning"] == ["warning"]
    assert run.messages("debug")  # the SDK's own chatter, kept apart
    with pytest.raises(ValueError):
        run.messages("loud")


def test_no_secret_in_the_repr(up):
    _, run = up
    text = repr(run)
    assert PASSWORD not in text and "[secret]" in text and "alpha" in text
    assert PASSWORD in run.secret_texts()
    assert run.mask_secrets(f"the password is {PASSWORD}") == "the password is [secret]"


def test_preview_is_a_dry_run(project):
    root = project(PROGRAM)
    run = run_program(root, "dev", config=CONFIG, secret_keys=SECRET_KEYS, preview=True).check()
    assert run.preview
    assert run.outputs["dryRun"] is True
    assert run.resource("thing").id is None  # nothing is created in a preview
    assert run.outputs["thingId"] is UNKNOWN
    assert run.resource("thing").secret_paths == ("nested.token", "password")


def test_secret_keys_decide_what_esc_pulumi_config_returns_but_not_pulumi_config(project):
    # PULUMI_CONFIG_SECRET_KEYS reaches the SDK: require_secret wraps (it always does),
    # pulumi.Config().get() hands out the plaintext even for a secret key (the SDK's documented
    # behaviour: its warning is off), esc_pulumi.Config() returns a secret for a secret key.
    root = project(
        """
        import pulumi, esc_pulumi
        from pulumi.runtime import is_config_secret

        class Thing(pulumi.CustomResource):
            def __init__(self, name, props):
                super().__init__("myproj:index:Thing", name, props)

        cfg = pulumi.Config()
        Thing("t", {
            "viaRequireSecret": cfg.require_secret("password"),
            "viaGet": cfg.get("password"),
            "viaEscConfig": esc_pulumi.Config().get("password"),
        })
        pulumi.export("isSecret", is_config_secret("myproj:password"))
        """
    )
    secret = run_program(root, "dev", config=CONFIG, secret_keys=SECRET_KEYS).check()
    assert secret.resource("t").inputs_wire == {
        "viaRequireSecret": wrapped(PASSWORD), "viaGet": PASSWORD, "viaEscConfig": wrapped(PASSWORD),
    }
    assert secret.outputs["isSecret"] is True

    plain = run_program(root, "dev", config=CONFIG, secret_keys=[]).check()
    assert plain.resource("t").inputs_wire == {
        "viaRequireSecret": wrapped(PASSWORD), "viaGet": PASSWORD, "viaEscConfig": PASSWORD,
    }
    assert plain.outputs["isSecret"] is False


def test_no_config_means_no_pulumi_config_variable(project):
    root = project(PROGRAM.replace('cfg.require("name")', '"n"').replace('cfg.require_secret("password")', '"p"'))
    run = run_program(root, "dev").check()
    assert run.outputs["where"]["pulumiConfigSet"] is False
    assert run.outputs["where"]["secretKeysEnv"] == "[]"  # always passed, empty


def test_a_failing_program_exits_non_zero_with_its_error(project):
    root = project(
        """
        import pulumi
        pulumi.export("before", "yes")
        raise ValueError("the database name is missing")
        """
    )
    run = run_program(root, "dev")
    assert run.exit_code != 0 and not run.ok
    assert "ValueError: the database name is missing" in run.stderr
    assert "Traceback" in run.stderr
    assert any("the database name is missing" in m for m in run.messages("error"))
    with pytest.raises(ProgramFailed, match="the database name is missing"):
        run.check()


def test_check_masks_the_runs_secrets(project):
    root = project(
        """
        import pulumi
        raise RuntimeError("bad password " + pulumi.Config().require("password"))
        """
    )
    run = run_program(root, "dev", config=CONFIG, secret_keys=SECRET_KEYS)
    assert PASSWORD in run.stderr  # the program printed it: stderr is what it is
    with pytest.raises(ProgramFailed) as e:
        run.check()
    assert PASSWORD not in str(e.value) and "bad password [secret]" in str(e.value)


def test_missing_config_is_a_failure_without_a_traceback(project):
    root = project("import pulumi\npulumi.Config().require('absent')\n")
    run = run_program(root, "dev")
    assert run.exit_code != 0
    assert "Missing required configuration variable 'myproj:absent'" in run.stderr
    assert "Traceback" not in run.stderr  # a RunError is a message for the user


def test_duplicate_resource_names_fail_as_under_the_engine(project):
    root = project(
        """
        import pulumi

        class Thing(pulumi.CustomResource):
            def __init__(self, name):
                super().__init__("myproj:index:Thing", name, {})

        Thing("same")
        Thing("same")
        """
    )
    run = run_program(root, "dev")
    assert run.exit_code != 0
    assert "Duplicate resource URN" in run.stderr


def test_components_children_and_their_outputs(project):
    root = project(
        """
        import pulumi

        class Thing(pulumi.CustomResource):
            def __init__(self, name, props, opts=None):
                super().__init__("myproj:index:Thing", name, props, opts)

        class Pair(pulumi.ComponentResource):
            def __init__(self, name, opts=None):
                super().__init__("myproj:index:Pair", name, None, opts)
                self.left = Thing(f"{name}-left", {"side": "left"}, pulumi.ResourceOptions(parent=self))
                self.register_outputs({"leftId": self.left.id})

        Pair("pair")
        """
    )
    run = run_program(root, "dev").check()
    pair, left = run.resource("pair"), run.resource("pair-left")
    assert not pair.custom and pair.id is None
    assert left.parent == pair.urn
    assert left.urn == "urn:pulumi:dev::myproj::myproj:index:Pair$myproj:index:Thing::pair-left"
    assert pair.outputs == {"leftId": "pair-left-id"}


def test_main_in_the_project_file_picks_the_program_and_its_folder(project):
    root = project(
        "raise SystemExit('the project folder is not the program')\n",
        project_yaml="name: myproj\nruntime: python\nmain: src/\n",
    )
    (root / "src").mkdir()
    (root / "src" / "helper.py").write_text("VALUE = 'from a sibling module'\n")
    (root / "src" / "__main__.py").write_text(
        "import os, pulumi, helper\npulumi.export('cwd', os.getcwd())\npulumi.export('v', helper.VALUE)\n"
    )
    run = run_program(root, "dev").check()
    assert run.outputs == {"cwd": str(root / "src"), "v": "from a sibling module"}


def test_one_engine_many_runs(project):
    root = project("import pulumi\npulumi.export('name', pulumi.Config().require('name'))\n")
    with FakeEngine() as engine:
        first = engine.run(root, "dev", config={"myproj:name": "one"}).check()
        second = engine.run(root, "prod", config={"myproj:name": "two"}).check()
    assert first.outputs["name"] == "one" and second.outputs["name"] == "two"
    assert second.stack_resource.urn == "urn:pulumi:prod::myproj::pulumi:pulumi:Stack::myproj-prod"


def test_a_program_that_hangs_is_killed(project):
    root = project("import sys, time, pulumi\nprint(pulumi.Config().require('password'), file=sys.stderr, flush=True)\ntime.sleep(60)\n")
    with pytest.raises(TimeoutError, match="still running after 3 s") as e:
        run_program(root, "dev", config=CONFIG, secret_keys=SECRET_KEYS, timeout=3)
    assert PASSWORD not in str(e.value) and "[secret]" in str(e.value)


def test_arguments_are_checked(project):
    root = project("pass\n")
    with pytest.raises(TypeError, match="str -> str"):
        run_program(root, "dev", config={"myproj:n": 1})
    with pytest.raises(TypeError, match="list of keys"):
        run_program(root, "dev", secret_keys="myproj:n")
    from esc_pulumi.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no Pulumi.yaml"):
        run_program(root / "nowhere", "dev")


def test_invokes_and_reads_are_recorded(project):
    root = project(
        """
        import pulumi

        class Thing(pulumi.CustomResource):
            def __init__(self, name, props=None, opts=None):
                super().__init__("myproj:index:Thing", name, props or {}, opts)

        result = pulumi.runtime.invoke("myproj:index:getThing", {"filter": "a"})
        pulumi.export("invokeResult", dict(result.value or {}))
        found = Thing("found", {"kept": "k"}, pulumi.ResourceOptions(id="existing-id"))
        pulumi.export("foundId", found.id)
        """
    )
    run = run_program(root, "dev").check()
    assert run.invokes == (("myproj:index:getThing", {"filter": "a"}),)
    assert run.outputs["invokeResult"] == {}  # no provider here: invokes return nothing
    found = run.resource("found")
    assert found.read and found.id == "existing-id" and found.inputs == {"kept": "k"}
    assert run.outputs["foundId"] == "existing-id"
