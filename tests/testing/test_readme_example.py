"""The README's esc_pulumi.testing example, run as written against a project it fits."""
from __future__ import annotations

import re
from pathlib import Path

from .conftest import write

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Testing your program: `esc_pulumi.testing`", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_holds(tmp_path, monkeypatch):
    infra = tmp_path / "infra"
    write(infra / "Pulumi.yaml", "name: infra\nruntime: python\n")
    write(infra / "Pulumi.dev.yaml", "config:\n  esc:backend: file://envs\n  esc:environments: [infra/dev]\n")
    write(
        infra / "envs" / "infra" / "dev.yaml",
        """
        values:
          pulumiConfig:
            dbHost: dev-db.internal
            dbPassword: {fn::secret: hunter2-readme}
        """,
    )
    write(
        infra / "__main__.py",
        """
        import pulumi
        import esc_pulumi

        esc_pulumi.load()
        cfg = esc_pulumi.Config()


        class Database(pulumi.CustomResource):
            def __init__(self, name, props):
                super().__init__("infra:index:Database", name, props)


        Database("db", {"host": cfg.require("dbHost"), "password": cfg.require("dbPassword")})
        pulumi.log.info("connected")
        pulumi.export("dbPassword", cfg.require("dbPassword"))
        """,
    )
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_example(), str(README), "exec"), scope)
    scope["test_the_database_password_stays_secret"]()
