"""Fixtures for the netem tests."""

from __future__ import annotations

import pytest
from netem_fakes import FakeUDPReactor


@pytest.fixture
def fake_reactor() -> FakeUDPReactor:
    return FakeUDPReactor()
