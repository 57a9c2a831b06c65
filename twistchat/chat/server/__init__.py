"""The chat server application.

* ``server.ChatServer``: ties everything together (build_protocol, start,
  stop, shutdown, reap)
* ``config.ServerConfig``: every limit and timer
* ``session.ClientSession``: one client's MessageProtocol
* ``identities``: credential hashing and registration expiry
* ``rooms``: room state and join rules
* ``mailbox``: offline direct messages
"""

from twistchat.chat.server.config import ServerConfig
from twistchat.chat.server.server import ChatServer

__all__ = ["ChatServer", "ServerConfig"]
