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
