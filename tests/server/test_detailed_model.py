"""The whole detailed Environment over HTTP (spec section 8, the OpenAPI ``Environment`` and
``CheckEnvironment``): ``yaml/check`` returns exprs, properties, schema and executionContext,
redacted unless ``?showSecrets=true``; a session's read carries them too, also when another
replica reads the session (they are sealed with it; a row sealed before that still reads); the
real ``pulumi-esc-sdk`` parses every answer; the cloud backend's ``model()``.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from pulumi_esc_sdk import models

from esc_pulumi.backends.cloud import CloudBackend
from esc_pulumi.backends.credentials import Token
from esc_pulumi.esc import ANONYMOUS, evaluate_environment, load_definition
from esc_pulumi.esc.model_form import from_api, to_api
from esc_pulumi.secrets.crypto import AesGcmCipher, read_key_file
from esc_pulumi.server.shared_sessions import unseal

from .conftest import ORG, Env, ServerProcess, db_execute, replica_flags, run_cli, start_env

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "esc-golden"

BASE = """\
values:
  region: eu-west-1
  dbPassword:
    fn::secret: base-Pw-7Q
"""

DEFINITION = """\
values:
  greeting: hello
  token:
    fn::secret: check-Tok-3Z
  url: "https://user:${token}@example.com/${greeting}"
  list: [one, {two: 2}]
  first: ${list[0]}
"""

SECRETS = ("base-Pw-7Q", "check-Tok-3Z")


def _context(login: str) -> dict[str, Any]:
    return {"pulumi": {"user": {"login": login}, "organization": {"login": ORG}}}


def _engine_model(text: str, login: str, mode: str = "open", redact: bool = False) -> dict[str, Any]:
    """What the engine itself makes of an anonymous definition with the server's context."""
    decl, diags = load_definition(text, ANONYMOUS)
    assert decl is not None and not diags
    return evaluate_environment(decl, mode=mode, context=_context(login)).detailed(redact=redact)


def _leaks(body: Any) -> list[str]:
    text = json.dumps(body)
    return [s for s in SECRETS if s in text]


@pytest.fixture
def base(env: Env, unique: str) -> str:
    name = f"base-{unique}"
    c = env.client("admin")
    c.create_environment(ORG, "dm", name)
    c.update_environment_yaml(ORG, "dm", name, BASE)
    return f"dm/{name}"


# -- yaml/check --------------------------------------------------------------------------------


def test_check_returns_the_whole_environment_redacted(env: Env) -> None:
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/check", DEFINITION, role="reader")
    assert status == 200, body
    assert list(body) == ["exprs", "properties", "schema", "executionContext", "diagnostics"]
    assert body["diagnostics"] == []
    assert _leaks(body) == []
    # Exactly the engine's redacted model, in the API's spelling.
    want = _engine_model(DEFINITION, "reader-user", mode="check", redact=True)
    assert from_api({k: v for k, v in body.items() if k != "diagnostics"}) == want
    assert body["properties"]["token"]["value"] == "[secret]"
    assert body["exprs"]["token"]["builtin"]["arg"]["literal"] == "[secret]"
    assert body["exprs"]["greeting"]["literal"] == "hello"
    assert body["schema"]["properties"]["greeting"] == {"type": "string", "const": "hello"}
    assert body["schema"]["properties"]["token"] == {"type": "string"}
    # The API's spelling: an index accessor has a key, every range an environment.
    accessor = body["exprs"]["first"]["symbol"][1]
    assert accessor["index"] == 0 and accessor["key"] == ""
    # The real SDK's client reads it.
    checked = env.client("reader").check_environment_yaml(ORG, DEFINITION)
    assert isinstance(checked, models.CheckEnvironment)
    assert checked.exprs["url"].interpolate[0].text == "[secret]"
    assert checked.exprs["first"].symbol[1].index == 0
    assert checked.var_schema["properties"]["greeting"]["const"] == "hello"
    assert checked.execution_context.properties["currentEnvironment"].value["name"]["value"] == ANONYMOUS
    assert checked.properties["token"].secret is True


def test_check_with_show_secrets(env: Env, base: str, unique: str) -> None:
    text = f"imports:\n  - {base}\n{DEFINITION}"
    path = f"/environments/{ORG}/yaml/check"
    status, _, redacted = env.request("POST", path, text, role="reader")
    assert status == 200 and _leaks(redacted) == []
    # The stored secret is a ciphertext: a plain check does not even decrypt it.
    assert redacted["properties"]["dbPassword"]["unknown"] is True
    # Revealing decrypts what the definition imports: it needs the role that may open.
    status, _, body = env.request("POST", f"{path}?showSecrets=true", text, role="reader")
    assert status == 403, body
    status, _, body = env.request("POST", f"{path}?showSecrets=true", text, role="opener")
    assert status == 200, body
    assert body["properties"]["dbPassword"] == {
        "value": "base-Pw-7Q", "secret": True, "trace": body["properties"]["dbPassword"]["trace"]}
    assert body["exprs"]["token"]["builtin"]["arg"]["literal"] == "check-Tok-3Z"
    assert body["schema"]["properties"]["token"] == {"type": "string", "const": "check-Tok-3Z"}
    checked = models.CheckEnvironment.from_dict(body)
    assert checked.properties["token"].value == "check-Tok-3Z"
    assert env.request("POST", f"{path}?showSecrets=false", text, role="reader")[2] == redacted
    status, _, body = env.request("POST", f"{path}?showSecrets=maybe", text, role="opener")
    assert status == 400 and "showSecrets" in body["message"]
    # A check that revealed is in the audit log with what it revealed, as an open is.
    out = run_cli("serve", "audit", "--data", str(env.server.data), "--json", "--env", base).stdout
    entries = [json.loads(line) for line in out.splitlines()]
    assert any(e["actor"] == "opener-user" and e["detail"].endswith("imported by <yaml>") for e in entries)


def test_check_with_errors_still_returns_the_model(env: Env) -> None:
    text = "values:\n  a: ${nope}\n  pw:\n    fn::secret: check-Tok-3Z\n"
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/check", text, role="reader")
    assert status == 400
    assert body["diagnostics"][0]["summary"] == 'unknown property "nope"'
    assert "exprs" in body and _leaks(body) == []
    assert models.CheckEnvironment.from_dict(body).exprs["a"].symbol[0].key == "nope"


# -- sessions ----------------------------------------------------------------------------------


def test_open_and_read_carry_the_model(env: Env, base: str) -> None:
    c = env.client("opener")
    project, name = base.split("/")
    environment, values, raw = c.open_and_read_environment(ORG, project, name)
    assert values == {"region": "eu-west-1", "dbPassword": "base-Pw-7Q"}
    assert isinstance(environment, models.Environment)
    # Its own expressions: the stored definition (whose secret the server keeps encrypted).
    assert set(environment.exprs) == {"region", "dbPassword"}
    arg = environment.exprs["dbPassword"].builtin.arg
    assert set(arg.object) == {"ciphertext"}
    assert environment.var_schema["properties"]["region"] == {"type": "string", "const": "eu-west-1"}
    ctx = environment.execution_context.properties
    assert ctx["currentEnvironment"].value["name"]["value"] == base
    assert ctx["pulumi"].value["user"]["value"]["login"]["value"] == "opener-user"
    doc = json.loads(raw)
    assert list(doc) == ["exprs", "properties", "schema", "executionContext"]
    # A property read is still the Value model alone.
    opened = c.open_environment(ORG, project, name)
    value, plain = c.read_open_environment_property(ORG, project, name, opened.id, "region")
    assert plain == "eu-west-1" and isinstance(value, models.Value)


def test_an_anonymous_session_is_the_engines_model(env: Env) -> None:
    status, _, opened = env.request("POST", f"/environments/{ORG}/yaml/open", DEFINITION, role="opener")
    assert status == 200, opened
    status, _, body = env.request("GET", f"/environments/{ORG}/yaml/open/{opened['id']}", role="opener")
    assert status == 200, body
    # A session reveals what it opened, its expressions included.
    assert from_api(body) == _engine_model(DEFINITION, "opener-user")
    assert body["exprs"]["token"]["builtin"]["arg"]["literal"] == "check-Tok-3Z"
    parsed = models.Environment.from_dict(body)
    assert parsed.exprs["list"].list[1].object["two"].literal == 2


def test_a_session_read_on_another_replica_has_its_model(tmp_path: Path) -> None:
    a = start_env(tmp_path / "data", *replica_flags())
    b = Env(ServerProcess(a.server.data, extra=replica_flags()).start(), a.tokens, a.other_admin)
    try:
        status, _, opened = a.request("POST", f"/environments/{ORG}/yaml/open", DEFINITION, role="opener")
        assert status == 200
        sid = opened["id"]
        status, _, on_a = a.request("GET", f"/environments/{ORG}/yaml/open/{sid}", role="opener")
        status_b, _, on_b = b.request("GET", f"/environments/{ORG}/yaml/open/{sid}", role="opener")
        assert (status, status_b) == (200, 200)
        assert on_b == on_a and "exprs" in on_b

        # A row sealed the way sessions were before they kept the model: properties only.
        status, _, opened = a.request("POST", f"/environments/{ORG}/yaml/open", "values:\n  old: row\n",
                                      role="opener")
        assert status == 200
        cipher = AesGcmCipher(read_key_file(a.server.data / "server.key"))
        rows = db_execute(a.server.data, "SELECT id, payload FROM session_values")
        for value_id, payload in rows:
            packed, diagnostics, model = unseal(cipher.decrypt, bytes(payload))
            if model is not None and b'"old"' in model.get("exprs", b""):
                old = cipher.encrypt(pickle.dumps((packed, diagnostics), protocol=pickle.HIGHEST_PROTOCOL))
                db_execute(a.server.data, "UPDATE session_values SET payload=? WHERE id=?", (old, value_id))
                break
        else:
            pytest.fail("the session's row was not found")
        c = Env(ServerProcess(a.server.data, extra=replica_flags()).start(), a.tokens, a.other_admin)  # nothing in memory
        try:
            status, _, body = c.request("GET", f"/environments/{ORG}/yaml/open/{opened['id']}", role="opener")
            assert status == 200, body
            assert list(body) == ["properties"] and body["properties"]["old"]["value"] == "row"
        finally:
            c.server.stop()
    finally:
        a.server.stop()
        b.server.stop()


# -- the SDK and the API's spelling of every golden model --------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file()))
def test_the_sdk_parses_every_golden_model(case: str) -> None:
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    for key in ("check", "eval", "rotate"):
        if key in expected:
            api = json.loads(json.dumps(to_api(expected[key])))
            parsed = models.Environment.from_dict(api)
            assert isinstance(parsed, models.Environment)
            # Nothing lost (the SDK writes back its nullable fields as nulls: dropped here).
            assert from_api(_without_nulls(parsed.to_dict())) == expected[key]


def _without_nulls(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _without_nulls(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_without_nulls(v) for v in x]
    return x


# -- the cloud backend -------------------------------------------------------------------------


def test_cloud_backend_model(env: Env, base: str) -> None:
    backend = CloudBackend(env.server.url, token=Token(env.tokens["opener"], "test"))
    opened = backend.open({"imports": [base]}, organization=ORG, detailed=True)
    assert opened.requests == 2
    revealed, redacted = opened.model(redact=False), opened.model()
    # One import: opened by name, so the model is that environment's own.
    assert set(revealed["exprs"]) == {"region", "dbPassword"}
    assert revealed["properties"]["dbPassword"]["value"] == "base-Pw-7Q"
    assert redacted["properties"]["dbPassword"]["value"] == "[secret]"
    assert _leaks(redacted) == []
    assert redacted["executionContext"]["properties"]["currentEnvironment"]["value"]["name"]["value"] == base
    # Pinned to a revision (2: the first one with a definition): that revision's own open.
    pinned = backend.open({"imports": [f"{base}@2"]}, organization=ORG, detailed=True)
    assert pinned.model(redact=False)["properties"]["region"]["value"] == "eu-west-1"
    # Any other composition is its own anonymous root, which defines nothing itself.
    composed = backend.open({"imports": [base, base]}, organization=ORG, detailed=True)
    assert "exprs" not in composed.model() and composed.model()["properties"]["region"]["value"] == "eu-west-1"
    with pytest.raises(Exception, match="without its detailed model"):
        backend.open({"imports": [base]}, organization=ORG).model()


# -- the model's size --------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_model_larger_than_the_evaluation_may_be_is_left_out(tmp_path: Path) -> None:
    """A nested definition's schema and expressions grow with the square of its depth: past
    the evaluation's text budget (here 1 MB) the answer keeps its properties and context."""
    e = start_env(tmp_path / "data", "--eval-max-mb", "1")
    try:
        deep = "values:\n  top: " + "{d: " * 250 + "leaf" + "}" * 250 + "\n"
        shallow = "values:\n  top: " + "{d: " * 5 + "leaf" + "}" * 5 + "\n"
        for text, whole in ((deep, False), (shallow, True)):
            status, _, checked = e.request("POST", f"/environments/{ORG}/yaml/check", text, role="reader")
            assert status == 200, checked
            status, _, opened = e.request("POST", f"/environments/{ORG}/yaml/open", text, role="opener")
            assert status == 200, opened
            status, _, read = e.request("GET", f"/environments/{ORG}/yaml/open/{opened['id']}", role="opener")
            assert status == 200, read
            want = ["exprs", "properties", "schema", "executionContext"] if whole else ["properties", "executionContext"]
            assert list(read) == want
            assert list(checked) == want + ["diagnostics"]
            models.Environment.from_dict(read)
    finally:
        e.server.stop()
