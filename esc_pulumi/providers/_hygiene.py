"""Keeping a provider's plaintexts (credentials, secret values) out of texts and logs.

Two tools, both generic (nothing here knows AWS):

- :func:`scrub` replaces every known plaintext in a text that is about to leave the provider
  (a diagnostic); a cloud's error message may quote what it was sent.
- :func:`guarded_sdk_logs` silences a cloud SDK's own debug logging while a provider call runs:
  botocore logs every request and response body, and the signing headers, at ``DEBUG`` — so an
  application that turns on debug logging would otherwise find secret values and session
  tokens in its log. The guard is per call (a context variable): the application's own use of
  the SDK elsewhere, in other threads, or after the call logs as configured.

Example::

    with guarded_sdk_logs(("botocore", "boto3", "urllib3"), [secret_key]):
        client.get_secret_value(SecretId="api-key")    # botocore's debug records dropped
    scrub("bad key AKIA123", ["AKIA123"])              # 'bad key [secret]'
"""
from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

MASK = "[secret]"
# Shorter plaintexts are not masked in text: replacing every "ab" would garble the message and
# hide nothing (the same threshold as the masking of `esc-pulumi run`).
MIN_MASKED = 3

# The plaintexts of the provider call running in this context (None: no call is running).
_IN_CALL: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "esc_pulumi_provider_call", default=None
)


def scrub(text: str, plaintexts: Iterable[str]) -> str:
    """``text`` with every plaintext (of :data:`MIN_MASKED` characters or more) replaced by
    ``[secret]``, longest first, so that a plaintext containing another is masked whole."""
    for p in sorted({p for p in plaintexts if len(p) >= MIN_MASKED}, key=len, reverse=True):
        text = text.replace(p, MASK)
    return text


class _SdkLogGuard(logging.Filter):
    """Drops an SDK's records below WARNING during a provider call (they echo requests and
    responses), and masks the call's plaintexts in the records it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        plaintexts = _IN_CALL.get()
        if plaintexts is None:
            return True
        if record.levelno < logging.WARNING:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format cannot be checked: drop it
            return False
        cleaned = scrub(message, plaintexts)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info or record.exc_text:
            # A traceback's text is built later, by the handler, from the exception: it may
            # quote anything; the message says what happened.
            record.exc_info, record.exc_text = None, None
        return True


_GUARD = _SdkLogGuard()
# (families, size of the logger table) at the last scan: the table only grows, so an unchanged
# size means no logger to add (the scan is skipped on every call after the first).
_scanned: tuple[tuple[str, ...], int] | None = None


def _attach(families: Sequence[str]) -> None:
    """Put the guard on every existing logger of the SDK's families. Logger filters apply to
    the records created on that logger only (not to its children's), hence one per logger;
    SDK modules create their loggers when imported, which happens before a call is made."""
    global _scanned
    manager = logging.Logger.manager
    key = (tuple(families), len(manager.loggerDict))
    if _scanned == key:
        return
    loggers = [logging.getLogger(f) for f in families]
    loggers += [
        obj
        for name, obj in list(manager.loggerDict.items())
        if isinstance(obj, logging.Logger) and name.split(".", 1)[0] in families
    ]
    for logger in loggers:
        if _GUARD not in logger.filters:
            logger.addFilter(_GUARD)
    _scanned = (tuple(families), len(manager.loggerDict))


@contextmanager
def guarded_sdk_logs(families: Sequence[str], plaintexts: Iterable[str]) -> Iterator["_Tracking"]:
    """Within the block, the loggers of ``families`` (top-level logger names such as
    ``botocore``) log nothing below WARNING, and mask ``plaintexts`` in what they do log.

    Yields the list of plaintexts: append to it (a secret value just received) and the rest of
    the block masks that too.
    """
    known = _Tracking(p for p in plaintexts if p)
    _attach(families)
    token = _IN_CALL.set(tuple(known))
    try:
        yield known
    finally:
        _IN_CALL.reset(token)


class _Tracking(list):
    """The plaintexts of a guarded block; appending one updates what the guard masks."""

    def __repr__(self) -> str:
        return f"<{len(self)} plaintexts>"

    def append(self, item: str) -> None:  # type: ignore[override]
        if item:
            super().append(item)
            _IN_CALL.set(tuple(self))

    def reattach(self, families: Sequence[str]) -> None:
        """Guard loggers created since the block began (an SDK module imported lazily)."""
        _attach(families)


def secret_texts(value: Any) -> list[str]:
    """The text of every secret string inside an evaluated ``esc.Value`` (inherited
    secrecy included): what a provider's diagnostics must never quote.

    Example::

        secret_texts(from_plain({"a": Value("s3cr3t", secret=True), "b": "plain"}))   # ['s3cr3t']
    """
    out: list[str] = []
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:  # iterative: inputs may nest deeply
        v, inherited = stack.pop()
        secret = inherited or bool(getattr(v, "secret", False))
        r = getattr(v, "repr", None)
        if getattr(v, "unknown", False):
            continue
        if isinstance(r, dict):
            stack.extend((c, secret) for c in r.values())
        elif isinstance(r, list):
            stack.extend((c, secret) for c in r)
        elif secret and isinstance(r, str):
            out.append(r)
    return out
