"""An ack-eliciting packet in flight, as loss recovery (``recovery``) and the
delivery-rate estimator (``delivery_rate``) both read it: its own module so
that both can type it (``recovery`` imports ``delivery_rate``), and mypyc
reads its fields natively in each (issue 16)."""

from __future__ import annotations

from twistchat.reliable.sending import Chunk


class SentPacket:
    """An ack-eliciting packet in flight. A plain class with its own
    ``__init__``, not attrs: mypyc compiles this one, while an attrs class
    keeps attrs' generated ``__init__``, a Python call per packet sent
    (issue 16)."""

    __slots__ = ("packet_number", "sent_time", "size", "chunks", "app_limited", "carries_window",
                 "delivered", "delivered_time", "first_sent_time", "rate_app_limited",
                 "declared_lost_at", "largest_acked_at_loss", "episode", "ordinal")

    def __init__(self, packet_number: int, sent_time: float, size: int, chunks: list[Chunk],
                 app_limited: bool, carries_window: bool = False) -> None:
        self.packet_number = packet_number
        self.sent_time = sent_time
        self.size = size
        self.chunks = chunks
        self.app_limited = app_limited
        self.carries_window = carries_window
        self.delivered = 0
        """Delivery-rate stamps (``delivery_rate``): bytes delivered when it was sent ..."""
        self.delivered_time = 0.0
        self.first_sent_time = 0.0
        self.rate_app_limited = False
        self.declared_lost_at = 0.0
        self.largest_acked_at_loss = 0
        self.episode = 0
        self.ordinal = 0
        """Ack-eliciting packets sent before it: two lost packets with
        consecutive ordinals had no packet between them that was acknowledged."""
