"""The Redis the cluster tests rely on is real and reachable with the
client the server uses."""

import pytest
import pytest_twisted
import txredisapi

pytestmark = pytest.mark.redis


@pytest_twisted.inlineCallbacks
def test_the_fixture_server_answers_the_servers_client(redis_server, redis_url):
    conn = yield txredisapi.Connection("127.0.0.1", redis_server.port, reconnect=False)
    try:
        yield conn.set("greeting", "hello")
        assert (yield conn.get("greeting")) == "hello"
    finally:
        yield conn.disconnect()


def test_flush_empties_the_server_between_tests(redis_server, redis_url):
    from support.redis_server import _command

    assert _command(redis_server.port, b"SET leftover 1").startswith(b"+OK")
    redis_server.flush()
    assert _command(redis_server.port, b"DBSIZE").startswith(b":0")
