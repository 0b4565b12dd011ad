"""Schema-driven fuzzing (schemathesis) of every endpoint of the ESC OpenAPI document: no 500s.

The document is read in place from ``../shared/reference/esc-openapi.yaml``. Each operation is
fuzzed a few times with generated names (mostly 403/404 paths), with the organisation pinned to
the test one (auth passes, names are generated), and with an existing environment pinned (the
deep paths: updates, opens, tags), in positive and negative generation modes.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from .conftest import ORG, Env

SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "esc-openapi.yaml"

schemathesis = pytest.importorskip("schemathesis")


def _schema():
    raw = yaml.safe_load(SPEC.read_text())
    return schemathesis.openapi.from_dict(raw)


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/reference/esc-openapi.yaml is not beside the repository")
def test_fuzz_every_operation_no_server_errors(env: Env) -> None:
    from schemathesis import GenerationMode

    schema = _schema()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20
    auth = {"Authorization": f"token {env.tokens['admin']}"}
    base_url = env.server.api
    target = {"orgName": ORG, "projectName": "fuzz", "envName": "target"}
    failures: list[str] = []
    statuses: dict[int, int] = {}

    def ensure_target() -> None:
        env.request("POST", f"/environments/{ORG}", {"project": "fuzz", "name": "target"})
        env.request("PATCH", f"/environments/{ORG}/fuzz/target",
                    "values:\n  a: 1\n  s: {fn::secret: fuzz-secret}\n  o: {x: [1, 2]}\n")

    for op in operations:
        params = {p.name for p in op.path_parameters}
        pins_list = [{}, {k: v for k, v in target.items() if k in params and k == "orgName"},
                     {k: v for k, v in target.items() if k in params}]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for pins in pins_list:
                if pins.get("envName"):
                    ensure_target()
                strategy = op.as_strategy(generation_mode=mode, path_parameters=pins or None, headers=auth)

                @settings(max_examples=6, deadline=None, database=None, phases=[Phase.generate],
                          suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def run(case) -> None:
                    response = case.call(base_url=base_url, timeout=30)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code >= 500:
                        failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                        f"{response.text[:200]}")

                try:
                    run()
                except Unsatisfiable:  # nothing to negate (or to generate) for this operation
                    pass
    assert not failures, "\n".join(failures[:20])
    print("fuzz statuses:", dict(sorted(statuses.items())))
    # The pinned passes reach the real handlers, not only the 403/404 guards.
    assert sum(n for s, n in statuses.items() if 200 <= s < 300) >= 20
    assert statuses.get(400, 0) >= 10
