"""
netem: a UDP impairment proxy (loss, duplication, delay, jitter) for testing
twistchat, or anything else that speaks UDP, over a bad network on purpose.

Run it with ``python -m twistchat.netem --help``; embed it with
``ImpairmentProxy``.
"""

from twistchat.netem.impairment import DROPPED, Decision, Impairment
from twistchat.netem.proxy import (
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CLIENTS,
    ClientCounters,
    DirectionCounters,
    ImpairmentProxy,
    ProxyCounters,
)

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_MAX_CLIENTS",
    "DROPPED",
    "ClientCounters",
    "Decision",
    "DirectionCounters",
    "Impairment",
    "ImpairmentProxy",
    "ProxyCounters",
]
