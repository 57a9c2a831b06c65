"""twistchat: a chat network over UDP, built on Twisted."""

from twistchat import compiled as _compiled

_compiled.select()  # before anything imports the hot path: compiled or pure, once
