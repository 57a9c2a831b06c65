"""The chat server application, in layers (each imports only those below it):

* ``config.ServerConfig``: every limit and timer, and the options naming them
* ``member``: what rooms and the mailbox need of a user (key, nick, send)
* ``rooms``, ``mailbox``, ``identities``: room state and join rules, offline
  direct messages, credential hashing and registration expiry
* ``session.ClientSession``: the adapter between one transport session and
  the server (decoding, flood control, one reply per request)
* ``user.User``: everything the server knows about one client
* ``core.ServerCore``: the state and rules every request handler shares
* ``handlers``: the requests, one module per area
* ``idle_watch.IdleWatch``: users by idle deadline, so a reaper tick looks
  only at those due
* ``server.ChatServer``: lifecycle, sessions, reaper (build_protocol, start,
  stop, shutdown, reap)
* ``service``: the twistd service and its options
"""

from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.server import ChatServer

__all__ = ["ChatServer", "ServerConfig"]
