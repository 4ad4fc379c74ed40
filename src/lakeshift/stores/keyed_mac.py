"""HMAC-SHA256 under one key, many messages (Shared Key on every Azure request, SigV4 on
every S3 request): the key's inner and outer SHA-256 states are computed once and copied
per message (RFC 2104), so a signature costs the message's hashing only.  The one-shot
``hmac.digest`` sets the key up again each time (two more blocks hashed, and OpenSSL 3
looks the MAC and the digest up by name): ~31k instructions a signature, ~20k here."""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedMAC:
    """``hmac.digest(key, message, "sha256")``, with the key set up once.  A hot signer
    may inline ``digest`` (``inner``, ``outer``: the SHA-256 states after the key's padded
    block; never updated, only copied)."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self.inner = hashlib.sha256(key.translate(_IPAD))
        self.outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


#: Keys seen by ``mac_of``, set up (a process holds a few: one per account or secret).
_MACS: dict[bytes, KeyedMAC] = {}


def mac_of(key: bytes) -> KeyedMAC:
    """The ``KeyedMAC`` of ``key``, set up once (at most 16 kept)."""
    mac = _MACS.get(key)
    if mac is None:
        if len(_MACS) >= 16:
            _MACS.clear()
        _MACS[key] = mac = KeyedMAC(key)
    return mac
