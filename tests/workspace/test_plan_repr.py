"""A load plan's repr leaves out what may hold plaintext (the CLI delivers decrypted secrets)."""
from __future__ import annotations

from pathlib import Path

from esc_pulumi.workspace.plan import LoadPlan


def test_plan_repr_shows_no_config_or_definition_text() -> None:
    plan = LoadPlan(Path("/p"), "proj", "dev", None, object(), {"values": {"x": {"fn::secret": "inline-s3cret"}}},
                    ("e",), "environment", {"proj:db": "delivered-s3cret"}, {"proj:region": "eu"},
                    stack_document={"config": {"proj:db": "doc-s3cret"}})
    text = repr(plan)
    assert "LoadPlan(project_dir=" in text and "stack='dev'" in text
    for secret in ("inline-s3cret", "delivered-s3cret", "doc-s3cret"):
        assert secret not in text
