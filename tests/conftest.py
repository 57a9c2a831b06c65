"""Fixtures shared by the end-to-end tests of several layers."""

from __future__ import annotations

import pytest

from support.processes import Server


@pytest.fixture
def twistd_server(tmp_path):
    """A real ``twistd twistchat`` on a free loopback port, killed afterwards."""
    server = Server(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the whole run (started on first use)."""
    from support.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The shared redis-server's URL, emptied before each test."""
    redis_server.flush()
    return redis_server.url
