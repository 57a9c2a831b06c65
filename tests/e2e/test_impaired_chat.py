"""End to end through the impairment proxy: a real server process, the real
``python -m twistchat.netem`` process at 10 % loss each way (20 ms round
trip), and chat clients on real loopback sockets.  Every line must arrive
exactly once and in order at every receiver.  Bounded: well under 60 s."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_twisted

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench harness lives at the repository root
    sys.path.insert(0, str(REPO))

from bench.common import NetemProcess, ServerProcess, tracebacks  # noqa: E402
from bench.latency import impaired_chat  # noqa: E402

pytestmark = pytest.mark.e2e

LINES_PER_SENDER = 40
TIME_LIMIT_SECONDS = 45.0


@pytest.fixture
def server():
    # Its clients log in at once from 127.0.0.1: what is tested is loss, not
    # the per-source login limits (at most 2 credential checks at once).
    process = ServerProcess(load_generator=True)
    yield process
    process.stop()


@pytest.fixture
def proxy(server):
    process = NetemProcess(server.port, loss=0.10, delay_ms=10.0, seed=7)
    yield process
    process.stop()


@pytest_twisted.ensureDeferred
async def test_every_line_arrives_exactly_once_and_in_order_at_ten_percent_loss(server, proxy):
    from twisted.internet import defer, reactor

    run = defer.Deferred.fromCoroutine(impaired_chat(
        reactor, proxy.port, senders=2, receivers=2, per_sender=LINES_PER_SENDER, rate=15.0,
        room="#e2e", drain_timeout=20.0, tag="e"))
    result = await run.addTimeout(TIME_LIMIT_SECONDS, reactor)

    assert result["expected"] == 2 * 2 * LINES_PER_SENDER
    assert result["missing"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["reordered"] == 0, result
    assert result["delivered"] == result["expected"]
    assert result["rejected_says"] == 0
    counters = proxy.counters()  # stops the proxy; it really did lose datagrams
    assert counters is not None
    assert counters["up"]["dropped"] + counters["down"]["dropped"] > 0
    assert server.alive()
    assert tracebacks(server.log_text()) == 0
