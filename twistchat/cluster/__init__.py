"""What the nodes of one network tell each other (docs/CLUSTER.md): the
``Broker`` interface, ``LocalBroker`` (one process) and ``RedisBroker``."""

from twistchat.cluster.broker import (
    Broker, BrokerUnavailable, LocalBroker, LocalHub, LoginHolder, RosterEntry, bounded,
)

__all__ = ["Broker", "BrokerUnavailable", "LocalBroker", "LocalHub",
           "LoginHolder", "RosterEntry", "bounded"]
