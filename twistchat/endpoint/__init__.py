"""The endpoint layer: Twisted glue between UDP sockets and sessions."""
