"""The client library: ``ChatClient``, its observer, its state file, the
pinned server keys and the list of servers it may talk to."""

from twistchat.client.client import (
    ChatClient, ChatError, ChatObserver, Disconnected, LinkState, PasswordRequired,
)
from twistchat.client.known_servers import KnownServers, ServerKeyMismatch
from twistchat.client.limits import CLIENT_MAX_MESSAGE_SIZE, ServerLimits, client_endpoint
from twistchat.client.servers import ServerList, ServerListError
from twistchat.client.state import ClientState, StateError, default_state_dir
from twistchat.client.transfers import (
    IncomingTransfer, OutgoingTransfer, TransferCorrupt, TransferError, TransferIncomplete,
)

__all__ = ["ChatClient", "ChatError", "ChatObserver", "Disconnected", "LinkState", "PasswordRequired",
           "ClientState", "StateError", "default_state_dir", "KnownServers", "ServerKeyMismatch",
           "CLIENT_MAX_MESSAGE_SIZE", "ServerLimits", "client_endpoint", "IncomingTransfer",
           "OutgoingTransfer", "TransferCorrupt", "TransferError", "TransferIncomplete",
           "ServerList", "ServerListError"]
