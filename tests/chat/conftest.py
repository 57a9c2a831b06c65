from __future__ import annotations

import pytest

from .fakes import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()
