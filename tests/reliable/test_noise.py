"""Our Noise_NX_25519_ChaChaPoly_SHA256 composition against an independent
implementation, the ``noiseprotocol`` package: the same bytes from the same
keys, and each side completes a handshake with the other's peer."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from noise.connection import Keypair, NoiseConnection

from twistchat.reliable.noise import (
    PROTOCOL_NAME, CipherState, HandshakeError, NXInitiator, NXResponder, public_bytes,
)

PROLOGUE = b"twistchat test prologue"

pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs is already set")


def key(seed: int) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def raw(private: X25519PrivateKey) -> bytes:
    return private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def reference(initiator: bool, static: X25519PrivateKey | None, ephemeral: X25519PrivateKey):
    peer = NoiseConnection.from_name(PROTOCOL_NAME)
    peer.set_as_initiator() if initiator else peer.set_as_responder()
    peer.set_prologue(PROLOGUE)
    if static is not None:
        peer.set_keypair_from_private_bytes(Keypair.STATIC, raw(static))
    peer.set_keypair_from_private_bytes(Keypair.EPHEMERAL, raw(ephemeral))
    peer.start_handshake()
    return peer


def test_same_keys_same_bytes_as_the_reference_implementation():
    server_static, client_e, server_e = key(1), key(2), key(3)
    ours_client = NXInitiator(PROLOGUE, ephemeral=client_e)
    ours_server = NXResponder(PROLOGUE, server_static, ephemeral=server_e)
    their_client = reference(True, None, client_e)
    their_server = reference(False, server_static, server_e)

    message_1 = ours_client.write_message_1(b"client parameters")
    assert message_1 == their_client.write_message(b"client parameters")
    assert ours_server.read_message_1(message_1) == b"client parameters"
    assert their_server.read_message(message_1) == b"client parameters"

    message_2, (c2s, s2c) = ours_server.write_message_2(b"server parameters")
    assert message_2 == their_server.write_message(b"server parameters")
    payload, keys = ours_client.read_message_2(message_2)
    assert payload == b"server parameters" and keys == (c2s, s2c)
    assert their_client.read_message(message_2) == b"server parameters"
    assert ours_client.remote_static == public_bytes(server_static)
    assert ours_client.handshake_hash == ours_server.handshake_hash == their_client.get_handshake_hash()

    # The split keys are the reference's transport keys, direction by direction.
    assert CipherState(c2s).encrypt_with_ad(b"", b"to server") == their_client.encrypt(b"to server")
    assert CipherState(s2c).encrypt_with_ad(b"", b"to client") == their_server.encrypt(b"to client")


def test_fresh_keys_interoperate_both_ways():
    server_static = X25519PrivateKey.generate()
    # our client, their server
    ours = NXInitiator(PROLOGUE)
    theirs = NoiseConnection.from_name(PROTOCOL_NAME)
    theirs.set_as_responder()
    theirs.set_prologue(PROLOGUE)
    theirs.set_keypair_from_private_bytes(Keypair.STATIC, raw(server_static))
    theirs.start_handshake()
    assert theirs.read_message(ours.write_message_1(b"hi")) == b"hi"
    payload, (c2s, _) = ours.read_message_2(theirs.write_message(b"yo"))
    assert payload == b"yo" and theirs.decrypt(CipherState(c2s).encrypt_with_ad(b"", b"x")) == b"x"
    # their client, our server
    theirs = NoiseConnection.from_name(PROTOCOL_NAME)
    theirs.set_as_initiator()
    theirs.set_prologue(PROLOGUE)
    theirs.start_handshake()
    server = NXResponder(PROLOGUE, server_static)
    assert server.read_message_1(theirs.write_message(b"hi")) == b"hi"
    message_2, (_, s2c) = server.write_message_2(b"yo")
    assert theirs.read_message(message_2) == b"yo"
    assert theirs.decrypt(CipherState(s2c).encrypt_with_ad(b"", b"y")) == b"y"


@pytest.mark.parametrize("where", [0, 33, 70, 90])
def test_a_modified_second_message_is_refused(where):
    server = NXResponder(PROLOGUE, key(1))
    client = NXInitiator(PROLOGUE)
    server.read_message_1(client.write_message_1(b""))
    message_2, _ = server.write_message_2(b"server parameters")
    tampered = bytearray(message_2)
    tampered[where % len(tampered)] ^= 0x01
    with pytest.raises(HandshakeError):
        client.read_message_2(bytes(tampered))


def test_a_modified_first_message_makes_the_second_fail_for_the_client():
    """Message 1 travels in clear, but it is hashed: a changed payload gives
    the server another transcript, and the client refuses its answer."""
    client = NXInitiator(PROLOGUE)
    message_1 = bytearray(client.write_message_1(b"max_message_size=65536"))
    message_1[-1] ^= 0x01
    server = NXResponder(PROLOGUE, key(1))
    server.read_message_1(bytes(message_1))
    message_2, _ = server.write_message_2(b"")
    with pytest.raises(HandshakeError):
        client.read_message_2(message_2)


def test_another_prologue_does_not_complete():
    client = NXInitiator(b"cookie A")
    server = NXResponder(b"cookie B", key(1))
    server.read_message_1(client.write_message_1(b""))
    message_2, _ = server.write_message_2(b"")
    with pytest.raises(HandshakeError):
        client.read_message_2(message_2)
