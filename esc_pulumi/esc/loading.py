"""Definition text → environment declaration: the syntax and expression stages together."""
from __future__ import annotations

from ._gc import collector_paused
from .ast import EnvironmentDecl, parse_environment
from .diagnostics import Diagnostic
from .syntax import parse_yaml


def load_definition(text: str | bytes, name: str) -> tuple[EnvironmentDecl | None, list[Diagnostic]]:
    """Parse a definition. ``None`` comes back when there is nothing to evaluate: an empty
    document, or one that could not be loaded at all (then with error diagnostics).

    Example::

        decl, diags = load_definition("values:\\n  greeting: hello\\n", "dev")
        assert not diags and decl.values.keys == ("greeting",)
    """
    with collector_paused():
        # The reference's ranges (spec section 10): what diagnostics and traces show.
        node, diags = parse_yaml(text, name, reference=True)
        if node is None:
            return None, diags
        decl, more = parse_environment(name, node)
    return decl, diags + more
