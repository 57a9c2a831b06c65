"""What the nodes of one network tell each other (docs/CLUSTER.md): the
``Broker`` interface, ``LocalBroker`` (one process) and ``RedisBroker``."""

import txredisapi

from twistchat.cluster.broker import (
    Broker, BrokerUnavailable, LocalBroker, LocalHub, LoginHolder, RosterEntry, bounded,
)

UNREACHABLE: tuple[type[Exception], ...] = (BrokerUnavailable, txredisapi.ConnectionError)
"""What a call to Redis (the broker's or a Redis store's) raises when Redis is
away: the chat server answers UNAVAILABLE (PROTOCOL.md C9)."""

__all__ = ["UNREACHABLE", "Broker", "BrokerUnavailable", "LocalBroker", "LocalHub",
           "LoginHolder", "RosterEntry", "bounded"]
