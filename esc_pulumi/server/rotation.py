"""``POST /api/esc/environments/{org}/{project}/{env}/rotate``: the server rotates an
environment's ``fn::rotate`` secrets and records the new states as a new revision.

The reference API has no such route; ours is modelled on what Pulumi Cloud's ``esc env
rotate`` does. The request body is optional: ``{"paths": ["db.password", ...]}`` selects calls
(property paths relative to ``values``, as ``esc-pulumi open PATH`` reads them); without paths
every ``fn::rotate`` of the definition is rotated. The answer::

    {"preRotationRevision": 3, "postRotationRevision": 4,
     "rotated": ["db.password"], "diagnostics": [...]}

The work runs in an evaluation worker (:func:`job_rotate`): a check first, which calls no
rotator, so that a definition with errors fails before any credential has been changed; then
the rotation; then the new states written into the stored definition (layout and comments
kept, secrets encrypted for this environment with its organisation's key). The handler then saves the text as a new
revision, conditional on the revision that was rotated still being the latest (``If-Match`` in
the store): a definition changed meanwhile is not overwritten. Nothing is saved when anything
fails, and every attempt is audited (``environment.rotate``, or ``environment.rotate.failed``
naming the calls whose rotators ran: their credentials may have changed).

Example::

    outcome = job_rotate(server, "acme", actor, env_id, 3, "app/db", ["password"])
    outcome.text      # the definition with the new state, or None (outcome.diagnostics say why)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..esc import Diagnostic, load_definition, rotate
from ..esc.diagnostics import error as error_diagnostic
from ..esc.rotation import format_rotate_path, parse_rotate_path, rotate_sites
from ..secrets.definitions import apply_state_patches
from ..errors import DefinitionError
from .store import TokenRecord

if TYPE_CHECKING:
    from .app import EscServer

__all__ = ["RotateOutcome", "job_rotate", "rotate_paths"]

# More selected calls than any definition holds is a malformed request, not work to do.
MAX_PATHS = 1000


@dataclass
class RotateOutcome:
    """What a rotation job sends back. ``text``: the new definition (secrets encrypted), None
    when nothing is to be saved; ``rotated``: the property paths whose rotators ran (and
    succeeded, when ``text`` is set); ``failed``: whether the diagnostics hold errors."""

    diagnostics: list[Diagnostic]
    text: str | None = field(default=None, repr=False)
    rotated: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def rotate_paths(data: dict[str, Any]) -> list[str]:
    """The ``paths`` of a rotate request body, checked (``ValueError`` says what is wrong)."""
    paths = data.get("paths", [])
    if paths is None:
        return []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError("'paths' must be a list of property paths (strings)")
    if len(paths) > MAX_PATHS:
        raise ValueError(f"'paths' holds {len(paths)} paths: at most {MAX_PATHS}")
    for p in paths:
        parse_rotate_path(p)
    return paths


def job_rotate(server: "EscServer", org: str, actor: TokenRecord, env_id: int, number: int, name: str,
               paths: list[str]) -> RotateOutcome:
    """Rotate revision ``number`` of environment ``name`` (``project/env``); see the module."""
    rev = server.store.get_revision_by_id(env_id, number)  # type: ignore[attr-defined]
    if rev is None:  # deleted meanwhile
        return RotateOutcome([error_diagnostic(f"environment {name} has no revision {number}")])
    decl, load_diags = load_definition(rev.yaml, name)
    if decl is None or any(d.is_error for d in load_diags):
        return RotateOutcome(list(load_diags) or [error_diagnostic(f"environment {name} is empty: nothing to rotate")])
    sites = rotate_sites(decl)
    if not sites:
        return RotateOutcome([error_diagnostic(f"environment {name} has no fn::rotate: nothing to rotate")])
    wanted = []
    for p in paths:
        keys = parse_rotate_path(p)
        if keys not in sites:
            calls = ", ".join(format_rotate_path(k) for k in sites)
            return RotateOutcome([error_diagnostic(f"environment {name} has no fn::rotate at {p!r}; its calls: {calls}")])
        wanted.append(keys)
    # A check first, which calls no rotator: errors stop the rotation before any credential
    # has been changed that could then not be recorded.
    project, _, env = name.partition("/")
    _, check_diags = server.evaluate(org, decl, "check", actor, (project, env))
    if any(d.is_error for d in check_diags):
        return RotateOutcome(list(load_diags) + check_diags)
    result = rotate(decl, paths=wanted or None, **server.engine_args(org, decl, actor, (project, env)))
    diags = list(load_diags) + result.diagnostics
    ran = tuple(format_rotate_path(p.path) for p in result.patches)
    if result.failed or not result.patches:
        return RotateOutcome(diags, None, ran)
    try:
        # New secrets are encrypted for this environment, as a save would (its binding).
        sealer = server.keyring.for_env(org, project, env, create=True)
        text = apply_state_patches(rev.yaml, result.patches, sealer.encrypt)
    except DefinitionError as e:  # names paths, never values
        return RotateOutcome(diags + [error_diagnostic(str(e))], None, ran)
    return RotateOutcome(diags, text, ran)
