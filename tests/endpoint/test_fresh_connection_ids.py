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


def test_used_connection_ids_are_forgotten_once_no_cookie_for_them_could_be_valid():
    """What the server keeps to refuse a replayed CONNECT is bounded by the
    cookies' lifetime, however many sessions opened before."""
    server, transport, clock, opened = make_server()
    window = 2 * server.cookies.slot_seconds
    accepted_at = {}
    for cid in range(100, 140):
        address = ("198.51.100.1", 1000 + cid)
        accepted_at[cid] = clock.seconds()
        server.datagramReceived(connect(cid, cookie_for(server, transport, address, cid=cid)), address)
        clock.advance(0.25)
    assert len(opened) == 40 and set(server._used_client_cids) == set(accepted_at)
    clock.advance(window - 5.0)  # the first ids' window is over, the last ones' is not
    address = ("198.51.100.2", 1000)
    server.datagramReceived(connect(7, cookie_for(server, transport, address, cid=7)), address)
    still_valid = {cid for cid, at in accepted_at.items() if at + window > clock.seconds()}
    assert 0 < len(still_valid) < 40
    assert set(server._used_client_cids) == still_valid | {7}
    clock.advance(window)
    address = ("198.51.100.3", 1000)
    server.datagramReceived(connect(8, cookie_for(server, transport, address, cid=8)), address)
    assert set(server._used_client_cids) == {8}
