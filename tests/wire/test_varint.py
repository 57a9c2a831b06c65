"""QUIC variable-length integers (RFC 9000 §16) and the bounds-checked Reader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.wire.varint import (
    MAX_VARINT, BufferUnderflow, Reader, encode_varint, varint_size,
)


# RFC 9000 Appendix A.1 sample encodings, and the length boundaries of §16.
@pytest.mark.parametrize(("value", "encoded"), [
    (0, "00"),
    (37, "25"),
    (63, "3f"),
    (64, "4040"),
    (15293, "7bbd"),
    (16383, "7fff"),
    (16384, "80004000"),
    (494878333, "9d7f3e7d"),
    (2**30 - 1, "bfffffff"),
    (2**30, "c000000040000000"),
    (151288809941952652, "c2197c5eff14e88c"),
    (2**62 - 1, "ffffffffffffffff"),
])
def test_encoding_matches_rfc_9000(value, encoded):
    assert encode_varint(value).hex() == encoded
    assert varint_size(value) == len(encoded) // 2
    reader = Reader(bytes.fromhex(encoded))
    assert reader.read_varint() == value
    assert reader.at_end()


def test_non_minimal_encodings_decode_too():
    # RFC 9000 §A.1: 0x4025 is a two-byte encoding of 37.
    assert Reader(bytes.fromhex("4025")).read_varint() == 37
    assert Reader(bytes.fromhex("80000025")).read_varint() == 37


@pytest.mark.parametrize("value", [MAX_VARINT + 1, 2**64, -1])
def test_out_of_range_values_are_refused(value):
    with pytest.raises(ValueError):
        encode_varint(value)


@given(st.integers(0, MAX_VARINT), st.binary(max_size=4))
def test_round_trip_and_size(value, trailer):
    encoded = encode_varint(value)
    assert len(encoded) == varint_size(value)
    assert len(encoded) in (1, 2, 4, 8)
    reader = Reader(encoded + trailer)
    assert reader.read_varint() == value
    assert reader.remaining() == len(trailer)
    assert reader.read_rest() == trailer


@settings(max_examples=200)
@given(st.integers(0, MAX_VARINT), st.data())
def test_truncated_varint_underflows(value, data):
    encoded = encode_varint(value)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(BufferUnderflow):
        Reader(encoded[:cut]).read_varint()


def test_reader_bounds():
    reader = Reader(b"\x01\x02\x03")
    assert reader.read_u8() == 1
    assert reader.read_bytes(2) == b"\x02\x03"
    assert reader.at_end() and reader.remaining() == 0
    with pytest.raises(BufferUnderflow):
        reader.read_u8()
    with pytest.raises(BufferUnderflow):
        Reader(b"\x00" * 7).read_u64()
    assert Reader(bytes(range(1, 9))).read_u64() == 0x0102030405060708
    with pytest.raises(BufferUnderflow):
        Reader(b"abc").read_bytes(4)
    with pytest.raises(BufferUnderflow):
        Reader(b"abc").read_bytes(-1)
    # A failed read does not move the cursor.
    reader = Reader(b"ab")
    with pytest.raises(BufferUnderflow):
        reader.read_bytes(3)
    assert reader.read_bytes(2) == b"ab"
