"""Every method of the real ``pulumi_esc_sdk.EscClient`` against ``esc-pulumi serve``."""
from __future__ import annotations

import pytest
from pulumi_esc_sdk import ApiException, EscClient, models
from pulumi_esc_sdk.esc_client import default_client

from .conftest import ORG, Env

BASE = """# shared settings
values:
  region: eu-west-1
  dbPassword:
    fn::secret: hunter2-base   # rotated monthly
  nested:
    list: [1, two, {three: 3}]
"""

APP = """imports:
  - {base}
values:
  url: https://${{region}}.example.com
  apiKey: {{fn::secret: sk-app-key}}
  pulumiConfig:
    app:url: ${{url}}
    app:password: ${{dbPassword}}
"""


def _create(client: EscClient, project: str, name: str, yaml_text: str | None = None) -> None:
    client.create_environment(ORG, project, name)
    if yaml_text is not None:
        client.update_environment_yaml(ORG, project, name, yaml_text)


def test_create_update_get_open_with_secrets_and_imports(env: Env, unique: str) -> None:
    c = env.client("admin")
    _create(c, "proj", f"base-{unique}", BASE)
    _create(c, "proj", f"app-{unique}", APP.format(base=f"proj/base-{unique}"))

    # The definition comes back with its comments, secrets as ciphertext only.
    definition, raw = c.get_environment(ORG, "proj", f"base-{unique}")
    text = raw.decode()
    assert "# shared settings" in text and "# rotated monthly" in text
    assert "hunter2-base" not in text and "ciphertext:" in text
    assert isinstance(definition, models.EnvironmentDefinition)
    assert definition.values.additional_properties["region"] == "eu-west-1"

    opened = c.open_environment(ORG, "proj", f"app-{unique}")
    assert isinstance(opened.id, str) and opened.id
    environment, values, raw_json = c.read_open_environment(ORG, "proj", f"app-{unique}", opened.id)
    assert values["url"] == "https://eu-west-1.example.com"
    assert values["dbPassword"] == "hunter2-base"  # imported from another environment
    assert values["apiKey"] == "sk-app-key"
    assert values["nested"] == {"list": [1, "two", {"three": 3}]}
    assert values["pulumiConfig"] == {"app:url": "https://eu-west-1.example.com", "app:password": "hunter2-base"}
    props = environment.properties
    assert props["apiKey"].secret is True and props["dbPassword"].secret is True
    assert not props["url"].secret
    assert props["apiKey"].trace.var_def.environment == f"proj/app-{unique}"
    assert props["dbPassword"].trace.var_def.environment == f"proj/base-{unique}"
    assert props["pulumiConfig"].value["app:password"]["secret"] is True

    value, plain = c.read_open_environment_property(ORG, "proj", f"app-{unique}", opened.id, "nested.list[2].three")
    assert plain == 3 and isinstance(value, models.Value)
    value, plain = c.read_open_environment_property(ORG, "proj", f"app-{unique}", opened.id, "apiKey")
    assert plain == "sk-app-key" and value.secret is True
    value, plain = c.read_open_environment_property(ORG, "proj", f"app-{unique}", opened.id, 'pulumiConfig["app:url"]')
    assert plain == "https://eu-west-1.example.com"

    _, values2, _ = c.open_and_read_environment(ORG, "proj", f"app-{unique}")
    assert values2 == values


def test_revisions_and_revision_tags(env: Env, unique: str) -> None:
    c = env.client("editor")
    name = f"revs-{unique}"
    c.create_environment(ORG, "proj", name)
    for i in (1, 2, 3):
        c.update_environment_yaml(ORG, "proj", name, f"values:\n  n: {i}\n  s: {{fn::secret: s{i}}}\n")
    revs = c.list_environment_revisions(ORG, "proj", name)
    assert [r.number for r in revs] == [4, 3, 2, 1]
    assert "latest" in revs[0].tags
    assert [r.number for r in c.list_environment_revisions(ORG, "proj", name, before=3, count=1)] == [2]

    _, raw = c.get_environment_at_version(ORG, "proj", name, "2")
    assert b"n: 1" in raw
    _, values, _ = c.open_and_read_environment_at_version(ORG, "proj", name, "3")
    assert values == {"n": 2, "s": "s2"}

    c.create_environment_revision_tag(ORG, "proj", name, "stable", 2)
    assert c.get_environment_revision_tag(ORG, "proj", name, "stable").revision == 2
    opened = c.open_environment_at_version(ORG, "proj", name, "stable")
    _, values, _ = c.read_open_environment(ORG, "proj", name, opened.id)
    assert values["n"] == 1
    c.update_environment_revision_tag(ORG, "proj", name, "stable", 3)
    assert c.get_environment_revision_tag(ORG, "proj", name, "stable").revision == 3
    _, raw = c.get_environment_at_version(ORG, "proj", name, "stable")
    assert b"n: 2" in raw

    tags = c.list_environment_revision_tags(ORG, "proj", name)
    assert {t.name: t.revision for t in tags.tags} == {"latest": 4, "stable": 3}
    # `latest` moves with every update
    c.update_environment_yaml(ORG, "proj", name, "values: {n: 5}\n")
    assert c.get_environment_revision_tag(ORG, "proj", name, "latest").revision == 5
    page = c.list_environment_revision_tags(ORG, "proj", name, count=1)
    assert [t.name for t in page.tags] == ["latest"] and page.next_token == "latest"
    page = c.list_environment_revision_tags(ORG, "proj", name, after="latest")
    assert [t.name for t in page.tags] == ["stable"]

    c.delete_environment_revision_tag(ORG, "proj", name, "stable")
    with pytest.raises(ApiException) as e:
        c.get_environment_revision_tag(ORG, "proj", name, "stable")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        c.create_environment_revision_tag(ORG, "proj", name, "latest", 1)
    assert e.value.status == 409


def test_imports_by_revision_and_tag_and_default_project(env: Env, unique: str) -> None:
    c = env.client("admin")
    base = f"shared-{unique}"
    # The SDK refuses project "default" on create (its schema's pattern); the API does not.
    status, _, _ = env.request("POST", f"/environments/{ORG}", {"project": "default", "name": base})
    assert status == 204
    c.update_environment_yaml(ORG, "default", base, "values: {color: red}\n")
    c.update_environment_yaml(ORG, "default", base, "values: {color: blue}\n")
    c.create_environment_revision_tag(ORG, "default", base, "prod", 3)  # 1 is the empty creation
    c.update_environment_yaml(ORG, "default", base, "values: {color: green}\n")
    app = f"consumer-{unique}"
    _create(c, "other", app, f"imports:\n  - default/{base}@2\nvalues:\n  shade: dark-${{color}}\n")
    _, values, _ = c.open_and_read_environment(ORG, "other", app)
    assert values == {"color": "red", "shade": "dark-red"}
    c.update_environment_yaml(ORG, "other", app, f"imports: [{base}]\n")
    _, values, _ = c.open_and_read_environment(ORG, "other", app)
    assert values == {"color": "green"}
    c.update_environment_yaml(ORG, "other", app, f"imports: [{base}@prod]\n")
    _, values, _ = c.open_and_read_environment(ORG, "other", app)
    assert values == {"color": "blue"}


def test_environment_tags(env: Env, unique: str) -> None:
    c = env.client("editor")
    name = f"tagged-{unique}"
    c.create_environment(ORG, "proj", name)
    t = c.create_environment_tag(ORG, "proj", name, "owner", "team-a")
    assert isinstance(t, models.EnvironmentTag) and t.value == "team-a" and t.editor_login == "editor-user"
    c.create_environment_tag(ORG, "proj", name, "tier", "gold")
    assert c.get_environment_tag(ORG, "proj", name, "owner").value == "team-a"
    listed = c.list_environment_tags(ORG, "proj", name)
    assert set(listed.tags) == {"owner", "tier"} and listed.next_token == ""
    first = c.list_environment_tags(ORG, "proj", name, count=1)
    assert list(first.tags) == ["owner"] and first.next_token == "owner"
    assert list(c.list_environment_tags(ORG, "proj", name, after=first.next_token).tags) == ["tier"]
    updated = c.update_environment_tag(ORG, "proj", name, "owner", "team-a", "team", "team-b")
    assert updated.name == "team" and updated.value == "team-b"
    with pytest.raises(ApiException) as e:
        c.update_environment_tag(ORG, "proj", name, "team", "stale", "team", "x")
    assert e.value.status == 409
    c.delete_environment_tag(ORG, "proj", name, "team")
    assert set(c.list_environment_tags(ORG, "proj", name).tags) == {"tier"}
    with pytest.raises(ApiException) as e:
        c.get_environment_tag(ORG, "proj", name, "team")
    assert e.value.status == 404


def test_clone_with_preserve_options(env: Env, unique: str) -> None:
    c = env.client("admin")
    src = f"src-{unique}"
    _create(c, "proj", src, "values: {v: 1, s: {fn::secret: cloned-secret}}\n")
    c.update_environment_yaml(ORG, "proj", src, "values: {v: 2, s: {fn::secret: cloned-secret}}\n")
    c.create_environment_revision_tag(ORG, "proj", src, "stable", 1)
    c.create_environment_tag(ORG, "proj", src, "owner", "me")

    c.clone_environment(ORG, "proj", src, "proj2", f"full-{unique}",
                        {"preserve_history": True, "preserve_environment_tags": True,
                         "preserve_revision_tags": True, "preserve_access": True})
    assert [r.number for r in c.list_environment_revisions(ORG, "proj2", f"full-{unique}")] == [3, 2, 1]
    assert c.get_environment_revision_tag(ORG, "proj2", f"full-{unique}", "stable").revision == 1
    assert set(c.list_environment_tags(ORG, "proj2", f"full-{unique}").tags) == {"owner"}
    _, values, _ = c.open_and_read_environment(ORG, "proj2", f"full-{unique}")
    assert values == {"v": 2, "s": "cloned-secret"}

    c.clone_environment(ORG, "proj", src, "proj", f"bare-{unique}")
    assert [r.number for r in c.list_environment_revisions(ORG, "proj", f"bare-{unique}")] == [1]
    assert c.list_environment_tags(ORG, "proj", f"bare-{unique}").tags == {}
    _, values, _ = c.open_and_read_environment(ORG, "proj", f"bare-{unique}")
    assert values == {"v": 2, "s": "cloned-secret"}
    with pytest.raises(ApiException) as e:
        c.clone_environment(ORG, "proj", src, "proj", f"bare-{unique}")
    assert e.value.status == 409


def test_check_and_decrypt_and_update_with_definition(env: Env, unique: str) -> None:
    c = env.client("admin")
    name = f"checked-{unique}"
    c.create_environment(ORG, "proj", name)
    ok = c.check_environment_yaml(ORG, "values:\n  a: 1\n  b: ${a}\n  s: {fn::secret: x}\n")
    assert not ok.diagnostics and ok.properties["b"].value == 1 and ok.properties["s"].secret is True
    bad = c.check_environment_yaml(ORG, "values:\n  b: ${nope}\n")
    assert bad.diagnostics and "nope" in bad.diagnostics[0].summary
    assert bad.diagnostics[0].range.environment

    definition = models.EnvironmentDefinition.from_dict(
        {"imports": [], "values": {"pulumiConfig": {"k": "v"}, "environmentVariables": {"E": "1"}, "plain": 1}})
    assert not c.check_environment(ORG, definition).diagnostics
    c.update_environment(ORG, "proj", name, definition)
    _, values, _ = c.open_and_read_environment(ORG, "proj", name)
    assert values["pulumiConfig"] == {"k": "v"} and values["environmentVariables"] == {"E": "1"}

    c.update_environment_yaml(ORG, "proj", name, "# keep me\nvalues:\n  pw:\n    fn::secret: decrypt-me\n")
    decrypted, raw = c.decrypt_environment(ORG, "proj", name)
    assert "fn::secret: decrypt-me" in raw and "# keep me" in raw
    assert decrypted.values.additional_properties["pw"] == {"fn::secret": "decrypt-me"}


def test_list_environments_paginates(env: Env, unique: str) -> None:
    c = env.client("admin")
    names = [f"page-{unique}-{i}" for i in range(5)]
    for n in names:
        c.create_environment(ORG, "paging", n)
    seen, token = [], None
    for _ in range(100):
        page = c.list_environments(ORG, token)
        assert len(page.environments) <= 3  # the fixture's page size
        seen += [(e.project, e.name) for e in page.environments]
        token = page.next_token
        if not token:
            break
    assert [n for p, n in seen if p == "paging" and n.startswith(f"page-{unique}")] == names
    assert len(seen) == len(set(seen))
    assert all(e.organization == ORG for e in c.list_environments(ORG).environments)


def test_delete_environment(env: Env, unique: str) -> None:
    c = env.client("admin")
    name = f"doomed-{unique}"
    c.create_environment(ORG, "proj", name)
    c.delete_environment(ORG, "proj", name)
    with pytest.raises(ApiException) as e:
        c.get_environment(ORG, "proj", name)
    assert e.value.status == 404
    c.create_environment(ORG, "proj", name)  # the name is free again, with a fresh history
    assert [r.number for r in c.list_environment_revisions(ORG, "proj", name)] == [1]


def test_errors_400_401_403_404_409(env: Env, unique: str) -> None:
    c = env.client("admin")
    name = f"errs-{unique}"
    c.create_environment(ORG, "proj", name)
    c.update_environment_yaml(ORG, "proj", name, "values: {a: 1}\n")

    with pytest.raises(ApiException) as e:  # a definition with errors: refused, nothing saved
        c.update_environment_yaml(ORG, "proj", name, "values:\n  a: ${missing.thing}\n")
    assert e.value.status == 400
    assert e.value.data.diagnostics and "missing" in e.value.data.diagnostics[0].summary
    assert [r.number for r in c.list_environment_revisions(ORG, "proj", name)] == [2, 1]
    with pytest.raises(ApiException) as e:
        c.update_environment_yaml(ORG, "proj", name, "imports: [does-not-exist]\n")
    assert e.value.status == 400

    with pytest.raises(ApiException) as e:
        c.create_environment(ORG, "proj", name)
    assert e.value.status == 409
    # The SDK validates names itself; the server's own check, through raw HTTP:
    status, _, body = env.request("POST", f"/environments/{ORG}", {"project": "proj", "name": "bad name!"})
    assert status == 400 and body["code"] == 400 and "invalid environment name" in body["message"]
    with pytest.raises(ApiException) as e:
        c.open_environment(ORG, "proj", f"missing-{unique}")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        c.get_environment_at_version(ORG, "proj", name, "99")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        c.read_open_environment(ORG, "proj", name, "no-such-session")
    assert e.value.status == 404

    with pytest.raises(ApiException) as e:
        env.client(token="escp_wrong").list_environments(ORG)
    assert e.value.status == 401
    with pytest.raises(ApiException) as e:
        env.client("reader").open_environment(ORG, "proj", name)
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        env.client("opener").update_environment_yaml(ORG, "proj", name, "values: {}\n")
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        env.client("editor").delete_environment(ORG, "proj", name)
    assert e.value.status == 403
    with pytest.raises(ApiException) as e:
        env.client(token=env.other_admin).get_environment(ORG, "proj", name)
    assert e.value.status == 403


def test_default_client_from_pulumi_backend_url(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", env.server.url)
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", env.tokens["reader"])
    page = default_client().list_environments(ORG)
    assert isinstance(page, models.OrgEnvironments)
