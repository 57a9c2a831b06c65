"""Two real ``twistd twistchat`` nodes sharing one ``--key``, and the real
``twistchat-client --host A,B``: the first node gets SIGKILL, and the client
notices, moves to the second, pins it without complaint (the same key),
logs in there and has its requests answered.

These two nodes share no data yet (the Redis store comes with the cluster
merge, docs/CLUSTER.md), so on the second node alice registers anew and
joins #tea by hand; that rooms, history and the credential carry over
across nodes, and so the catch-up, is shown on the simulated network by
tests/client/test_failover.py and comes here with the cluster merge."""

from __future__ import annotations

import re

import pytest
from cli.test_cli_e2e import Client

from support.processes import Server

pytestmark = pytest.mark.e2e
PINNED = re.compile(r"new server key (SHA256:\S+) for 127\.0\.0\.1:(\d+), pinned")


def test_the_client_moves_to_the_second_node_when_the_first_is_killed(tmp_path):
    key = tmp_path / "network.key"
    nodes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        nodes.append(Server(tmp_path / name, args=("--key", str(key))))
    a, b = nodes
    try:
        for node in nodes:
            node.start()
        alice = Client("alice", a, tmp_path, "--host", f"127.0.0.1:{a.port},127.0.0.1:{b.port}")
        alice.send("/join #tea")
        alice.wait_for("now talking in #tea")
        a.kill()
        alice.send("/ping")                  # unacknowledged: the transport gives up in 15 s
        alice.wait_for(f"reconnected to 127.0.0.1:{b.port}")
        alice.wait_for("pong: ")             # the ping, asked of A, answered by B
        alice.send("/join #tea", "hello from node b")
        alice.wait_for("<alice> hello from node b")
        assert alice.finish() == 0, alice.text()
    finally:
        for node in nodes:
            node.kill()
    output = alice.text()
    assert f"disconnected: the server stopped answering: no acknowledgement for 15 s; " \
           f"reconnecting to 127.0.0.1:{b.port} in 1 s" in output
    pins = PINNED.findall(output)
    assert [int(port) for _, port in pins] == [a.port, b.port]
    assert pins[0][0] == pins[1][0]          # one key for the network
    assert "alice logged in" in b.log_text()
