"""The ciphertext envelope of ``fn::secret: {ciphertext: ...}``.

``base64("escx" || uint32 BE version=1 || payload || uint32 BE CRC-32/IEEE of all preceding bytes)``.
The payload is opaque here: the environment's store supplies the decrypter that opens it.
"""
from __future__ import annotations

import base64
import binascii
import struct
import zlib
from typing import Callable

MAGIC = b"escx"
VERSION = 1

Decrypter = Callable[[bytes], bytes]
"""Turns an envelope's payload into plaintext bytes; raises on failure."""


class EnvelopeError(ValueError):
    """A malformed envelope; the message is the reference's (``invalid header``, ``EOF``, ...)."""


def seal(payload: bytes) -> str:
    """Wrap an encrypted payload into the base64 envelope text."""
    body = MAGIC + struct.pack(">I", VERSION) + payload
    return base64.b64encode(body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)).decode("ascii")


def unseal(text: str) -> bytes:
    """The payload of an envelope, or :class:`EnvelopeError` saying what is wrong with it."""
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError(str(e)) from None
    if len(raw) < 12:
        raise EnvelopeError("EOF")
    if raw[:4] != MAGIC:
        raise EnvelopeError("invalid header")
    (version,) = struct.unpack(">I", raw[4:8])
    if version != VERSION:
        raise EnvelopeError("unsupported version")
    (crc,) = struct.unpack(">I", raw[-4:])
    if zlib.crc32(raw[:-4]) & 0xFFFFFFFF != crc:
        raise EnvelopeError("invalid checksum")
    return raw[8:-4]
