"""Credentials for an ESC host: ``PULUMI_ACCESS_TOKEN``, else the Pulumi CLI credentials file.

Example::

    access_token("https://api.pulumi.com", environ={"PULUMI_ACCESS_TOKEN": "pul-..."}).source
    # 'PULUMI_ACCESS_TOKEN'
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from ..esc._fast import Record


def is_http_url(url: str) -> bool:
    """Only http(s) URLs are ever used as an ESC host."""
    return url.startswith(("http://", "https://"))


def credentials_path(environ: Mapping[str, str]) -> Path:
    """Where the Pulumi CLI keeps its tokens."""
    if environ.get("PULUMI_CREDENTIALS_PATH"):
        return Path(environ["PULUMI_CREDENTIALS_PATH"]) / "credentials.json"
    if environ.get("PULUMI_HOME"):
        return Path(environ["PULUMI_HOME"]) / "credentials.json"
    return Path.home() / ".pulumi" / "credentials.json"


class Token(Record):
    """An access token and where it came from. ``repr`` never shows the token."""

    __slots__ = ("value", "source")
    value: str | None
    source: str

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, set={self.value is not None})"


def access_token(url: str, environ: Mapping[str, str]) -> Token:
    """``PULUMI_ACCESS_TOKEN``, else the credentials file's token for exactly this URL.

    The file's ``current`` entry is not used: on DIY setups it is a file:// or s3:// URL.
    """
    if environ.get("PULUMI_ACCESS_TOKEN"):
        return Token(environ["PULUMI_ACCESS_TOKEN"], "PULUMI_ACCESS_TOKEN")
    path = credentials_path(environ)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (missing)")
    except (OSError, ValueError) as e:
        # Reported when a token is needed, not here: a local backend never needs one.
        return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (unreadable: {type(e).__name__})")
    tokens = data.get("accessTokens") if isinstance(data, dict) else None
    if isinstance(tokens, dict):
        for candidate in (url, url.rstrip("/"), url.rstrip("/") + "/"):
            token = tokens.get(candidate)
            if isinstance(token, str) and token:
                return Token(token, f"{path} (token for {url})")
    return Token(None, f"PULUMI_ACCESS_TOKEN (unset) or {path} (no token for {url})")
