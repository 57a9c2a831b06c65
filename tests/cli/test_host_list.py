"""``twistchat-client NICK --host a,b,c``: the nodes of one network on the
command line, a clear usage error for a bad item, and what a person sees
when the client moves from a dead node to the next (``/status`` included)."""

from __future__ import annotations

import pytest
from client.harness import SERVER
from client.test_failover import GIVE_UP_AND_MOVE, NETWORK, TwoNodes

from twistchat.cli.frontend import Conversation
from twistchat.cli.main import EXIT_USAGE, Options, main


def options(*argv: str) -> Options:
    parsed = Options()
    parsed.parseOptions([*argv, "alice"])
    return parsed


def test_host_takes_a_list_each_item_with_or_without_its_port() -> None:
    parsed = options("--host", "127.0.0.1:9991,chat.example", "--port", "9000")
    assert list(parsed["servers"]) == [("127.0.0.1", 9991), ("chat.example", 9000)]
    assert list(options("--host", "[::1]:9993,::2")["servers"]) == [("::1", 9993), ("::2", 9999)]
    assert list(options()["servers"]) == [("127.0.0.1", 9999)]              # the default, as before
    assert options("--host", "::1")["ipv6"] and not options("--host", "a,b")["ipv6"]


@pytest.mark.parametrize("hosts, says", [
    ("a,,b", "--host: '': no host"),
    ("a:99999", "--host: 'a:99999': the port must be a number from 1 to 65535"),
    ("[::1:9", "--host: '[::1:9': an IPv6 address goes in brackets"),
    ("127.0.0.1,[::1]", "--host: IPv4 and IPv6 servers in one list"),
])
def test_a_bad_host_item_is_a_usage_error_not_a_traceback(hosts, says, capsys) -> None:
    assert main(["alice", "--host", hosts]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"twistchat-client: {says}") and "Traceback" not in err


def without_time(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for text in lines for line in text.splitlines()]


def logged_in(world: TwoNodes, servers) -> tuple[Conversation, list[str]]:
    """alice's conversation, logged in, and the lines it shows from now on."""
    lines: list[str] = []
    alice = Conversation(lines.append, now=world.clock.seconds)
    alice.client, _ = world.client("alice", servers=servers)
    alice.client.observer = alice
    world.wait(alice.client.connect())
    lines.clear()                                  # the new key's pinning
    return alice, lines


def test_the_move_to_the_next_node_is_told_and_status_says_where_the_client_is() -> None:
    world = TwoNodes()
    alice, lines = logged_in(world, NETWORK)
    alice.line("/status")
    assert without_time(lines)[0].startswith(
        "-!- server 127.0.0.10:9999 (1 of 2: 127.0.0.10:9999, 127.0.0.11:9999), key SHA256:")
    lines.clear()
    world.kill_server()
    alice.line("/ping")
    world.run(GIVE_UP_AND_MOVE)
    shown = without_time(lines)
    assert shown[0] == ("-!- disconnected: the server stopped answering: no acknowledgement "
                        "for 15 s; reconnecting to 127.0.0.11:9999 in 1 s")
    assert "-!- reconnected to 127.0.0.11:9999 (no rooms)" in shown
    lines.clear()
    alice.line("/status")
    assert without_time(lines)[0].startswith("-!- server 127.0.0.11:9999 (2 of 2: ")


def test_one_server_reads_as_it_always_did() -> None:
    world = TwoNodes()
    alice, lines = logged_in(world, SERVER)
    world.kill_server()
    alice.line("/ping")
    world.run(20)
    world.start_server()
    world.run(GIVE_UP_AND_MOVE)
    shown = without_time(lines)
    assert shown[0].endswith("; reconnecting in 1 s") and "-!- reconnected (no rooms)" in shown
