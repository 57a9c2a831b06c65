"""The one error of the wire layer."""


class DecodeError(Exception):
    """The one error the decoder raises: the datagram is malformed."""
