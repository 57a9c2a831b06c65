"""The wire layer: one datagram to and from bytes. Knows nothing but bytes."""

from twistchat.wire.packets import *  # noqa: F401,F403
from twistchat.wire.packets import __all__  # noqa: F401
