"""
``ChatClient(keep_trying=True)``: a first ``connect()`` that keeps trying.

Without it a server that is down (or unreachable) at the first connect
fails that Deferred and the application must try again itself; the client
reconnects by itself only once it has logged in. With it, the first connect
backs off and tries again, exactly as a reconnect does (1, 2, 4 ... 30 s,
jittered), telling ``observer.disconnected(why, retry_in)`` after each
failed attempt, until it logs in (the Deferred fires with the login reply)
or cannot (it fails): a refused credential, a password needed, a server
key that is not the pinned one, another refusal of the login, or
``stop()``/``quit()``. Requests made meanwhile are held and sent once
logged in, as during a reconnect.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from twistchat.chat.protocol import ErrorCode
from twistchat.client.known_servers import ServerKeyMismatch
from twistchat.client.link import LinkEvent
from twistchat.client.observer import ChatError, Disconnected, PasswordRequired

RETRYABLE_REFUSALS = frozenset({ErrorCode.RATE_LIMITED.value, ErrorCode.SHUTTING_DOWN.value,
                                ErrorCode.INTERNAL.value})
"""Login refusals that another attempt may get past; any other is final."""


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
            if lifecycle.final or _final(error):
                lifecycle.fire(LinkEvent.GIVE_UP)
                client._outbox.fail_held(str(error))
                raise
            if client._link is not None:  # a login refused for now: this session is done
                client._close_link(graceful=False)
                client._link = None
            delay = lifecycle.next_delay()
            client.observer.disconnected(str(error), delay)
            await _pause(client, delay)


def _pause(client: Any, delay: float) -> defer.Deferred:
    """Wait ``delay`` seconds; ``stop()``/``quit()`` cancel the wait, which
    then fails with Disconnected."""
    waiting: defer.Deferred = defer.Deferred(lambda d: d.errback(Disconnected("stopped")))
    client._retry_call = client.reactor.callLater(delay, waiting.callback, None)
    client._retry_wait = waiting
    return waiting
