"""Conformance: every byte example in docs/PROTOCOL.md, found by reading the
document (inline hex spans of two bytes or more, hex blocks, the worked
handshake), is checked against the codec and the handshake code, both ways
where it is a frame (the code encodes the example, and decodes it back to
what the text says). An example the table below does not know fails the
test, so a new example cannot go in unchecked."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from twistchat.reliable.config import SessionConfig
from twistchat.reliable.handshake import ClientHandshake, prologue, server_handshake
from twistchat.reliable.rtt import RttEstimator
from twistchat.endpoint.keys import public_bytes
from twistchat.wire.packets import (
    Ack, Close, Cookie, Data, Hello, MessageFrame, Unreliable, Window, decode_frames,
    decode_packet, decode_plain_data, encode_frame, encode_frames, encode_packet,
)
from twistchat.wire.varint import Reader, encode_varint

DOC = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
CLIENT_CID, SERVER_CID = 0x0102030405060708, 0x1112131415161718
HEX_BYTES = r"[0-9a-f]{2}(?:\s+[0-9a-f]{2})+(?:\s+…)?"


def _normal(text: str) -> str:
    return " ".join(text.split())


def inline_examples() -> list[str]:
    """Every `...` span of two or more hex bytes (``…``: the rest is left out)."""
    return [_normal(m.group(1)) for m in re.finditer(r"`(" + HEX_BYTES + r")`", DOC)]


def block_examples() -> list[str]:
    """Every fenced block that holds bytes: each line's hex, up to its comment."""
    blocks = []
    for m in re.finditer(r"```\n(.*?)```", DOC, re.S):
        rows = []
        for line in m.group(1).splitlines():
            label_and_hex = re.match(r"^(?:[a-z][a-z ]*?\s{2,})?(" + HEX_BYTES + r"|[0-9a-f]{2})(\s{2,}.*)?$",
                                     line.strip())
            if label_and_hex:
                rows.append(label_and_hex.group(1))
        if rows:
            blocks.append(_normal(" ".join(rows)))
    return blocks


@functools.cache
def worked_handshake() -> dict[str, bytes]:
    """§5.1, from the fixed keys the text names, through the session's own code."""
    def key(byte: int) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(bytes([byte]) * 32)
    parameters = SessionConfig().transport_parameters()
    cookie = bytes(range(20))
    client = ClientHandshake(CLIENT_CID, RttEstimator(), ephemeral=key(2))
    client.on_cookie(cookie, 0.0, parameters)
    [connect] = client.datagrams(0.0)
    accept, _, _ = server_handshake(decode_packet(connect), key(1), SERVER_CID, b"\xaa" * 16,
                                    parameters, ephemeral=key(3))
    established = client.on_accept(decode_packet(accept), 0.0)
    data = established.protection.seal(SERVER_CID, 0, encode_frames((MessageFrame(0, b"hi"),)))
    return {"keys": public_bytes(key(1)) + prologue(CLIENT_CID, cookie), "connect": connect,
            "accept": accept, "data": data}


ACK = Ack(((95, 100), (80, 90)), 1000)
"""Packets 80-90 and 95-100, 1 ms (1000 µs) after 100 arrived: 91-94 missing, gap 3."""
ANNOTATED_DATA = Data(SERVER_CID, 1000, (ACK, MessageFrame(7, b"hi"), MessageFrame(8, b"yo")))
NEXT_MESSAGES = (MessageFrame(5, b"ab", lane=1), MessageFrame(6, b"cd", lane=1),
                 MessageFrame(3, b"x"), MessageFrame(4, b"y"))
"""§4 NEXT_MESSAGE's example: two runs, one per lane."""

FRAMES = {  # example as written: the frame it is, and whether it is last in its packet
    "02 40 64 40 7d 01 05 03 0a": (ACK, False),
    "03 04 03 62 79 65": (Close(4, "bye"), False),
    "05 01 74": (Unreliable(b"t"), False),
    "04 74": (Unreliable(b"t"), True),
    "0c 80 10 00 00": (Window(1 << 20), False),
    "0b 09 47 d0 44 4e 03 61 62 63": (MessageFrame(9, b"abc", 1102, 2000), False),
    "08 00 68 69": (MessageFrame(0, b"hi"), True),
    "11 01 05 02 61 62": (MessageFrame(5, b"ab", lane=1), False),
    "10 01 05 61 62": (MessageFrame(5, b"ab", lane=1), True),
    "13 01 09 47 d0 44 4e 03 61 62 63": (MessageFrame(9, b"abc", 1102, 2000, lane=1), False),
}
OTHER = {  # example as written: what the code produces
    "7b bd": lambda: encode_varint(15_293),
    "9d 7f 3e 7d": lambda: encode_varint(494_878_333),
    "c2 19 7c 5e ff 14 e8 8c": lambda: encode_varint(151_288_809_941_952_652),
    # "followed by the 20 cookie bytes": the example shows the fields before them
    "12 01 02 03 04 05 06 07 08 14": lambda: encode_packet(Cookie(CLIENT_CID, bytes(20)))[:10],
    "80 01 00 00 80 10 00 00 80 01 24 f8 80 00 61 a8 19":
        lambda: SessionConfig().transport_parameters().encode(),
    "11 01 02 03 04 05 06 07 08 00 00 …": lambda: encode_packet(Hello(CLIENT_CID), pad_to=1200),
    "40 89": lambda: encode_varint(len(worked_handshake()["accept"]) - 11),
    "11 01 05 02 61 62 15 02 63 64 09 03 01 78 14 79": lambda: encode_frames(NEXT_MESSAGES),
}
BLOCKS = {  # how each hex block starts: what the code produces for the whole block
    "a4 e0 92": lambda: worked_handshake()["keys"],
    "13 01 02": lambda: worked_handshake()["connect"],
    "14 01 02": lambda: worked_handshake()["accept"],
    "15 11 12 13 14 15 16 17 18 43": lambda: encode_packet(ANNOTATED_DATA),
    "15 11 12 13 14 15 16 17 18 00": lambda: worked_handshake()["data"],
}


def produce(example: str) -> bytes | None:
    if example in FRAMES:
        frame, last = FRAMES[example]
        return encode_frame(frame, last=last)
    if example in OTHER:
        return OTHER[example]()
    for start, make in BLOCKS.items():
        if example.startswith(start + " "):
            return make()
    return None


def as_bytes(example: str) -> tuple[bytes, bool]:
    """The bytes an example shows, and whether it shows only their start (…)."""
    partial = example.endswith("…")
    return bytes.fromhex(example.rstrip("…")), partial


EXAMPLES = inline_examples() + block_examples()


def test_every_example_this_test_knows_is_found_in_the_document():
    """So the parser finds them all, and no entry outlives its example."""
    for known in list(FRAMES) + list(OTHER) + list(BLOCKS):
        assert any(e == known or e.startswith(known + " ") for e in EXAMPLES), known
    assert len(block_examples()) == 5  # the annotated DATA packet, the keys, CONNECT, ACCEPT, DATA


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e[:23])
def test_every_byte_example_is_what_the_code_produces(example):
    produced = produce(example)
    assert produced is not None, f"a byte example no test checks: {example}"
    shown, partial = as_bytes(example)
    if partial:
        assert produced.startswith(shown) and len(produced) > len(shown)
    else:
        assert produced == shown, f"document: {shown.hex(' ')}\ncode:     {produced.hex(' ')}"


@pytest.mark.parametrize("example", sorted(FRAMES), ids=lambda e: e[:14])
def test_every_frame_example_decodes_to_what_the_text_says(example):
    frame, last = FRAMES[example]
    data = bytes.fromhex(example)
    if last:
        assert decode_frames(data) == (frame,)
    else:  # not last: followed by another frame, so its length is read, not assumed
        assert decode_frames(data + encode_frame(Unreliable(b"x"), last=True))[0] == frame


def test_the_ack_example_follows_the_gap_formula():
    """§4: the next range is [low - gap - 2 - length, low - gap - 2]: gap + 1 missing."""
    reader = Reader(bytes.fromhex("02 40 64 40 7d 01 05 03 0a")[1:])
    largest, _delay, count, first = (reader.read_varint() for _ in range(4))
    gap, length = reader.read_varint(), reader.read_varint()
    low = largest - first
    assert (largest, low, count) == (100, 95, 1)
    assert (low - gap - 2 - length, low - gap - 2) == (80, 90)
    assert gap + 1 == len(range(91, 95))


def test_the_annotated_data_packet_decodes_to_its_frames():
    block = next(b for b in block_examples() if b.startswith("15 11 12 13 14 15 16 17 18 43"))
    assert decode_plain_data(bytes.fromhex(block)) == ANNOTATED_DATA


def test_the_next_message_example_decodes_to_its_frames():
    assert decode_frames(bytes.fromhex("11 01 05 02 61 62 15 02 63 64 09 03 01 78 14 79")) \
        == NEXT_MESSAGES
