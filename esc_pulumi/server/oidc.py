"""The server as an OIDC issuer: ``esc-pulumi serve --issuer-url URL``.

``aws-login``'s ``oidc`` mode exchanges an OIDC token for a role's session (STS
``AssumeRoleWithWebIdentity``). Pulumi Cloud signs that token itself
(``https://api.pulumi.com/oidc``); this server does the same at its public URL:

- a signing key, RSA 2048, RS256, in ``<data>/oidc-signing.pem`` (PKCS#8 PEM, mode 0600,
  created with the data folder's first start with ``--issuer-url``);
- ``<issuer path>/.well-known/openid-configuration`` (the discovery document) and
  ``<issuer path>/.well-known/jwks.json`` (the public keys, each with its ``kid``: the RFC 7638
  thumbprint of the key), unauthenticated, as an OIDC relying party (AWS IAM) fetches them;
- tokens that live :data:`TOKEN_LIFETIME` (5 minutes): the token is exchanged the moment it is
  minted, and the role's session lasts the login's ``duration`` independently of the token, so
  a longer life would only widen what a leaked token could do. Claims: ``iss`` (the issuer
  URL), ``aud`` and ``sub`` as Pulumi Cloud sets them (``aws:<org>``;
  ``pulumi:environments:org:<org>:env:<project>/<env>``, or the ``subjectAttributes`` form;
  see :class:`esc_pulumi.providers.aws.OidcTokenRequest`), ``iat``, ``nbf``, ``exp``, ``jti``.

Why a file next to the server key rather than the key encrypted in the store: the server key
already lives as a file beside the data (or where ``--key-file`` says), so the signing key has
the same protection (a 0600 file in the 0700 data folder) and the same backup story, it can be
rotated by replacing one file without touching the database, and an operator can hand the same
key to a second server behind a load balancer. Encrypting it with the server key in the store
would add nothing while both sit in the same folder.

Rotation: move ``oidc-signing.pem`` to ``oidc-signing.previous.pem`` and restart; a new key is
made and signs from then on, and the JWKS lists both (tokens signed before stay verifiable until
they expire, and relying parties that cached the JWKS see the new ``kid`` on their next fetch).
Delete the previous file once its tokens have expired (5 minutes).

The engine never sees the key: :meth:`OidcIssuer.token_source` is an
:data:`esc_pulumi.providers.aws.TokenSource` that the server registers with its ``aws-login``.

Example::

    issuer = OidcIssuer.load("https://esc.example.com", Path("esc-data"), create=True)
    issuer.discovery()["jwks_uri"]        # 'https://esc.example.com/.well-known/jwks.json'
    token = issuer.mint(subject="pulumi:environments:org:acme:env:app/prod", audience="aws:acme")
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import stat
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EscError
from ..esc import ProviderError

__all__ = [
    "ALGORITHM",
    "PREVIOUS_KEY_FILE",
    "SIGNING_KEY_FILE",
    "TOKEN_LIFETIME",
    "OidcIssuer",
    "SigningKey",
    "check_issuer_url",
    "no_issuer",
]

log = logging.getLogger("esc_pulumi.server.oidc")

SIGNING_KEY_FILE = "oidc-signing.pem"
PREVIOUS_KEY_FILE = "oidc-signing.previous.pem"
ALGORITHM = "RS256"
TOKEN_LIFETIME = 300.0
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


def check_issuer_url(text: str) -> str:
    """The issuer URL without a trailing ``/``; :class:`EscError` saying what is wrong.

    ``https://`` (AWS IAM accepts only https issuers); ``http://`` only for a loopback host,
    for tests on one machine. No query, fragment or user info (the OIDC discovery rules).

    Example::

        check_issuer_url("https://esc.example.com/oidc/")   # 'https://esc.example.com/oidc'
    """
    url = text.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("https", "http") or not host:
        raise EscError(f"--issuer-url {text!r} is not a URL: give the server's public URL, https://host[/path]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise EscError(f"--issuer-url {text!r}: an issuer URL has no query, fragment or user info")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise EscError(f"--issuer-url {text!r}: an issuer must be https:// (AWS fetches its keys over TLS); "
                       "http:// is accepted for 127.0.0.1 and localhost only")
    return url.rstrip("/")


@dataclass(frozen=True, eq=False, repr=False)
class SigningKey:
    """An RSA private key and its ``kid``. Its ``repr`` shows the ``kid`` only, and it does not
    pickle (the private key stays in the process that read it).

    Example::

        key = SigningKey.generate()
        key.jwk()["kid"] == key.kid
    """

    kid: str
    _private: Any = field(repr=False)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SigningKey cannot be pickled")

    @classmethod
    def generate(cls) -> "SigningKey":
        from cryptography.hazmat.primitives.asymmetric import rsa

        return cls.of(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def of(cls, private: Any) -> "SigningKey":
        numbers = private.public_key().public_numbers()
        # RFC 7638: the thumbprint of the required members, in order, without spaces.
        canonical = json.dumps({"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)},
                               separators=(",", ":"), sort_keys=True)
        return cls(_b64(hashlib.sha256(canonical.encode()).digest()), private)

    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (what the JWKS lists)."""
        numbers = self._private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": self.kid,
                "n": _uint(numbers.n), "e": _uint(numbers.e)}

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return self._private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def read_signing_key(path: Path) -> SigningKey:
    """The RSA key in ``path`` (PKCS#8 or PKCS#1 PEM); :class:`EscError` naming the file, never
    quoting it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EscError(f"cannot read the OIDC signing key {path}: {e.strerror or type(e).__name__}") from None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        private = None
    del data
    if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 2048:
        raise EscError(f"the OIDC signing key {path} is not an unencrypted RSA private key (PEM, 2048 bits "
                       f"or more): move it away to have the server make a new one")
    try:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("the OIDC signing key %s is readable by others than its owner: chmod 600 it", path)
    except OSError:
        pass
    return SigningKey.of(private)


def create_signing_key(path: Path) -> SigningKey:
    """A new key written to ``path`` (0600; O_EXCL: of two servers starting at once, one writes
    and the other reads what it wrote)."""
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_signing_key(path)
    with os.fdopen(fd, "wb") as f:
        f.write(key.pem())
        f.flush()
        os.fsync(f.fileno())
    return key


@dataclass(frozen=True, eq=False, repr=False)
class OidcIssuer:
    """Signs the tokens, and serves what relying parties need to verify them.

    ``keys[0]`` signs; every key is published in the JWKS. Made with :meth:`load`.
    """

    url: str
    keys: tuple[SigningKey, ...]
    lifetime: float = TOKEN_LIFETIME

    def __repr__(self) -> str:
        return f"OidcIssuer({self.url!r}, kid={self.keys[0].kid!r})"

    def __reduce__(self) -> Any:
        raise TypeError("OidcIssuer cannot be pickled")

    @classmethod
    def load(cls, url: str, data_dir: Path, create: bool = True, key_file: Path | None = None) -> "OidcIssuer":
        """The issuer at ``url`` with the signing key of ``data_dir`` (``key_file`` if given),
        created when missing and ``create``; the previous key, when there is one, is published
        too (see the module docstring on rotation)."""
        path = Path(key_file) if key_file is not None else Path(data_dir) / SIGNING_KEY_FILE
        if path.exists() or not create:
            current = read_signing_key(path)
        else:
            current = create_signing_key(path)
        keys = [current]
        previous = path.with_name(PREVIOUS_KEY_FILE) if key_file is None else None
        if previous is not None and previous.exists():
            old = read_signing_key(previous)
            if old.kid != current.kid:
                keys.append(old)
        return cls(check_issuer_url(url), tuple(keys))

    @property
    def path(self) -> str:
        """The issuer URL's path ('' at the host's root): the discovery document is under it."""
        return urllib.parse.urlsplit(self.url).path.rstrip("/")

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata (OpenID Connect Discovery 1.0, section 3)."""
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": list(CLAIMS),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def mint(self, subject: str, audience: str, lifetime: float | None = None, now: float | None = None) -> str:
        """A signed token (compact JWS) for ``subject`` and ``audience``, valid from now for
        ``lifetime`` seconds (at most :attr:`lifetime`)."""
        key = self.keys[0]
        issued = int(time.time() if now is None else now)
        life = self.lifetime if lifetime is None else min(lifetime, self.lifetime)
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}
        claims = {"iss": self.url, "sub": subject, "aud": audience, "iat": issued, "nbf": issued,
                  "exp": issued + int(life), "jti": secrets.token_hex(16)}
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}"
        token = f"{signing_input}.{_b64(key.sign(signing_input.encode('ascii')))}"
        # What was issued, for the operator: never the token itself.
        log.info("issued an OIDC token: sub %s, aud %s, jti %s, expires in %d s", subject, audience,
                 claims["jti"], int(life))
        return token

    def token_source(self, request: Any) -> str:
        """The :data:`~esc_pulumi.providers.aws.TokenSource` of the server's ``aws-login``."""
        if not request.audience or not request.subject:
            raise ProviderError(
                f'aws-login: oidc: no OIDC token for role "{request.role_arn}": the token\'s subject names the '
                "environment that holds the login, and a definition opened anonymously has no name: store it "
                "as <project>/<env> (or import one that holds the login)")
        return self.mint(request.subject, request.audience)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def no_issuer(request: Any) -> str:
    """The token source of a server started without ``--issuer-url``: the login fails, saying
    how to make the server an issuer (a server never hands out a token from its own
    environment: every organisation would share it)."""
    raise ProviderError(
        f'aws-login: oidc: no OIDC token for role "{request.role_arn}": this server is not an OIDC issuer: '
        "start it with esc-pulumi serve --issuer-url <its public https URL>, and register that URL as "
        "an OIDC identity provider of the AWS account")
