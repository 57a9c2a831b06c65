"""Stateless address-validation cookies: an HMAC of the address, the
connection id and a 10-second time slot; the current and previous slot are
accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.cookies import COOKIE_SLOT_SECONDS, CookieJar
from twistchat.reliable.config import SessionConfig
from twistchat.wire.packets import (
    MIN_HELLO_SIZE, Connect, Cookie, Hello, decode_packet, encode_packet,
)

SECRET = b"s" * 32
ADDRESS = ("203.0.113.5", 40001)
CID = 0x1122334455667788


def jar(secret: bytes = SECRET) -> CookieJar:
    return CookieJar(secret=secret)


def test_slot_length():
    assert COOKIE_SLOT_SECONDS == 10.0


def test_valid_in_the_current_and_the_previous_slot():
    cookie = jar().mint(100.0, ADDRESS, CID)  # slot [100, 110)
    for now in (100.0, 105.0, 109.999, 110.0, 115.0, 119.999):
        assert jar().check(now, ADDRESS, CID, cookie), now


def test_expired_after_the_previous_slot():
    cookie = jar().mint(100.0, ADDRESS, CID)
    for now in (120.0, 125.0, 1000.0):
        assert not jar().check(now, ADDRESS, CID, cookie), now


def test_lifetime_is_between_10_and_20_seconds():
    early = jar().mint(100.0, ADDRESS, CID)    # start of a slot: lives 20 s
    late = jar().mint(109.99, ADDRESS, CID)    # end of the same slot: 10.01 s
    assert jar().check(119.98, ADDRESS, CID, early)
    assert jar().check(119.98, ADDRESS, CID, late)
    assert not jar().check(120.0, ADDRESS, CID, early)
    assert not jar().check(120.0, ADDRESS, CID, late)


def test_a_cookie_from_the_future_is_refused():
    cookie = jar().mint(130.0, ADDRESS, CID)
    assert not jar().check(100.0, ADDRESS, CID, cookie)
    assert not jar().check(120.0, ADDRESS, CID, cookie)


def test_bound_to_address_port_cid_and_secret():
    cookie = jar().mint(100.0, ADDRESS, CID)
    assert jar().check(101.0, ADDRESS, CID, cookie)
    assert not jar().check(101.0, ("203.0.113.6", 40001), CID, cookie)
    assert not jar().check(101.0, ("203.0.113.5", 40002), CID, cookie)
    assert not jar().check(101.0, ADDRESS, CID + 1, cookie)
    assert not jar().check(101.0, ADDRESS, CID ^ (1 << 63), cookie)
    assert not jar(b"t" * 32).check(101.0, ADDRESS, CID, cookie)
    assert not CookieJar().check(101.0, ADDRESS, CID, cookie)  # a fresh random secret


def test_host_and_port_cannot_be_traded_for_each_other():
    cookie = jar().mint(0.0, ("10.0.0.1", 23), CID)
    assert not jar().check(0.0, ("10.0.0.12", 3), CID, cookie)


def test_ipv6_addresses():
    address = ("2001:db8::1", 5000, 0, 0)
    cookie = jar().mint(50.0, address, CID)
    assert jar().check(55.0, address, CID, cookie)
    # Flow info and scope do not change who the client is; host and port do.
    assert jar().check(55.0, ("2001:db8::1", 5000, 7, 0), CID, cookie)
    assert not jar().check(55.0, ("2001:db8::2", 5000, 0, 0), CID, cookie)


def test_random_secrets_differ():
    assert CookieJar().secret != CookieJar().secret
    assert len(CookieJar().secret) >= 16


def test_tampered_cookies_are_refused():
    cookie = jar().mint(100.0, ADDRESS, CID)
    for index in range(len(cookie)):
        for bit in range(8):
            tampered = bytearray(cookie)
            tampered[index] ^= 1 << bit
            assert not jar().check(101.0, ADDRESS, CID, bytes(tampered)), (index, bit)
    assert not jar().check(101.0, ADDRESS, CID, cookie[:-1])
    assert not jar().check(101.0, ADDRESS, CID, cookie + b"\x00")
    assert not jar().check(101.0, ADDRESS, CID, b"")


def test_moving_the_slot_field_does_not_extend_a_cookie():
    # Rewriting the slot to the current one without the secret fails the MAC.
    cookie = jar().mint(100.0, ADDRESS, CID)
    slot_now = int(200.0 // 10).to_bytes(4, "big")
    assert not jar().check(200.0, ADDRESS, CID, slot_now + cookie[4:])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_random_cookies_are_refused(garbage):
    assert not jar().check(101.0, ADDRESS, CID, garbage)


def test_fits_a_connect_packet_and_survives_the_wire():
    cookie = jar().mint(100.0, ADDRESS, CID)
    packet = decode_packet(encode_packet(Connect(CID, cookie, bytes(32) + SessionConfig().transport_parameters().encode())))
    assert jar().check(101.0, ADDRESS, packet.client_cid, packet.cookie)


def test_the_cookie_reply_is_smaller_than_the_hello_it_answers():
    # Anti-amplification: the stateless reply never exceeds what the
    # unvalidated address sent (a HELLO padded to MIN_HELLO_SIZE).
    reply = encode_packet(Cookie(CID, jar().mint(100.0, ADDRESS, CID)))
    hello = encode_packet(Hello(CID), pad_to=MIN_HELLO_SIZE)
    assert len(reply) == 1 + 8 + 1 + 20
    assert len(reply) <= len(hello)


@pytest.mark.parametrize("now", [0.0, 1e9, 42949672950.0 + 5])
def test_any_epoch(now):
    cookie = jar().mint(now, ADDRESS, CID)
    assert jar().check(now + COOKIE_SLOT_SECONDS, ADDRESS, CID, cookie)
    assert not jar().check(now + 2 * COOKIE_SLOT_SECONDS, ADDRESS, CID, cookie)


def test_slot_counter_wraparound():
    # The slot travels in 32 bits: the slot after 0xFFFFFFFF is 0, and a
    # cookie from the last slot before the wrap is still good in the first after.
    last = (2**32 - 1) * COOKIE_SLOT_SECONDS + 1
    cookie = jar().mint(last, ADDRESS, CID)
    assert jar().check(last + COOKIE_SLOT_SECONDS, ADDRESS, CID, cookie)
    assert not jar().check(last + 2 * COOKIE_SLOT_SECONDS, ADDRESS, CID, cookie)
