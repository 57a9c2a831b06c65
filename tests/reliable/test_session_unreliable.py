"""The unreliable channel (UNRELIABLE frames, PROTOCOL.md §4): delivered at
most once, never retransmitted, never holding up a reliable message, and
bounded while the windows are full."""

from __future__ import annotations

from twistchat.reliable.events import MessageReceived, UnreliableReceived
from twistchat.reliable.session import MAX_UNRELIABLE_QUEUED
from twistchat.wire.packets import MessageFrame, Unreliable

from .session_pair import Pair, events, frames


def test_an_unreliable_message_arrives_once_and_a_lost_one_is_never_sent_again():
    pair = Pair.connected()
    pair.client.send_unreliable(b"typing", 1.0)
    pair.c2s(1.0)
    assert [e for e in events(pair.server) if isinstance(e, UnreliableReceived)] == \
        [UnreliableReceived(b"typing")]
    pair.client.send_unreliable(b"lost", 2.0)
    pair.client.send_message(b"line", 2.0)
    pair.c2s(2.0, drop=True)                 # the packet with both is lost
    later = []
    for step in range(1, 40):                # probes and retransmissions for seconds
        now = 2.0 + step * 0.25
        later += pair.client.datagrams_to_send(now)
        pair.client.handle_timer(now)
    assert frames(later, MessageFrame)       # the reliable line is sent again...
    assert not frames(later, Unreliable)     # ...the unreliable one never


def test_a_reliable_message_does_not_wait_for_an_unreliable_one():
    pair = Pair.connected()
    pair.client.send_unreliable(b"t" * 100, 1.0)
    pair.client.send_message(b"hello", 1.0)
    pair.c2s(1.0)
    kinds = [type(e) for e in events(pair.server)]
    assert MessageReceived in kinds and UnreliableReceived in kinds


def test_unreliable_messages_waiting_for_room_are_bounded_oldest_dropped_first():
    pair = Pair.connected()
    for i in range(MAX_UNRELIABLE_QUEUED + 5):
        pair.client.send_unreliable(b"n%d" % i, 1.0)  # nothing sent meanwhile
    assert pair.client.stats.unreliable_dropped == 5
    pair.c2s(1.0)
    got = [e.data for e in events(pair.server) if isinstance(e, UnreliableReceived)]
    assert got == [b"n%d" % i for i in range(5, MAX_UNRELIABLE_QUEUED + 5)]
