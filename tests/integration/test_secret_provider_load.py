"""``esc_pulumi.load()`` on a ``file://`` backend with a secret-output provider (issue 9 §1):
every part of the output, references to it and values derived from it become secret config
keys / secret variables, and neither the ``LoadResult`` repr nor the logs show a plaintext.

The provider is published through the ``esc_pulumi.providers`` entry-point group (see
``tests/secret_provider.py``). Expected values are written by hand.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import esc_pulumi

from .. import secret_provider as sp
from .conftest import await_output, runtime_config

STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [myproj/leak]\n"

# The whole pulumiConfig / environmentVariables objects are a secret provider's output.
WHOLE = f"""
values:
  pulumiConfig:
    fn::open::{sp.ECHO}:
      apiKey: e2e-user-Q7Z
      settings: {{token: e2e-password-K9X}}
  environmentVariables:
    fn::open::{sp.ECHO}:
      API_TOKEN: e2e-inner-V5
"""


@pytest.fixture
def providers_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(sp.install(tmp_path / "providers")))


def test_load_marks_every_part_secret(project, providers_on_path) -> None:
    app = project(STACK, {"myproj/leak": sp.LEAK_ENV})
    result = esc_pulumi.load("dev", app)
    assert result.secret_keys == {"myproj:dbPassword", "myproj:nested", "myproj:dataInner"}
    assert result.secret_variables == {"DB_PASSWORD", "DB_USER", "DATA_TOKEN", "DEEP_FILE"}
    # The program still gets the plaintexts, as secrets.
    assert result.config["myproj:dbPassword"] == "e2e-password-K9X"
    assert result.config["myproj:dataInner"] == "e2e-data-inner-J4"
    assert result.config["myproj:nested"] == '{"deep":["e2e-deep-item-M3",{"inner":"e2e-inner-V5"}]}'
    assert result.config["myproj:plainKey"] == "plain-config"
    assert os.environ["DB_USER"] == "e2e-user-Q7Z"
    assert Path(os.environ["DEEP_FILE"]).read_text() == "e2e-deep-item-M3"
    config, secret = runtime_config()
    assert {"myproj:dbPassword", "myproj:nested", "myproj:dataInner"} <= secret
    assert "myproj:plainKey" not in secret
    value, is_secret = await_output(esc_pulumi.Config("myproj").require_secret("dbPassword"))
    assert (value, is_secret) == ("e2e-password-K9X", True)


def test_load_result_repr_hides_the_output(project, providers_on_path) -> None:
    app = project(STACK, {"myproj/leak": sp.LEAK_ENV})
    result = esc_pulumi.load("dev", app)
    for text in (repr(result), str(result), repr(result.config), repr(result.environment_variables),
                 repr(result.masked_config()), repr(result.masked_environment_variables())):
        assert sp.leaks(text) == [], text
    assert result.masked_config()["myproj:dbPassword"] == "[secret]"
    assert result.masked_config()["myproj:nested"] == "[secret]"
    assert result.masked_config()["myproj:plainKey"] == "plain-config"
    assert result.masked_environment_variables() == {
        "DB_PASSWORD": "[secret]",
        "DB_USER": "[secret]",
        "DATA_TOKEN": "[secret]",
        "PLAIN_VAR": "plain-visible",
    }


def test_whole_sections_from_a_secret_provider(project, providers_on_path) -> None:
    app = project(STACK, {"myproj/leak": WHOLE})
    result = esc_pulumi.load("dev", app)
    assert result.secret_keys == {"myproj:apiKey", "myproj:settings"}
    assert result.secret_variables == {"API_TOKEN"}
    assert result.config["myproj:settings"] == '{"token":"e2e-password-K9X"}'
    assert sp.leaks(repr(result)) == []
    assert result.masked_environment_variables() == {"API_TOKEN": "[secret]"}


def test_logs_show_no_plaintext(project, providers_on_path, caplog: pytest.LogCaptureFixture) -> None:
    app = project(STACK, {"myproj/leak": sp.LEAK_ENV})
    with caplog.at_level(logging.DEBUG):
        esc_pulumi.load("dev", app)
    assert sp.leaks(caplog.text) == []
