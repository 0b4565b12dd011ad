"""Raw HTTP (urllib) against ``esc-pulumi serve``: the anonymous yaml/open pair the Pulumi CLI
uses, ETag/If-Match, sessions, the audit command and the request log."""
from __future__ import annotations

import json
import time

from .conftest import ORG, Env, run_cli


def _make(env: Env, project: str, name: str, text: str) -> None:
    assert env.request("POST", f"/environments/{ORG}", {"project": project, "name": name})[0] == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/{project}/{name}", text)
    assert status == 200, body


def test_anonymous_yaml_open_pair(env: Env, unique: str) -> None:
    _make(env, "default", f"a-{unique}", "values:\n  a: 1\n  shared: from-a\n  pw: {fn::secret: anon-pw}\n")
    _make(env, "proj", f"b-{unique}", "values:\n  b: 2\n  shared: from-b\n")
    status, _, body = env.request(
        "POST", f"/environments/{ORG}/yaml/open?duration=2h0m0s",
        f"imports:\n  - a-{unique}\n  - proj/b-{unique}\n",
        headers={"Accept": "application/vnd.pulumi+8"},
    )
    assert status == 200, body
    sid = body["id"]
    assert isinstance(sid, str)
    status, _, opened = env.request("GET", f"/environments/{ORG}/yaml/open/{sid}")
    assert status == 200
    props = opened["properties"]
    assert props["a"]["value"] == 1 and props["b"]["value"] == 2
    assert props["shared"]["value"] == "from-b"  # later imports win
    assert props["pw"] == {**props["pw"], "value": "anon-pw", "secret": True}
    assert all("environment" in p["trace"]["def"] for p in props.values())
    status, _, one = env.request("GET", f"/environments/{ORG}/yaml/open/{sid}?property=pw")
    assert status == 200 and one["value"] == "anon-pw" and one["secret"] is True
    status, _, missing = env.request("GET", f"/environments/{ORG}/yaml/open/{sid}?property=nope")
    assert status == 404 and missing["code"] == 404

    # errors in the anonymous definition: 400 with diagnostics
    status, _, bad = env.request("POST", f"/environments/{ORG}/yaml/open", "imports: [no-such-env]\n")
    assert status == 400 and bad["diagnostics"] and "no-such-env" in bad["diagnostics"][0]["summary"]
    # a session of one org is not visible from another
    status, _, _ = env.request("GET", f"/environments/other/yaml/open/{sid}", token=env.other_admin)
    assert status == 404


def test_durations_and_expiry(env: Env, unique: str) -> None:
    _make(env, "proj", f"short-{unique}", "values: {x: 1}\n")
    path = f"/environments/{ORG}/proj/short-{unique}/open"
    for bad in ("banana", "10", "-1h", "0s"):
        status, _, body = env.request("POST", f"{path}?duration={bad}")
        assert status == 400 and body["code"] == 400, bad
    status, _, body = env.request("POST", f"{path}?duration=1ms")
    assert status == 200
    time.sleep(0.05)  # let the 1 ms session lapse (a wait, not a timed assertion)
    status, _, gone = env.request("GET", f"{path}/{body['id']}")
    assert status == 404 and "expired" in gone["message"]
    status, _, body = env.request("POST", f"{path}?duration=1.5h")
    assert status == 200
    assert env.request("GET", f"{path}/{body['id']}")[0] == 200


def test_etag_and_if_match(env: Env, unique: str) -> None:
    name = f"etag-{unique}"
    _make(env, "proj", name, "values: {v: 1}\n")
    path = f"/environments/{ORG}/proj/{name}"
    status, headers, body = env.request("HEAD", path)
    assert status == 200 and body is None
    etag = headers["etag"] if "etag" in headers else headers["ETag"]
    status, headers2, _ = env.request("PATCH", path, "values: {v: 2}\n", headers={"If-Match": etag})
    assert status == 200
    status, _, body = env.request("PATCH", path, "values: {v: 3}\n", headers={"If-Match": etag})
    assert status == 409 and body["code"] == 409 and "stale" in body["message"]
    status, _, text = env.request("GET", path)
    assert status == 200 and "v: 2" in text
    assert env.request("HEAD", f"/environments/{ORG}/proj/nope-{unique}")[0] == 404


def test_error_shapes(env: Env, unique: str) -> None:
    status, _, body = env.request("GET", f"/environments/{ORG}", role=None)
    assert status == 401 and body == {"code": 401, "message": body["message"]}
    status, _, body = env.request("GET", "/no/such/route")
    assert status == 404 and body["code"] == 404
    status, _, body = env.request("POST", f"/environments/{ORG}", b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and body["code"] == 400
    status, _, body = env.request("PATCH", f"/environments/{ORG}/proj/missing-{unique}", "values: {}\n")
    assert status == 404
    status, _, body = env.request("GET", f"/environments/{ORG}?continuationToken=garbage")
    assert status == 400
    status, _, body = env.request("GET", f"/environments/{ORG}/proj/x/versions?count=abc")
    assert status in (400, 404)


def test_audit_log_and_request_log(env: Env, unique: str) -> None:
    name = f"audited-{unique}"
    _make(env, "proj", name, "values: {pw: {fn::secret: audit-secret-value}}\n")
    status, _, body = env.request("POST", f"/environments/{ORG}/proj/{name}/open", role="opener")
    assert status == 200
    # An open is answered once its audit entry is on disk: no waiting.
    out = run_cli("serve", "audit", "--data", str(env.server.data), "--json").stdout
    entries = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in entries if e["target"] == f"proj/{name}"]
    actions = [(e["actor"], e["action"]) for e in mine]
    assert ("admin-user", "environment.create") in actions
    assert ("admin-user", "environment.update") in actions
    assert ("opener-user", "environment.open") in actions
    text = run_cli("serve", "audit", "--data", str(env.server.data)).stdout
    assert f"proj/{name}" in text and "audit-secret-value" not in text

    log = env.server.log_path.read_text()
    assert f"PATCH /api/esc/environments/{ORG}/proj/{name} 200" in log
    assert "audit-secret-value" not in log and "fn::secret" not in log


def test_fuzz_regressions_are_client_errors(env: Env, unique: str) -> None:
    name = f"fuzzed-{unique}"
    _make(env, "proj", name, "values: {a: 1}\n")
    base = f"/environments/{ORG}/proj/{name}"
    assert env.request("POST", f"{base}/versions/tags", {"name": "big", "revision": 2**70})[0] == 400
    assert env.request("PATCH", f"{base}/versions/tags/latest", {"revision": 10**30})[0] == 400
    assert env.request("GET", f"{base}/versions/{'9' * 30}")[0] == 404
    assert env.request("GET", f"{base}/versions/%C2%B2")[0] == 404  # '²' is a digit to str.isdigit
    status, _, body = env.request("POST", f"{base}/tags", b'{"name": "a", "value": "\\ud800"}',
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and body["code"] == 400
    status, _, body = env.request("PATCH", base, f"imports: [{name}@{'9' * 30}]\n")
    assert status == 400 and body["diagnostics"]


def test_no_route_shadows_another(tmp_path) -> None:
    # Starlette answers with the first route that matches a path and method, and the routes
    # are ordered by how often they are used: each route must still get the requests meant for
    # it, whatever stands before it.
    import re
    from pathlib import Path

    from starlette.routing import Match

    from esc_pulumi.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=Path(tmp_path), eval_workers=0)).app  # inside the access log
    routes = [r for r in app.routes if hasattr(r, "methods")]
    assert len(routes) > 15
    for route in routes:
        params = iter(range(1000))
        path = re.sub(r"\{[^}]+\}", lambda _: f"x{next(params)}", route.path)
        for method in route.methods:
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            first = next(r for r in routes if r.matches(scope)[0] == Match.FULL)
            assert first is route, f"{method} {path} reaches {first.path}, not {route.path}"
