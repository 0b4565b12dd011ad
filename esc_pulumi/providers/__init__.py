"""Real ``fn::open`` providers, published through the ``esc_pulumi.providers`` entry points.

- ``aws-login``, ``aws-secrets``, ``aws-parameter-store`` (:mod:`.aws`), on boto3: the ``aws``
  extra, ``pip install 'esc_pulumi[aws]'``.

Every default :class:`esc_pulumi.esc.ProviderRegistry` finds them (``esc_pulumi.load()``,
``esc-pulumi open``/``check``/``run`` and ``esc-pulumi serve`` alike), the way it finds a
third-party package's. An application that wants its own settings registers instances itself:

Example::

    from esc_pulumi.esc import ProviderRegistry
    from esc_pulumi.providers.aws import AwsLogin

    registry = ProviderRegistry({"aws-login": AwsLogin(token_source=lambda request: my_token())})
    esc_pulumi.load(backend=LocalBackend(Path("envs"), providers=registry))

Importing this package (or :mod:`.aws`) imports no cloud SDK: ``esc-pulumi check`` reads the
input schemas offline, and an open without boto3 is a diagnostic naming the extra.
"""
from __future__ import annotations
