"""The reliable session layer: sans-IO state machines. No sockets, no reactor: every entry point takes ``now``."""
