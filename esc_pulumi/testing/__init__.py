"""esc_pulumi.testing: run a Pulumi Python program the way ``pulumi up`` runs it, offline, and
look at what it sent the engine.

:func:`run_program` starts an in-process fake engine (:class:`FakeEngine`: the resource
monitor and engine gRPC services on 127.0.0.1) and runs the project's program in a new Python
process exactly as the Pulumi language host starts it — its arguments, ``PULUMI_CONFIG`` and
``PULUMI_CONFIG_SECRET_KEYS``, the real SDK. Every resource registration, stack output and log
line is recorded in its wire form, so a test sees what the engine would see: which inputs were
secrets, what was exported, what was logged. :func:`cli_config` gives the config the Pulumi
CLI would pass for a stack.

Example::

    from esc_pulumi.testing import cli_config, run_program

    def test_the_password_stays_secret():
        config, secret_keys = cli_config("infra", "dev")
        run = run_program("infra", "dev", config=config, secret_keys=secret_keys).check()
        assert run.resource("db").secret_paths == ("password",)
        assert "dbPassword" in run.outputs.secret

``import esc_pulumi.testing`` is cheap: gRPC and the SDK are imported when a run starts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._wire import UNKNOWN, Unknown
    from .engine import DEFAULT_FEATURES, Deployment, FakeEngine, Recording
    from .host import cli_config, run_program
    from .results import LogEntry, ProgramFailed, ProgramRun, Resource, StackOutputs

_EXPORTS = {
    "run_program": "host",
    "cli_config": "host",
    "FakeEngine": "engine",
    "Deployment": "engine",
    "Recording": "engine",
    "DEFAULT_FEATURES": "engine",
    "ProgramRun": "results",
    "Resource": "results",
    "StackOutputs": "results",
    "LogEntry": "results",
    "ProgramFailed": "results",
    "UNKNOWN": "_wire",
    "Unknown": "_wire",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: the engine module imports grpc and the SDK's protos, which a test collecting this
    # module, or the program's own process, should not pay for until it runs something.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'esc_pulumi.testing' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
