"""
The endpoints under one name, for the layers above: ``ServerEndpoint``,
``ClientEndpoint`` and what they share.
"""

from twistchat.endpoint.base import ConnectError, Endpoint, EndpointCounters
from twistchat.endpoint.connection import SessionConnection
from twistchat.endpoint.client import ClientEndpoint
from twistchat.endpoint.server import DEFAULT_MAX_SESSIONS, ServerEndpoint
from twistchat.reliable.errors import ConnectionClosed

__all__ = ["Endpoint", "ServerEndpoint", "ClientEndpoint", "SessionConnection",
           "EndpointCounters", "ConnectError", "ConnectionClosed", "DEFAULT_MAX_SESSIONS"]
