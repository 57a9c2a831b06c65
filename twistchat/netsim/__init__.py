"""A deterministic network simulator that drives real endpoints in virtual time."""

from twistchat.netsim.network import SimulatedNetwork, SimulatedTransport

__all__ = ["SimulatedNetwork", "SimulatedTransport"]
