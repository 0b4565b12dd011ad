"""boto3 for the AWS providers: imported on first use, clients made the SDK's own way.

Everything that touches boto3 goes through this module, so that

- ``import esc_pulumi.providers.aws`` (which ``esc-pulumi check`` does to learn the input
  schemas) needs no boto3, and an open without it says which extra to install;
- endpoints, retries and profiles follow boto3's own configuration (``AWS_ENDPOINT_URL``,
  ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_MAX_ATTEMPTS``, ``~/.aws/config``...): a local emulator
  is a setting, not a code path;
- every call runs with the SDK's debug logging guarded (:func:`call_guard`) and every failure
  becomes one line of text with the call's plaintexts masked (:func:`describe`).

Example::

    with call_guard(creds.plaintexts()) as known:
        client = make_client("aws-secrets", "secretsmanager", "us-east-1", creds)
        value = client.get_secret_value(SecretId="api-key")["SecretString"]
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..esc import ProviderError
from ._hygiene import _Tracking, guarded_sdk_logs, scrub

if TYPE_CHECKING:  # pragma: no cover
    from .aws import AwsCredentials

# The loggers boto3 writes requests, responses and signing material to (at DEBUG).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

INSTALL_HINT = "boto3 is not installed: install the aws extra (pip install 'esc_pulumi[aws]')"

_lock = threading.Lock()
# One boto3 session for every open: building a botocore session registers some thousand event
# handlers (tens of ms), and the session's data loader caches the parsed service models and
# endpoint rules (about 0.3 s for the first client of a service, 20 ms after). Nothing else in
# it is shared between opens: every client gets the open's own credentials and region, and the
# settings boto3 reads from the environment (AWS_ENDPOINT_URL..., AWS_REGION, AWS_MAX_ATTEMPTS)
# are read again for each client; the AWS config files and AWS_PROFILE are read once per
# process, as by boto3's own default session.
_shared: Any = None


def require_boto3(provider: str) -> Any:
    """The ``boto3`` module, or a :class:`ProviderError` naming the extra to install."""
    try:
        import boto3
        import botocore.session  # noqa: F401  (boto3 without botocore is a broken install)
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:  # raised outside the ``except``: the ImportError is no part of the diagnostic
        raise ProviderError(f"{provider}: {INSTALL_HINT}")
    return boto3


def _session(boto3: Any) -> Any:
    """The process's boto3 session (made on first use; callers hold ``_lock``)."""
    global _shared
    if _shared is None:
        _shared = boto3.session.Session()
    return _shared


def make_client(
    provider: str,
    service: str,
    region: str | None,
    creds: "AwsCredentials | None",
    default_region: str | None = None,
) -> Any:
    """A boto3 client for ``service`` in ``region`` (else boto3's configured region, else
    ``default_region``): signed with ``creds``, or unsigned when ``None``
    (``AssumeRoleWithWebIdentity`` is an unsigned call: no credentials are looked up, so
    nothing reaches for the instance metadata service either)."""
    boto3 = require_boto3(provider)
    from botocore import UNSIGNED
    from botocore.config import Config

    with _lock:  # botocore sessions are not thread-safe: one client is made at a time
        session = _session(boto3)
        region = region or session.region_name or default_region
        if creds is None:
            return session.client(service, region_name=region, config=Config(signature_version=UNSIGNED))
        return session.client(
            service,
            region_name=region,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token or None,
        )


@contextmanager
def call_guard(plaintexts: Iterable[str]) -> Iterator[_Tracking]:
    """The SDK's debug logging silenced, and ``plaintexts`` masked in its other records,
    for the duration of a provider call. Yields the list of plaintexts to extend."""
    with guarded_sdk_logs(SDK_LOGGERS, plaintexts) as known:
        yield known


def attempt(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """``(fn(...), None)``, or ``(None, the exception)``: callers build their diagnostic and
    raise it *outside* any ``except`` block, so that the SDK's exception (and what it holds:
    request parameters, the response) is not chained to the diagnostic's exception."""
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # every SDK failure becomes a diagnostic
        return None, e


def describe(e: BaseException, plaintexts: Iterable[str]) -> str:
    """One line for an SDK failure: ``<AWS error code>: <message>`` for an AWS error response,
    ``<exception type>: <message>`` otherwise; every plaintext masked.

    Example::

        describe(client_error, [])
        # "ResourceNotFoundException: Secrets Manager can't find the specified secret."
    """
    response = getattr(e, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    if isinstance(error, dict) and (error.get("Code") or error.get("Message")):
        code = str(error.get("Code") or type(e).__name__)
        message = str(error.get("Message") or "")
        if code.isdigit():
            # botocore could not parse the error body (an XML answer to a JSON service, from
            # an emulator or a proxy): only an HTTP status as the code, the raw body as the
            # message. Take the AWS error out of the body when it holds one.
            code, message = _error_in_body(code, message)
        message = " ".join(message.split())
        text = f"{code}: {message}" if message else code
    else:
        message = " ".join(str(e).split())  # botocore's validation reports span lines
        text = f"{type(e).__name__}: {message}" if message else type(e).__name__
    if len(text) > _MAX_TEXT:  # an HTML error page, say: the start says what it is
        text = text[: _MAX_TEXT - 3] + "..."
    return _redact_signing(scrub(text, plaintexts))


_MAX_TEXT = 500


def _error_in_body(status: str, body: str) -> tuple[str, str]:
    """(code, message) of an AWS XML error body; (``HTTP <status>``, the body) otherwise."""
    import re

    code = re.search(r"<Code>([^<]*)</Code>", body)
    message = re.search(r"<Message>([^<]*)</Message>", body)
    if code:
        return code.group(1).strip(), (message.group(1) if message else "")
    return f"HTTP {status}", body


def _redact_signing(text: str) -> str:
    """AWS quotes the Authorization header in some signature errors (``Credential=AKIA.../``,
    ``Signature=...``): mask such fields even when the plaintext is not known to us."""
    import re

    text = re.sub(r"(Credential=)[^,\s]+", r"\1[secret]", text)
    text = re.sub(r"(Signature=)[0-9a-fA-F]+", r"\1[secret]", text)
    return re.sub(r"(X-Amz-Security-Token=)[^&\s]+", r"\1[secret]", text)


def fail(text: str, plaintexts: Iterable[str]) -> ProviderError:
    """The provider's diagnostic, with every plaintext masked (a name the user wrote could
    quote a credential by mistake; a service message could too)."""
    return ProviderError(scrub(text, plaintexts))
