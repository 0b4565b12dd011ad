"""The package's layers go one way (design.md, "Layers"): each imports only from below it."""
from __future__ import annotations

import ast
from pathlib import Path

import esc_pulumi

PACKAGE = Path(esc_pulumi.__file__).parent

# Lower rank = lower layer. A module may import its own layer and layers of lower rank.
RANKS = {
    "esc": 0,
    "errors": 1,
    "durations": 1,
    "refs": 2,
    "secrets": 3,
    "providers": 3,
    "backends": 4,
    "workspace": 5,
    "runtime": 6,
    "": 7,  # esc_pulumi/__init__.py: the public API
    "testing": 8,
    "server": 9,
    "cli": 10,  # a shell over everything, the server included
}


def _layer(module: str) -> str:
    """``esc_pulumi.workspace.plan`` -> ``workspace``; ``esc_pulumi`` -> ``""``."""
    parts = module.split(".")
    assert parts[0] == "esc_pulumi", module
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path, package: Path) -> tuple[str, bool]:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imports(path: Path, package: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of our own package in ``path``."""
    name, is_package = _module_name(path, package)
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "esc_pulumi"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "esc_pulumi":
                continue
            if node.module is None or target == "esc_pulumi":
                # `from . import x` / `from esc_pulumi import x`: x may be a subpackage
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    is_module = (package.parent / sub.replace(".", "/")).exists() or (
                        package.parent / (sub.replace(".", "/") + ".py")
                    ).exists()
                    found.append((node.lineno, sub if is_module else target))
            else:
                found.append((node.lineno, target))
    return found


def _violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__main__.py":
            continue  # `python -m` entry points stand above every layer
        name, _ = _module_name(path, package)
        mine = _layer(name)
        for line, target in _imports(path, package):
            theirs = _layer(target)
            if theirs == mine or theirs not in RANKS or mine not in RANKS:
                if theirs not in RANKS or mine not in RANKS:
                    bad.append(f"{path.relative_to(package.parent)}:{line}: unknown layer in {target}")
                continue
            if RANKS[theirs] > RANKS[mine] or (RANKS[theirs] == RANKS[mine] and theirs != mine):
                bad.append(f"{path.relative_to(package.parent)}:{line}: {mine or 'esc_pulumi'} imports {target}")
    return bad


def test_every_module_belongs_to_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    tops = {t for t in tops if not t.startswith(".")}
    assert tops - {"__init__"} <= set(RANKS), sorted(tops - set(RANKS) - {"__init__"})


def test_imports_go_down_the_layers():
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    # The checker itself, on a package of its own: the engine importing the workspace, and the
    # server importing the CLI, are reported; the CLI importing the server is not.
    root = tmp_path / "esc_pulumi"
    for folder in ("esc", "workspace", "server", "cli"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "workspace" / "plan.py").write_text("")
    (root / "esc" / "eval.py").write_text("import json\nfrom ..workspace import plan\n")
    (root / "server" / "app.py").write_text("from esc_pulumi.cli import main\n")
    (root / "cli" / "serve.py").write_text("from ..server import app\nfrom .. import esc\n")
    assert _violations(root) == [
        "esc_pulumi/esc/eval.py:2: esc imports esc_pulumi.workspace",
        "esc_pulumi/server/app.py:1: server imports esc_pulumi.cli",
    ]
