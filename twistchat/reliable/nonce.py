"""The AEAD nonce of Noise §12.3 for ChaChaPoly, for the handshake's cipher
states (``noise``) and for every packet (``protection``, whose nonce is the
packet number). Its own compiled module: made for every packet sealed and
opened, it was a Python call from the compiled hot path (issue 16), and
``noise`` (pure: it runs once a session) cannot be imported by
``protection`` both ways."""

from __future__ import annotations

from typing import Final

NONCE_PREFIX: Final = bytes(4)
"""32 zero bits before the 64-bit counter."""


def aead_nonce(n: int) -> bytes:
    """Noise §12.3 for ChaChaPoly: 32 zero bits, then n as 64-bit little-endian."""
    return NONCE_PREFIX + n.to_bytes(8, "little")
