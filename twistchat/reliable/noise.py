"""
The handshake of the Noise Protocol Framework (revision 34) that twistchat
runs inside CONNECT and ACCEPT: ``Noise_NX_25519_ChaChaPoly_SHA256``.

Why this one (docs/PROTOCOL.md §5 says it for implementers):

- NX: the client has no static key (a nick's credential is its identity,
  checked inside the encrypted session); the server has a long-term key that
  travels encrypted in the second message, which the client pins as ssh pins
  host keys. One round trip: ``-> e`` in CONNECT, ``<- e, ee, s, es`` in
  ACCEPT. Both sides use fresh ephemeral keys: forward secrecy.
- 25519, ChaChaPoly: fast in software on every platform, constant time.
- SHA256 rather than BLAKE2s: every language's standard crypto library has
  it (and its HMAC), so a compatible client needs nothing exotic.

Only the composition is ours; every primitive comes from ``cryptography``
(X25519, ChaCha20-Poly1305, SHA-256, HMAC). The composition is checked
against the independent ``noiseprotocol`` package in
tests/reliable/test_noise.py.
"""

from __future__ import annotations

import copy

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from twistchat.reliable.nonce import aead_nonce

PROTOCOL_NAME = b"Noise_NX_25519_ChaChaPoly_SHA256"
HASHLEN = 32
DHLEN = 32
TAGLEN = 16
MAX_NONCE = 2**64 - 1
"""Noise §5.1: nonce 2^64-1 is reserved."""


class HandshakeError(Exception):
    """A handshake message failed to decrypt or had the wrong shape."""


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def hkdf(chaining_key: bytes, input_key_material: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise §4.3 HKDF (RFC 5869 extract-and-expand with HMAC-SHA256, empty info)."""
    temp_key = hmac_sha256(chaining_key, input_key_material)
    out, previous = [], b""
    for i in range(1, outputs + 1):
        previous = hmac_sha256(temp_key, previous + bytes((i,)))
        out.append(previous)
    return tuple(out)


class CipherState:
    """Noise §5.1: a key and a counter nonce (handshake messages only; packets
    use their packet number as nonce, see ``reliable/protection.py``)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = ChaCha20Poly1305(key) if key is not None else None
        self.key = key
        self.n = 0

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        ciphertext = self._aead.encrypt(aead_nonce(self.n), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        try:
            plaintext = self._aead.decrypt(aead_nonce(self.n), ciphertext, ad)
        except InvalidTag:
            raise HandshakeError("handshake message failed authentication") from None
        self.n += 1
        return plaintext


class SymmetricState:
    """Noise §5.2."""

    def __init__(self, protocol_name: bytes) -> None:
        self.h = protocol_name.ljust(HASHLEN, b"\0") if len(protocol_name) <= HASHLEN \
            else sha256(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, input_key_material, 2)
        self.cipher = CipherState(temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = sha256(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """The two transport keys: initiator-to-responder, responder-to-initiator."""
        return hkdf(self.ck, b"", 2)


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point gives the all-zero output
        raise HandshakeError("bad public key") from None


class NXInitiator:
    """The client: ``-> e`` then reads ``<- e, ee, s, es``."""

    def __init__(self, prologue: bytes, ephemeral: X25519PrivateKey | None = None) -> None:
        self._state = SymmetricState(PROTOCOL_NAME)
        self._state.mix_hash(prologue)
        self._e = ephemeral or X25519PrivateKey.generate()
        self.remote_static: bytes | None = None

    def write_message_1(self, payload: bytes) -> bytes:
        e_pub = public_bytes(self._e)
        self._state.mix_hash(e_pub)
        return e_pub + self._state.encrypt_and_hash(payload)  # no key yet: payload in clear

    def read_message_2(self, message: bytes) -> tuple[bytes, tuple[bytes, bytes]]:
        """The server's payload and the transport keys (client-to-server,
        server-to-client); the server's static key is in ``remote_static``."""
        message = bytes(message)
        if len(message) < DHLEN + DHLEN + TAGLEN + TAGLEN:
            raise HandshakeError("handshake message 2 too short")
        # Work on a copy: a forged message 2 must leave us able to read the real one.
        state = copy.copy(self._state)
        re = message[:DHLEN]
        state.mix_hash(re)
        state.mix_key(_dh(self._e, re))
        rs = state.decrypt_and_hash(message[DHLEN:DHLEN + DHLEN + TAGLEN])
        state.mix_key(_dh(self._e, rs))
        payload = state.decrypt_and_hash(message[DHLEN + DHLEN + TAGLEN:])
        self._state = state
        self.remote_static = rs
        return payload, state.split()

    @property
    def handshake_hash(self) -> bytes:
        return self._state.h


class NXResponder:
    """The server: reads ``-> e`` and writes ``<- e, ee, s, es``."""

    def __init__(self, prologue: bytes, static: X25519PrivateKey,
                 ephemeral: X25519PrivateKey | None = None) -> None:
        self._state = SymmetricState(PROTOCOL_NAME)
        self._state.mix_hash(prologue)
        self._s = static
        self._e = ephemeral or X25519PrivateKey.generate()
        self._re: bytes | None = None

    def read_message_1(self, message: bytes) -> bytes:
        message = bytes(message)
        if len(message) < DHLEN:
            raise HandshakeError("handshake message 1 too short")
        self._re = message[:DHLEN]
        self._state.mix_hash(self._re)
        return self._state.decrypt_and_hash(message[DHLEN:])

    def write_message_2(self, payload: bytes) -> tuple[bytes, tuple[bytes, bytes]]:
        """Message 2 and the transport keys (client-to-server, server-to-client)."""
        state = self._state
        e_pub = public_bytes(self._e)
        state.mix_hash(e_pub)
        state.mix_key(_dh(self._e, self._re))
        encrypted_static = state.encrypt_and_hash(public_bytes(self._s))
        state.mix_key(_dh(self._s, self._re))
        return e_pub + encrypted_static + state.encrypt_and_hash(payload), state.split()

    @property
    def handshake_hash(self) -> bytes:
        return self._state.h
