"""docs/PROTOCOL.md's byte examples are what the codec produces: the
document cannot drift from the code without this failing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from twistchat.reliable.config import SessionConfig
from twistchat.wire.packets import (
    Ack, Close, Cookie, Data, MessageFrame, Reset, Unreliable, Window, decode_packet,
    decode_plain_data, encode_frame, encode_frames, encode_packet,
)
from twistchat.wire.varint import encode_varint

DOC = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
CLIENT_CID, SERVER_CID = 0x0102030405060708, 0x1112131415161718


def in_doc(data: bytes) -> bool:
    flat = re.sub(r"\s+", " ", DOC)
    return data.hex(" ") in flat


@pytest.mark.parametrize("value", [37, 15293, 494878333, 151288809941952652])
def test_varint_examples(value):
    assert in_doc(encode_varint(value))


def test_packet_and_frame_examples():
    examples = [
        SessionConfig().transport_parameters().encode(),
        encode_packet(Cookie(CLIENT_CID, bytes(20)))[:10],
        encode_packet(Reset(SERVER_CID, bytes(16)))[:1],
        encode_frame(Ack(((95, 100), (80, 90)), 1000)),
        encode_frame(Close(4, "bye")),
        encode_frame(Unreliable(b"t")),
        encode_frame(Unreliable(b"t"), last=True),
        encode_frame(MessageFrame(9, b"abc", 1102, 2000)),
        encode_frame(Window(1 << 20)),
    ]
    for data in examples:
        assert in_doc(data), data.hex(" ")


def test_annotated_data_packet_example():
    block = DOC[DOC.index("15 11 12 13"):]
    block = block[:block.index("```")]
    hex_bytes = " ".join(line.split("   ")[0].strip() for line in block.splitlines())
    datagram = bytes.fromhex(hex_bytes)
    expected = Data(SERVER_CID, 1000, (Ack(((95, 100), (80, 90)), 1000),
                                       MessageFrame(7, b"hi"), MessageFrame(8, b"yo")))
    assert decode_plain_data(datagram) == expected
    assert encode_packet(expected) == datagram


def _doc_block(after: str) -> bytes:
    block = DOC[DOC.index(after):]
    block = block[block.index("```") + 3:]
    return bytes.fromhex(block[:block.index("```")])


def test_the_worked_handshake_example_is_what_the_code_sends():
    """docs/PROTOCOL.md §5.1, from fixed keys, through the session's own
    handshake code (only the ephemeral keys are fixed)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from twistchat.reliable.handshake import ClientHandshake, server_handshake
    from twistchat.reliable.rtt import RttEstimator

    def key(byte: int) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(bytes([byte]) * 32)
    parameters = SessionConfig().transport_parameters()
    client = ClientHandshake(CLIENT_CID, RttEstimator(), ephemeral=key(2))
    client.on_cookie(bytes(range(20)), 0.0, parameters)
    [connect] = client.datagrams(0.0)
    assert connect == _doc_block("CONNECT (80 bytes")
    accept, client_parameters, _ = server_handshake(
        decode_packet(connect), key(1), SERVER_CID, b"\xaa" * 16, parameters, ephemeral=key(3))
    assert client_parameters == parameters
    assert accept == _doc_block("ACCEPT (148 bytes")
    established = client.on_accept(decode_packet(accept), 0.0)
    assert established.server_cid == SERVER_CID and established.reset_token == b"\xaa" * 16
    data = established.protection.seal(SERVER_CID, 0, encode_frames((MessageFrame(0, b"hi"),)))
    assert data == _doc_block("The client's first DATA packet")


def test_every_close_code_is_documented():
    from twistchat.endpoint.api import CloseCode
    for code in CloseCode:
        assert f"| {code.value} | {code.name} |" in DOC


def test_every_endpoint_counter_for_bad_input_is_documented():
    from twistchat.endpoint.endpoint import EndpointCounters
    for name in ("oversized", "unknown_version", "malformed", "short_hello", "bad_cookie",
                 "replayed_connect", "sessions_refused", "unknown_connection",
                 "unexpected_packet", "internal_errors"):
        assert hasattr(EndpointCounters(), name)
        assert f"`{name}`" in DOC


def test_every_chat_error_code_request_and_event_is_documented():
    from twistchat.chat import protocol as p
    for code in p.ErrorCode:
        assert f"`{code.value}`" in DOC, code
    for kind in list(p.REQUESTS) + [cls.TYPE for cls in (
            p.MessageEvent, p.DmEvent, p.DeliveredEvent, p.JoinEvent, p.PartEvent, p.QuitEvent,
            p.KickEvent, p.NickEvent, p.AwayEvent, p.TopicEvent, p.ModeEvent, p.OpEvent,
            p.InvitedEvent, p.ReplacedEvent, p.ShutdownEvent)]:
        assert f"| `{kind}`" in DOC, kind
