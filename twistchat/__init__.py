"""twistchat: a chat network over UDP, built on Twisted."""
