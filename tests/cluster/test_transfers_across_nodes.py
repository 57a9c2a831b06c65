"""Transfers (PROTOCOL.md C14) to users on other nodes: to a nick online
on another node, and to a room's members on every node, with the bounds
one node keeps held where each recipient is (docs/CLUSTER.md)."""

from __future__ import annotations

import hashlib

from twistchat.chat import protocol as p
from twistchat.chat.protocol import ErrorCode

from .network import Network

DATA = bytes(range(256)) * 40  # 10 KiB


def _send_all(sender, tid: int, data: bytes = DATA, size: int = 4096) -> dict:
    for offset in range(0, len(data), size):
        assert sender.ok("piece", transfer=tid, offset=offset, payload=data[offset:offset + size])
    return sender.ok("transfer_end", transfer=tid, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest()).result


def _received(client, tid: int) -> bytes:
    return b"".join(e.payload for e in client.messages() if isinstance(e, p.PieceEvent)
                    and e.transfer == tid)


def _reply(client, rid: int):
    return [m for m in client.messages() if isinstance(m, p.Ok | p.ErrorReply) and m.id == rid]


def test_a_file_goes_to_a_nick_on_another_node():
    net = Network(2)
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    opened = alice.ok("transfer", to="bob", name="notes.txt", size=len(DATA)).result
    assert (opened["to"], opened["recipients"]) == ("bob", 1)
    [offer] = bob.events(p.TransferEvent)
    assert (offer.nick, offer.name, offer.size, offer.room) == ("alice", "notes.txt", len(DATA), None)
    end = _send_all(alice, opened["transfer"])
    assert (end["delivered"], end["missed"]) == (1, [])
    assert _received(bob, offer.transfer) == DATA
    [ended] = [e for e in bob.messages() if isinstance(e, p.TransferEndEvent)]
    assert (ended.transfer, ended.sha256) == (offer.transfer, hashlib.sha256(DATA).hexdigest())
    for node in net.nodes:
        assert node.server.transfers.reserved == 0 and not node.server.transfers.relays
    assert not net.nodes[1].server.cluster.transfers.inbound


def test_a_room_transfer_reaches_every_other_member_on_every_node():
    net = Network(3)
    alice, bob, carol, dan = net.room_of("#tea", (0, "alice"), (1, "bob"), (0, "carol"), (2, "dan"))
    opened = alice.ok("transfer", room="#tea", name="cake.png", size=len(DATA)).result
    assert (opened["recipients"], opened["skipped"]) == (3, [])
    offers = [(c, c.events(p.TransferEvent)) for c in (bob, carol, dan)]
    assert all(len(o) == 1 and o[0].room == "#tea" for _, o in offers)
    end = _send_all(alice, opened["transfer"])
    assert (end["delivered"], end["missed"]) == (3, [])
    for client, [offer] in offers:
        assert _received(client, offer.transfer) == DATA


def _first_piece_held():
    """alice on node 0 sends bob on node 1 a first piece his transport holds unacknowledged."""
    net = Network(2)
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    tid = alice.ok("transfer", to="bob", name="f", size=len(DATA)).result["transfer"]
    bob.connection.hold_acks()
    rid = next(alice.ids)
    alice.send_raw(p.encode(p.Piece(id=rid, transfer=tid, offset=0, payload=DATA[:4096])))
    return net, alice, bob, rid


def test_a_piece_is_answered_once_the_recipient_on_the_other_node_has_it():
    net, alice, bob, rid = _first_piece_held()
    assert _reply(alice, rid) == []
    bob.connection.release_acks()
    assert isinstance(_reply(alice, rid)[0], p.Ok)


def test_transfer_ids_are_the_recipients_nodes_so_two_senders_never_share_one():
    net = Network(2)
    alice, carol = net.nodes[0].login("alice"), net.nodes[1].login("carol")
    bob = net.nodes[1].login("bob")
    alice.ok("transfer", to="bob", name="from a", size=10)
    carol.ok("transfer", to="bob", name="from c", size=10)
    offers = bob.events(p.TransferEvent)
    assert [o.name for o in offers] == ["from a", "from c"]
    assert offers[0].transfer != offers[1].transfer


def test_the_recipients_node_keeps_its_bounds_per_user_and_in_total():
    net = Network(2, max_transfers_per_user=1)
    alice, carol = net.nodes[0].login("alice"), net.nodes[1].login("carol")
    bob, dan = net.nodes[1].login("bob"), net.nodes[1].login("dan")
    carol.ok("transfer", to="bob", name="local", size=10)  # bob receives one, on his node
    assert alice.error("transfer", to="bob", name="second", size=10) == ErrorCode.TOO_MANY_TRANSFERS
    memory = net.nodes[1].server.transfers
    memory.reserved = net.nodes[1].config.transfer_memory  # node1 holds all it may
    assert alice.error("transfer", to="dan", name="f", size=10) == ErrorCode.TOO_MANY_TRANSFERS
    assert dan.events(p.TransferEvent) == []


def test_a_recipient_leaving_on_its_node_is_told_to_the_sender():
    net, alice, bob, rid = _first_piece_held()
    bob.connection.peer_vanishes()
    [failed] = _reply(alice, rid)
    assert failed.code == ErrorCode.NOT_DELIVERED
    assert [e.code for e in alice.events(p.TransferFailedEvent)] == [ErrorCode.NOT_DELIVERED]
    for node in net.nodes:
        assert node.server.transfers.reserved == 0


def test_a_recipient_on_another_node_declines_and_the_sender_hears_it():
    net = Network(3)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (2, "carol"))
    tid = alice.ok("transfer", room="#tea", name="f", size=len(DATA)).result["transfer"]
    [offer] = bob.events(p.TransferEvent)
    bob.ok("transfer_cancel", transfer=offer.transfer, reason="no room on disk")
    assert [(e.nick, e.code) for e in alice.events(p.TransferFailedEvent)] == [
        ("bob", ErrorCode.NOT_DELIVERED)]
    end = _send_all(alice, tid)
    assert (end["delivered"], end["missed"]) == (1, ["bob"])
    assert _received(bob, offer.transfer) == b""


def test_the_sender_leaving_fails_the_transfer_on_the_recipients_node():
    net = Network(2)
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    alice.ok("transfer", to="bob", name="f", size=len(DATA))
    [offer] = bob.events(p.TransferEvent)
    alice.ok("quit")
    [failed] = bob.events(p.TransferFailedEvent)
    assert (failed.transfer, failed.code) == (offer.transfer, ErrorCode.SENDER_LEFT)
    assert net.nodes[1].server.transfers.reserved == 0


def test_a_transfer_whose_senders_node_went_silent_fails_on_the_recipients_node():
    net = Network(2, transfer_idle=20.0)  # before bob's own session idles out
    alice, bob = net.nodes[0].login("alice"), net.nodes[1].login("bob")
    alice.ok("transfer", to="bob", name="f", size=len(DATA))
    [offer] = bob.events(p.TransferEvent)
    from twisted.internet.defer import succeed

    dead = net.nodes[0].server  # node0 dies: it does and says nothing more
    dead.reaper.stop()
    dead.cluster.stop()
    dead.broker.publish_node = lambda *args: succeed(None)
    net.advance(20.0 + net.nodes[1].config.reap_interval + 1)
    [failed] = [e for e in bob.events(p.TransferFailedEvent)]
    assert (failed.transfer, failed.code) == (offer.transfer, ErrorCode.TIMED_OUT)
    assert net.nodes[1].server.transfers.reserved == 0


def test_a_recipient_on_another_node_that_leaves_is_dropped_at_once():
    net = Network(3)
    alice, bob, carol = net.room_of("#tea", (0, "alice"), (1, "bob"), (2, "carol"))
    tid = alice.ok("transfer", room="#tea", name="f", size=len(DATA)).result["transfer"]
    bob.ok("quit")  # before any piece: the sender's node hears it now, not at the next piece
    [failed] = alice.events(p.TransferFailedEvent)
    assert (failed.nick, failed.code) == ("bob", ErrorCode.NOT_DELIVERED)
    assert "left the server" in failed.message
    end = _send_all(alice, tid)
    assert (end["delivered"], end["missed"]) == (1, ["bob"])
    assert all(node.server.transfers.reserved == 0 for node in net.nodes)
