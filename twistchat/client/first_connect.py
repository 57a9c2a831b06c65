"""
A first ``connect()``: each server of the client's list in turn
(``servers.py``), and with ``ChatClient(keep_trying=True)``, round after
round.

Without it, a first connect that reaches none of the servers (one try of
each, the next at once) fails that Deferred and the application must try
again itself; the client reconnects by itself only once it has logged in.
With it, the first connect backs off and tries again, exactly as a reconnect
does (1, 2, 4 ... 30 s, jittered, before each round), telling
``observer.disconnected(why, retry_in)`` after each failed attempt, until it
logs in (the Deferred fires with the login reply) or cannot (it fails): a
refused credential, a password needed, a server key that is not the pinned
one, another refusal of the login, or ``stop()``/``quit()``. Requests made
meanwhile are held and sent once logged in, as during a reconnect.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twistchat.chat.protocol import ErrorCode
from twistchat.client.known_servers import ServerKeyMismatch
from twistchat.client.link import LinkEvent
from twistchat.client.observer import ChatError, Disconnected, PasswordRequired

RETRYABLE_REFUSALS = frozenset({ErrorCode.RATE_LIMITED.value, ErrorCode.SHUTTING_DOWN.value,
                                ErrorCode.INTERNAL.value, ErrorCode.UNAVAILABLE.value})
"""Login refusals that another attempt (or another node of the network:
UNAVAILABLE is a node that cannot reach its store) may get past; any other
is final."""


def _final(error: Exception) -> bool:
    if isinstance(error, (PasswordRequired, ServerKeyMismatch)):
        return True
    return isinstance(error, ChatError) and error.code not in RETRYABLE_REFUSALS


async def connect_until_logged_in(client: Any) -> dict[str, Any]:
    """The first connect of ``client`` (a ChatClient), tried until it logs in or cannot."""
    lifecycle = client._lifecycle
    while True:
        try:
            return await client._attempt()
        except Exception as error:
            if lifecycle.final or _final(error) or (
                    not lifecycle.keep_trying and client.rotation.round_ends_here):
                lifecycle.fire(LinkEvent.GIVE_UP)
                client._outbox.fail_held(str(error))
                raise
            client._drop_half_open()
            delay = lifecycle.next_delay(client._move_on())
            client.observer.disconnected(str(error), delay)
            await _pause(client, delay)


def _pause(client: Any, delay: float) -> defer.Deferred:
    """Wait ``delay`` seconds; ``stop()``/``quit()`` cancel the wait, which
    then fails with Disconnected."""
    waiting: defer.Deferred = defer.Deferred(lambda d: d.errback(Disconnected("stopped")))
    client._retry_call = client.reactor.callLater(delay, waiting.callback, None)
    client._retry_wait = waiting
    return waiting
