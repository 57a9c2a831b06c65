"""A room line to many sessions at once (``send_to_each``): each session
gets it as its own ``send_message`` would have given it, in order after
what it was sent before; a missing or ended session gets None."""

from __future__ import annotations

from tests.support.connections import Recording
from twistchat.endpoint.broadcast import send_to_each

from .harness import Pair


def test_each_session_gets_the_line_once_after_what_it_had_and_gaps_get_none() -> None:
    one, two, ended = (Pair(seed=seed).connect() for seed in (1, 2, 3))
    first, second = one.server_protocol.connection, two.server_protocol.connection
    first.send_message(b"before")
    ended.server_protocol.connection.close(graceful=False)
    ended.run_for(1.0)
    other, refusing = Recording(), Recording(refuse=True)

    seqs = send_to_each([first, None, ended.server_protocol.connection, other, second, refusing],
                        b"line")

    assert seqs == [1, None, None, 0, 0, None]
    assert other.sent == [b"line"]
    for pair in (one, two):
        pair.run_for(1.0)
    assert one.client_protocol.messages == [b"before", b"line"]
    assert two.client_protocol.messages == [b"line"]
    assert first.acked_below == 2 and second.acked_below == 1


def test_ended_sessions_are_passed_over_unsaid_and_other_refusals_logged() -> None:
    """A room's members leaving together each tell the rest, most of them
    ended already: those drops are expected, and logging each one cost more
    than the sends (a 2 s stall at bench scale's teardown). A message over a
    peer's cap is still worth a line."""
    from twisted.logger import globalLogPublisher

    one, ended = (Pair(seed=seed).connect() for seed in (1, 3))
    ended.server_protocol.connection.close(graceful=False)
    ended.run_for(1.0)
    live = one.server_protocol.connection
    logged: list[dict] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        quiet = send_to_each([ended.server_protocol.connection, Recording(refuse=True), live], b"quit")
        too_large = send_to_each([live], b"x" * (live.peer_max_message_size + 1))
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert quiet == [None, None, 0] and too_large == [None]
    dropped = [event for event in logged if "dropped a message" in event.get("log_format", "")]
    assert [type(event["error"]).__name__ for event in dropped] == ["MessageTooLarge"]
