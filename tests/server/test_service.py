"""The service wiring and the operator's options, on a memory reactor."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from twistchat.chat.server.service import ChatService, Options, make_service


class UDPMemoryReactor(MemoryReactorClock):
    """MemoryReactorClock cannot listen on UDP: this one records it."""

    def __init__(self) -> None:
        super().__init__()
        self.udp_ports: list[FakeUDPPort] = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = FakeUDPPort(port, protocol, interface)
        self.udp_ports.append(listening)
        protocol.makeConnection(listening)
        return listening


class FakeUDPPort:
    def __init__(self, port, protocol, interface) -> None:
        self.port, self.protocol, self.interface = port, protocol, interface
        self.written: list = []
        self.listening = True

    def write(self, datagram, address) -> None:
        self.written.append((datagram, address))

    def getHost(self):
        return IPv4Address("UDP", self.interface, self.port)

    def stopListening(self):
        self.listening = False
        self.protocol.doStop()
        return None


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_defaults_are_the_documented_ones():
    options = parse()
    assert options["port"] == 9999 and options["db"] == "twistchat.sqlite3"
    config = options.server_config()
    assert config.keepalive_interval == 25 and config.idle_timeout == 75
    assert config.history_size == 100


def test_options_reach_the_chat_server_and_the_transport():
    options = parse("--port", "0", "--db", ":memory:", "--keepalive", "10", "--history", "7",
                    "--max-room-members", "3", "--rate", "5", "--burst", "9",
                    "--max-sessions", "12", "--scrypt-n", "1024", "--max-pending-requests", "8")
    reactor = MemoryReactorClock()
    service = make_service(options, reactor)
    assert service.chat.config.idle_timeout == 30          # 3 x keepalive
    assert service.chat.config.history_size == 7
    assert service.chat.config.max_members_per_room == 3
    assert (service.chat.config.rate, service.chat.config.burst) == (5, 9)
    assert service.endpoint.config.keepalive_interval == 10  # told to clients
    assert service.endpoint.config.idle_timeout == 30
    assert service.endpoint.max_sessions == 12
    assert service.chat.config.scrypt_n == 1024
    assert service.chat.config.max_pending_requests == 8
    # the transport takes the largest request the chat limits allow
    assert service.endpoint.config.max_message_size >= service.chat.config.max_request_bytes


@pytest.mark.parametrize("argv", [
    ["--port", "70000"], ["--port", "x"], ["--history", "0"], ["--rate", "-1"],
    ["--keepalive", "30", "--idle-timeout", "20"], ["--unknown"], ["--scrypt-n", "1000"], ["--max-pending-requests", "0"],
    ["--sweep", "0"], ["--node-name", "a:b"], ["--node-name", ""], ["--node-heartbeat", "0"],
    ["--redis-timeout", "-1"],
])
def test_bad_options_are_refused_with_a_usage_error(argv):
    with pytest.raises(usage.UsageError):
        parse(*argv)


def test_the_sweep_option_sets_how_often_the_reaper_runs():
    assert parse().server_config().reap_interval == 5.0
    reactor = UDPMemoryReactor()
    service = ChatService(reactor, 4242, "127.0.0.1", ":memory:",
                          parse("--sweep", "2.5").server_config())
    service.startService()
    assert service.chat.reaper.interval == 2.5
    service.stopService()
    reactor.advance(10)


def test_start_listens_and_stop_closes_the_store():
    reactor = UDPMemoryReactor()
    service = ChatService(reactor, 4242, "127.0.0.1", ":memory:", parse().server_config())
    service.startService()
    (port,) = reactor.udp_ports
    assert port.protocol is service.endpoint and (port.port, port.interface) == (4242, "127.0.0.1")
    assert service.port == 4242
    assert service.chat.reaper.running
    stopped = service.stopService()
    reactor.advance(10)
    assert stopped.called and not port.listening
    assert not service.chat.reaper.running


def test_the_admission_and_sendq_options_reach_the_transport():
    options = parse("--db", ":memory:", "--max-sessions", "50", "--max-sessions-per-address", "7",
                    "--cookie-rate", "3", "--cookie-burst", "4", "--cookie-prefix-rate", "5",
                    "--cookie-prefix-burst", "6", "--connect-rate", "1.5", "--connect-burst", "2",
                    "--connect-prefix-rate", "8", "--connect-prefix-burst", "9",
                    "--connect-total-rate", "10", "--connect-total-burst", "11",
                    "--reassembly-budget", "1000000", "--max-send-queue", "2000000",
                    "--send-queue-budget", "3000000", "--shed-refusal-rate", "12",
                    "--shed-refusal-burst", "13", "--shed-seconds", "14")
    service = make_service(options, MemoryReactorClock())
    a = service.endpoint.admission
    assert (a.max_sessions, a.max_sessions_per_address) == (50, 7)
    assert (a.cookies_per_address.per_second, a.cookies_per_address.burst) == (3, 4)
    assert (a.cookies_per_prefix.per_second, a.cookies_per_prefix.burst) == (5, 6)
    assert (a.sessions_per_address.per_second, a.sessions_per_address.burst) == (1.5, 2)
    assert (a.sessions_per_prefix.per_second, a.sessions_per_prefix.burst) == (8, 9)
    assert (a.sessions_in_total.per_second, a.sessions_in_total.burst) == (10, 11)
    assert a.reassembly_budget == 1000000 and service.endpoint.reassembly_budget is not None
    assert a.send_queue_budget == 3000000 and service.endpoint.send_budget.total == 3000000
    assert (a.shedding.refusals.per_second, a.shedding.refusals.burst) == (12, 13)
    assert a.shedding.first_period == 14
    assert service.endpoint.config.max_send_queue == 2000000


def test_the_admission_defaults_are_the_transport_ones():
    from twistchat.chat.server.service import admission
    from twistchat.endpoint.server import Admission
    from twistchat.reliable.config import DEFAULT_MAX_SEND_QUEUE
    config = parse().server_config()
    assert admission(config) == Admission()
    assert config.max_send_queue == DEFAULT_MAX_SEND_QUEUE


def test_the_chat_limits_are_options():
    options = parse("--login-timeout", "5", "--login-free-failures", "2", "--login-backoff", "0.5",
                    "--login-backoff-max", "60", "--login-failures-per-session", "3",
                    "--login-queue", "2", "--registration-rate", "10", "--registration-burst", "3",
                    "--account-expiry", "86400", "--mailbox-per-sender", "9", "--dm-rate", "2",
                    "--dm-burst", "4", "--max-stored-dms", "99", "--churn-rate", "0.25",
                    "--churn-burst", "12")
    c = options.server_config()
    assert (c.login_timeout, c.login_free_failures, c.login_backoff, c.login_backoff_max) == (5, 2, 0.5, 60)
    assert (c.login_failures_per_session, c.login_queue) == (3, 2)
    assert (c.registration_rate, c.registration_burst, c.account_expiry) == (10, 3, 86400)
    assert (c.mailbox_per_sender, c.dm_rate, c.dm_burst, c.max_stored_dms) == (9, 2, 4, 99)
    assert (c.churn_rate, c.churn_burst) == (0.25, 12)
    assert parse("--max-rooms-per-client", "50").server_config().churn_burst == 60
    help_text = str(Options())
    for name in ("login-timeout", "login-queue", "mailbox-per-sender", "max-stored-dms",
                 "churn-rate", "max-send-queue", "cookie-rate", "connect-prefix-burst"):
        assert f"--{name}=" in help_text


@pytest.mark.parametrize("argv", [
    ["--max-send-queue", "1000"], ["--login-backoff", "10", "--login-backoff-max", "5"],
    ["--login-free-failures", "0"], ["--login-timeout", "0"], ["--cookie-rate", "-1"],
    ["--max-stored-dms", "0"], ["--churn-burst", "0"],
])
def test_bad_limits_are_refused_with_a_usage_error(argv):
    with pytest.raises(usage.UsageError):
        parse(*argv)


def test_a_node_is_named_and_heartbeats_as_told_or_gets_a_random_name():
    options = parse("--db", ":memory:", "--node-name", "east-1", "--node-heartbeat", "2",
                    "--redis-timeout", "0.5")
    config = options.server_config()
    assert (config.node_name, config.node_heartbeat, config.redis_timeout) == ("east-1", 2, 0.5)
    first, second = parse("--db", ":memory:").server_config(), parse("--db", ":memory:").server_config()
    assert first.node_name != second.node_name
