"""PROTOCOL.md §5: a client must use a fresh client connection id for every
handshake; the server drops a CONNECT whose id opened a session before,
even with a fresh cookie, once that session has ended."""

from __future__ import annotations

from .test_bad_input import connect, cookie_for, make_server


def test_a_connection_id_that_opened_a_session_is_refused_again_even_with_a_new_cookie():
    server, transport, clock, opened = make_server()
    address = ("198.51.100.1", 1000)
    server.datagramReceived(connect(42, cookie_for(server, transport, address)), address)
    (handle,) = server.sessions.values()
    handle.connection.close(graceful=False)
    clock.advance(5)
    assert server.sessions == {}
    # the client starts over with HELLO but keeps its old id: no answer at all
    fresh_cookie = cookie_for(server, transport, address, cid=42)
    transport.written.clear()
    server.datagramReceived(connect(42, fresh_cookie), address)
    assert server.counters.replayed_connect == 1 and transport.written == []
    # with a fresh id, the same client is let in at once
    server.datagramReceived(connect(43, cookie_for(server, transport, address, cid=43)), address)
    assert len(opened) == 2 and len(server.sessions) == 1
