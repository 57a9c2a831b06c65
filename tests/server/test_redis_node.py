"""``twistd twistchat --redis URL``: one node on the Redis store (issue 17).
The option builds a RedisStore, a bad URL is a usage error, a Redis that
does not answer stops startup with one line, and a real node keeps what it
acknowledged in Redis across a kill -9."""

from __future__ import annotations

import signal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from support.processes import Server
from support.redis_server import free_tcp_port
from support.waiting import until, within
from twistchat.chat.server.service import Options, make_service
from twistchat.client import ChatClient, ChatObserver, ClientState
from twistchat.endpoint.endpoint import ClientEndpoint
from twistchat.store.redis import RedisStore


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


@pytest.mark.redis
def test_the_redis_option_builds_a_redis_store(redis_url):
    service = make_service(parse("--port", "0", "--db", ":memory:", "--redis", redis_url),
                           MemoryReactorClock())
    assert isinstance(service.store, RedisStore) and service.store.url == redis_url
    assert service.chat.store.target is service.store  # behind the node's time bound


def test_without_the_option_the_node_is_on_sqlite_as_before():
    assert parse()["redis"] == ""
    assert not isinstance(make_service(parse("--port", "0", "--db", ":memory:"),
                                       MemoryReactorClock()).store, RedisStore)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/0", "redis://", "redis://h/zero",
                                 "redis://h:99999/0", "redis://h/0?x=1"])
def test_a_bad_redis_url_is_a_usage_error(url):
    with pytest.raises(usage.UsageError, match="--redis"):
        parse("--redis", url)


def test_a_redis_that_does_not_answer_stops_startup_in_one_line():
    url = f"redis://127.0.0.1:{free_tcp_port()}/0"
    with pytest.raises(SystemExit) as stopped:
        make_service(parse("--port", "0", "--db", ":memory:", "--redis", url), MemoryReactorClock())
    message = str(stopped.value)
    assert message.startswith(f"twistd twistchat: cannot reach Redis at {url}: ")
    assert "\n" not in message


class Lines(ChatObserver):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, event, replay):
        self.messages.append(event.text)


@pytest.mark.e2e
@pytest.mark.redis
@pytest_twisted.inlineCallbacks
def test_a_node_on_redis_keeps_a_say_across_a_kill(tmp_path, redis_url):
    node = Server(tmp_path, args=["--redis", redis_url, "--scrypt-n", "1024"])
    endpoint = ClientEndpoint(reactor)
    port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")

    def client(nick):
        seen = Lines()
        return ChatClient(reactor, endpoint, ("127.0.0.1", node.port), nick, seen,
                          password=f"{nick} secret", state=ClientState(None), reconnect=False), seen
    try:
        node.start()
        assert f"store {redis_url}" in node.log_text()
        alice, _ = client("alice")
        yield within(alice.connect())
        yield within(alice.join("#lobby"))
        said = yield within(alice.say("#lobby", "kept in redis"))
        node.stop(signal.SIGKILL)
        node.start()
        bob, bob_seen = client("bob")
        yield within(bob.connect())
        yield within(bob.join("#lobby"))
        yield until(lambda: "kept in redis" in bob_seen.messages)
        history = yield within(bob.history("#lobby"))
        assert said["msg_id"] in [line["msg_id"] for line in history["history"]]
        assert not (tmp_path / "chat.sqlite3").exists()  # the node kept nothing of its own
        assert "Traceback" not in node.log_text()
        yield within(bob.quit())
    finally:
        node.kill()
        port.stopListening()
