"""The chat application layer: the wire protocol (``protocol``) shared by server
and client, and the server application (``server``)."""
